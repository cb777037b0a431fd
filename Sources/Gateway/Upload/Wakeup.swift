import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Wakes one waiting loop: `signal()` from anywhere, `wait(upTo:)` in the loop. A signal
/// given while nobody waits is kept for the next wait.
final class Wakeup: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = NIOLockedValueBox(State())

    func signal() {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns at a signal, after `timeout`, or when the task is cancelled.
    func wait(upTo timeout: Duration) async {
        // An event-loop timer, not a sleeping task: a wait ends early many times a second while
        // chunks complete, and a cancelled NIO timer leaves the timer heap at once.
        let nanoseconds = Int64(Backoff.seconds(timeout) * 1_000_000_000)
        let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .nanoseconds(nanoseconds)) {
            [weak self] in self?.signal()
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLockedValue { state -> Bool in
                    if state.pending || Task.isCancelled {
                        state.pending = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            signal()
        }
        timer.cancel()
        state.withLockedValue { $0.pending = false }
    }
}
