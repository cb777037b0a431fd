import NIOConcurrencyHelpers
import NIOCore

/// What every TCP listener of the house keeps (the DICOM acceptor, the MLLP listener): its
/// listening channel, the connections it accepted, numbered from 1, and how it stops — no new
/// connection, the open ones given a grace period, then ended by force.
public final class ConnectionRegistry: Sendable {
    private struct State {
        var serverChannel: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
        var nextID: UInt64 = 1
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    /// The bound listening channel (closed first at shutdown).
    public func listening(on channel: any Channel) {
        state.withLockedValue { $0.serverChannel = channel }
    }

    /// Keeps `channel` until it closes; returns its number.
    public func register(_ channel: any Channel) -> UInt64 {
        let id = state.withLockedValue { state in
            state.connections[ObjectIdentifier(channel)] = channel
            defer { state.nextID += 1 }
            return state.nextID
        }
        channel.closeFuture.whenComplete { [self] _ in
            _ = state.withLockedValue { $0.connections.removeValue(forKey: ObjectIdentifier(channel)) }
        }
        return id
    }

    /// Closes the listening socket: no new connection is accepted; open ones go on.
    public func stopAccepting() async {
        let serverChannel = state.withLockedValue { $0.serverChannel }
        try? await serverChannel?.close()
    }

    /// Stops accepting, calls `drain` on each open connection (let it finish what it has in
    /// hand), waits up to `gracePeriod` for them to close, then calls `force` on the rest; at
    /// once if the calling task is cancelled. Returns once the connections it saw are closed:
    /// it waits on their close futures and one timer, and looks again for those accepted
    /// while the listening socket was closing.
    public func shutdown(gracePeriod: Duration, group: any EventLoopGroup,
                         drain: @escaping @Sendable (any Channel) -> Void = { _ in },
                         force: @escaping @Sendable ([any Channel]) -> Void) async {
        await stopAccepting()
        let deadline = ContinuousClock.now + gracePeriod
        while case let open = state.withLockedValue({ Array($0.connections.values) }), !open.isEmpty {
            open.forEach(drain)
            let allClosed = EventLoopFuture.andAllComplete(open.map(\.closeFuture), on: group.any())
            await withTaskCancellationHandler {
                await withTaskGroup(of: Void.self) { tasks in
                    tasks.addTask {
                        do {
                            try await Task.sleep(until: deadline)
                        } catch {
                            return  // they closed in time (or the cancellation below ended them)
                        }
                        force(open)
                    }
                    try? await allClosed.get()
                    tasks.cancelAll()
                }
            } onCancel: {
                force(open)
            }
        }
    }
}
