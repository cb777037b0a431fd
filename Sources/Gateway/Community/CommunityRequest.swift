import DICOMNetwork
import NIOConcurrencyHelpers

/// One C-FIND, C-MOVE or C-GET waiting to run as a child task of ``CommunityProxy/run()``.
struct CommunityRequest: Sendable {
    let cancellation: OperationCancellation
    let work: @Sendable () async -> Void

    init(cancellation: OperationCancellation, work: @escaping @Sendable () async -> Void) {
        self.cancellation = cancellation
        self.work = work
    }

    /// Runs the work until it ends or the runtime cancels the operation (C-CANCEL, the
    /// association's end), which cancels the work's task.
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await work() }
            group.addTask { await cancellation.cancelled() }
            await group.next()
            group.cancelAll()
        }
    }
}

/// The handle the DICOM runtime cancels a community request by.
final class OperationCancellation: QueryRetrieveOperation, Sendable {
    private enum State {
        case running(CheckedContinuation<Void, Never>?)
        case cancelled
    }

    private let state = NIOLockedValueBox(State.running(nil))

    func cancel() {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            guard case .running(let waiter) = state else { return nil }
            state = .cancelled
            return waiter
        }
        waiter?.resume()
    }

    /// Returns once cancelled, or once the calling task is (the work ended first).
    func cancelled() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLockedValue { state -> Bool in
                    guard case .running = state else { return true }
                    state = .running(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            cancel()
        }
    }
}
