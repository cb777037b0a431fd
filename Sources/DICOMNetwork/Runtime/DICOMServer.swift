import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A DICOM upper-layer acceptor on a TCP port: one `AssociationHandler` per connection.
public final class DICOMServer: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// The maximum P-DATA-TF length we advertise; longer PDUs abort the association.
        public var maximumPDULength: UInt32
        /// An association with no PDU for this long is aborted.
        public var idleTimeout: TimeAmount
        /// PS3.8 §9.1.5: how long to wait for an A-ASSOCIATE-RQ, or for the peer to close.
        public var artimTimeout: TimeAmount

        public init(host: String, port: Int, maximumPDULength: UInt32, idleTimeout: TimeAmount,
                    artimTimeout: TimeAmount = .seconds(30)) {
            self.host = host
            self.port = port
            self.maximumPDULength = maximumPDULength
            self.idleTimeout = idleTimeout
            self.artimTimeout = artimTimeout
        }
    }

    private let configuration: Configuration
    private let provider: any DICOMServiceProvider
    private let group: any EventLoopGroup
    private let threadPool: NIOThreadPool
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    private struct State {
        var serverChannel: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
        var nextAssociationID: UInt64 = 1
    }

    public init(configuration: Configuration, provider: any DICOMServiceProvider,
                group: any EventLoopGroup, threadPool: NIOThreadPool, logger: Logger) {
        self.configuration = configuration
        self.provider = provider
        self.group = group
        self.threadPool = threadPool
        self.logger = logger
    }

    /// Binds the port and starts accepting; returns the bound port (useful when 0 was asked).
    public func start() async throws -> Int {
        let configuration = self.configuration
        let logger = self.logger
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptErrorLogger(logger: logger))
                }
            }
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // TCP level (a SOL_SOCKET option with TCP_NODELAY's number would be SO_DEBUG,
            // refused without CAP_NET_ADMIN): DCMTK peers stall 40 ms per message without it.
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let id = register(channel)
                    channel.closeFuture.whenComplete { [self] _ in unregister(channel) }
                    var logger = self.logger
                    logger[metadataKey: "association"] = "\(id)"
                    let handlers: [any ChannelHandler] = [
                        ByteToMessageHandler(PDUDecoder(maximumPDULength: configuration.maximumPDULength)),
                        MessageToByteHandler(PDUEncoder()),
                        IdleStateHandler(readTimeout: configuration.idleTimeout),
                        AssociationHandler(
                            configuration: .init(maximumPDULength: configuration.maximumPDULength,
                                                 artimTimeout: configuration.artimTimeout),
                            provider: provider, threadPool: threadPool, associationID: id, logger: logger),
                    ]
                    try channel.pipeline.syncOperations.addHandlers(handlers)
                }
            }
        let channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        state.withLockedValue { $0.serverChannel = channel }
        return channel.localAddress?.port ?? configuration.port
    }

    /// Closes the listening socket: no new association is accepted; open ones go on.
    public func stopAccepting() async {
        let serverChannel = state.withLockedValue { $0.serverChannel }
        try? await serverChannel?.close()
    }

    /// Stops accepting, lets open associations finish for up to `gracePeriod`, then aborts
    /// the rest with an A-ABORT (their unfinished instances are dropped, never acknowledged);
    /// at once if the calling task is cancelled. Returns once the connections it saw are
    /// closed: it waits on their close futures and one timer, and looks again for those
    /// accepted while the listening socket was closing.
    public func shutdown(gracePeriod: Duration) async {
        await stopAccepting()
        let deadline = ContinuousClock.now + gracePeriod
        while case let open = state.withLockedValue({ Array($0.connections.values) }), !open.isEmpty {
            let allClosed = EventLoopFuture.andAllComplete(open.map(\.closeFuture), on: group.any())
            await withTaskCancellationHandler {
                await withTaskGroup(of: Void.self) { tasks in
                    tasks.addTask { [self] in
                        do {
                            try await Task.sleep(until: deadline)
                        } catch {
                            return  // these associations ended in time (or the abort below came first)
                        }
                        abort(open)
                    }
                    try? await allClosed.get()
                    tasks.cancelAll()
                }
            } onCancel: { [self] in
                abort(open)
            }
        }
    }

    private func abort(_ connections: [any Channel]) {
        logger.notice("aborting associations still open at shutdown", metadata: ["count": "\(connections.count)"])
        for channel in connections {
            channel.pipeline.fireUserInboundEventTriggered(AssociationHandler.AbortForShutdown())
        }
    }

    private func register(_ channel: any Channel) -> UInt64 {
        state.withLockedValue { state in
            state.connections[ObjectIdentifier(channel)] = channel
            defer { state.nextAssociationID += 1 }
            return state.nextAssociationID
        }
    }

    private func unregister(_ channel: any Channel) {
        _ = state.withLockedValue { $0.connections.removeValue(forKey: ObjectIdentifier(channel)) }
    }
}

/// Logs what goes wrong while accepting (a refused socket option, too many open files…),
/// which NIO would otherwise settle by closing the new connection without a word.
final class AcceptErrorLogger: ChannelInboundHandler, Sendable {
    typealias InboundIn = Any
    let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.error("cannot accept a connection", metadata: ["error": "\(error)"])
        context.fireErrorCaught(error)
    }
}
