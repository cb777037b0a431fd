import Listener
import Logging
import NIOCore
import NIOPosix
import NIOSSL

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
        /// TLS on every connection when set (PS3.15 Annex B); the context says which
        /// versions and whether a client certificate is required.
        public var tls: NIOSSLContext?

        public init(host: String, port: Int, maximumPDULength: UInt32, idleTimeout: TimeAmount,
                    artimTimeout: TimeAmount = .seconds(30), tls: NIOSSLContext? = nil) {
            self.host = host
            self.port = port
            self.maximumPDULength = maximumPDULength
            self.idleTimeout = idleTimeout
            self.artimTimeout = artimTimeout
            self.tls = tls
        }
    }

    private let configuration: Configuration
    private let provider: any DICOMServiceProvider
    private let group: any EventLoopGroup
    private let threadPool: NIOThreadPool
    private let logger: Logger
    private let connections = ConnectionRegistry()

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
                    try channel.pipeline.syncOperations.addHandler(
                        AcceptErrorLogger(logger: logger, message: "cannot accept a connection"))
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
                    let id = connections.register(channel)
                    var logger = self.logger
                    logger[metadataKey: "association"] = "\(id)"
                    var handlers: [any ChannelHandler] = []
                    if let tls = configuration.tls {
                        handlers += [NIOSSLServerHandler(context: tls),
                                     TLSRefusalHandler(logger: logger) { [provider] peer, reason in
                                         provider.secureConnectionRefused(peer: peer, reason: reason)
                                     }]
                    }
                    handlers += [
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
        connections.listening(on: channel)
        return channel.localAddress?.port ?? configuration.port
    }

    /// Closes the listening socket: no new association is accepted; open ones go on.
    public func stopAccepting() async {
        await connections.stopAccepting()
    }

    /// Stops accepting, lets open associations finish for up to `gracePeriod`, then aborts
    /// the rest with an A-ABORT (their unfinished instances are dropped, never acknowledged);
    /// at once if the calling task is cancelled. Returns once every connection is closed.
    public func shutdown(gracePeriod: Duration) async {
        await connections.shutdown(gracePeriod: gracePeriod, group: group) { [self] open in abort(open) }
    }

    private func abort(_ connections: [any Channel]) {
        logger.notice("aborting associations still open at shutdown", metadata: ["count": "\(connections.count)"])
        for channel in connections {
            channel.pipeline.fireUserInboundEventTriggered(AssociationHandler.AbortForShutdown())
        }
    }
}
