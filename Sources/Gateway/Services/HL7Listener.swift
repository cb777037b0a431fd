import HL7
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The MLLP port for the site's RIS and PAS (`[hl7]`) as a `Service`: binds before the DICOM
/// listener announces READY, serves until a graceful stop, then lets the messages in hand be
/// acknowledged within the grace period and closes the connections (an unacknowledged message
/// is sent again by its sender).
///
/// Its connections run on an event loop of their own, which the inbox blocks while a batch is
/// synced (`HL7Inbox`): the DICOM associations never wait behind it.
final class HL7Listener: Service, Sendable {
    private let server: MLLPServer
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let settings: HL7Settings
    private let gracePeriod: Duration
    private let logger: Logger
    let listening = ListeningSignal()

    init(settings: HL7Settings, inbox: HL7Inbox, gracePeriod: Duration, logger: Logger) throws {
        self.settings = settings
        self.gracePeriod = gracePeriod
        self.logger = logger
        let tls = try settings.tls?.makeServerContext()
        server = MLLPServer(configuration: .init(host: settings.bind, port: settings.port,
                                                 maximumMessageSize: settings.maxMessageSize,
                                                 idleTimeout: TimeAmount(settings.idleTimeout), tls: tls),
                            handler: inbox, group: group, logger: logger)
    }

    func run() async throws {
        let port: Int
        do {
            port = try await server.start()
        } catch {
            listening.end()
            try? await group.shutdownGracefully()
            throw GatewayError.cannotListen(host: settings.bind, port: settings.port, error)
        }
        if settings.allowedSenders.isEmpty {
            logger.warning("hl7.allowed_senders is empty: any sending application may send messages")
        }
        logger.info("HL7 listening", metadata: [
            "bind": "\(settings.bind)", "hl7_port": "\(port)", "tls": "\(settings.tls != nil)",
            "allowed_senders": "\(settings.allowedSenders.map(\.description))",
            "allowed_hosts": "\(settings.allowedHosts.map(\.description))",
        ])
        listening.bound(port: port)
        try? await gracefulShutdown()
        logger.info("HL7 stopping: no new connections, acknowledging the messages in hand")
        await server.shutdown(gracePeriod: gracePeriod)
        try? await group.shutdownGracefully()
        listening.end()
    }
}
