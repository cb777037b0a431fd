import Listener
import Logging
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
    private let connections = ConnectionRegistry()

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
                    try channel.pipeline.syncOperations.addHandler(
                        AcceptErrorLogger(logger: logger, message: "cannot accept an HL7 connection"))
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
        connections.listening(on: channel)
        return channel.localAddress?.port ?? configuration.port
    }

    /// The allow-list is asked before any handler (TLS included) sees the connection.
    private func initialize(_ channel: any Channel) throws {
        guard handler.accepts(peer: channel.remoteAddress) else {
            try channel.pipeline.syncOperations.addHandler(MLLPRefusedConnectionHandler())
            return
        }
        let id = connections.register(channel)
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
        await connections.shutdown(gracePeriod: gracePeriod, group: group,
                                   drain: { $0.pipeline.fireUserInboundEventTriggered(MLLPHandler.Drain()) },
                                   force: { [self] open in close(open) })
    }

    private func close(_ connections: [any Channel]) {
        logger.notice("closing HL7 connections still open at shutdown", metadata: ["count": "\(connections.count)"])
        for channel in connections {
            channel.close(promise: nil)
        }
    }
}
