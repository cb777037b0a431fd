import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// An MLLP listener on a TCP port (optionally TLS): one ``MLLPHandler`` per connection, the
/// frames handed to an ``MLLPMessageHandler``.
public final class MLLPServer: Sendable {
    private let configuration: MLLPServerConfiguration
    private let handler: any MLLPMessageHandler
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    private struct State {
        var serverChannel: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
        var nextConnectionID: UInt64 = 1
    }

    public init(configuration: MLLPServerConfiguration, handler: some MLLPMessageHandler,
                group: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.handler = handler
        self.group = group
        self.logger = logger
    }

    /// Binds and starts accepting; returns the bound port (useful when 0 was asked).
    public func start() async throws -> Int {
        let logger = self.logger
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(MLLPAcceptErrorLogger(logger: logger))
                }
            }
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // TCP level (a SOL_SOCKET option with TCP_NODELAY's number would be SO_DEBUG,
            // refused without CAP_NET_ADMIN): without it an ACK can wait 40 ms for Nagle.
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { try initialize(channel) }
            }
        let channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        state.withLockedValue { $0.serverChannel = channel }
        return channel.localAddress?.port ?? configuration.port
    }

    /// The allow-list is asked before any handler (TLS included) sees the connection.
    private func initialize(_ channel: any Channel) throws {
        guard handler.accepts(peer: channel.remoteAddress) else {
            try channel.pipeline.syncOperations.addHandler(MLLPRefusedConnectionHandler())
            return
        }
        let id = register(channel)
        channel.closeFuture.whenComplete { [self] _ in unregister(channel) }
        var logger = self.logger
        logger[metadataKey: "connection"] = "\(id)"
        var handlers: [any ChannelHandler] = []
        if let tls = configuration.tls {
            handlers.append(NIOSSLServerHandler(context: tls))
        }
        handlers.append(IdleStateHandler(readTimeout: configuration.idleTimeout))
        handlers.append(MLLPHandler(configuration: configuration, application: handler, connection: id, logger: logger))
        try channel.pipeline.syncOperations.addHandlers(handlers)
    }

    /// Stops accepting, lets each connection finish the frame in hand (an idle one closes at
    /// once) for up to `gracePeriod`, then closes the rest; at once if the task is cancelled.
    /// Returns when every connection it saw is closed, looking again for those accepted
    /// while the listening socket was closing.
    public func shutdown(gracePeriod: Duration) async {
        let serverChannel = state.withLockedValue { $0.serverChannel }
        try? await serverChannel?.close()
        let deadline = ContinuousClock.now + gracePeriod
        while case let open = state.withLockedValue({ Array($0.connections.values) }), !open.isEmpty {
            for channel in open {
                channel.pipeline.fireUserInboundEventTriggered(MLLPHandler.Drain())
            }
            let allClosed = EventLoopFuture.andAllComplete(open.map(\.closeFuture), on: group.any())
            await withTaskCancellationHandler {
                await withTaskGroup(of: Void.self) { tasks in
                    tasks.addTask { [self] in
                        do {
                            try await Task.sleep(until: deadline)
                        } catch {
                            return  // they closed in time (or the cancellation below closes them)
                        }
                        close(open)
                    }
                    try? await allClosed.get()
                    tasks.cancelAll()
                }
            } onCancel: { [self] in
                close(open)
            }
        }
    }

    private func close(_ connections: [any Channel]) {
        logger.notice("closing HL7 connections still open at shutdown", metadata: ["count": "\(connections.count)"])
        for channel in connections {
            channel.close(promise: nil)
        }
    }

    private func register(_ channel: any Channel) -> UInt64 {
        state.withLockedValue { state in
            state.connections[ObjectIdentifier(channel)] = channel
            defer { state.nextConnectionID += 1 }
            return state.nextConnectionID
        }
    }

    private func unregister(_ channel: any Channel) {
        _ = state.withLockedValue { $0.connections.removeValue(forKey: ObjectIdentifier(channel)) }
    }
}

/// Logs what goes wrong while accepting (a refused socket option, too many open files…),
/// which NIO would otherwise settle by closing the new connection without a word.
final class MLLPAcceptErrorLogger: ChannelInboundHandler, Sendable {
    typealias InboundIn = Any
    let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.error("cannot accept an HL7 connection", metadata: ["error": "\(error)"])
        context.fireErrorCaught(error)
    }
}
