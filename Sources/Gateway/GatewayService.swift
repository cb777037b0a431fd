import DICOMNetwork
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import Spool

/// The gateway as one `Service`: opens the spool, recovers it, listens for associations
/// and, on graceful shutdown, stops accepting and lets running transfers end.
public final class GatewayService: Service {
    public let configuration: GatewayConfiguration
    /// The configuration in force (reloads change it) and the provider applying it.
    private let live = NIOLockedValueBox<(configuration: GatewayConfiguration, provider: StorageProvider?,
                                          responder: StatusResponder?, uploader: Uploader?, listening: Bool)>(
        (GatewayConfiguration(), nil, nil, nil, false))

    /// Whether the port accepts associations.
    public var isListening: Bool { live.withLockedValue { $0.listening } }

    /// Returns once the port accepts associations (or the task is cancelled).
    public func waitUntilListening() async {
        while !isListening, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The current status (nil before the gateway listens), e.g. for systemd's STATUS= line.
    public func statusReport() -> StatusReport? {
        let responder = live.withLockedValue { $0.responder }
        return try? responder?.status()
    }
    private let logger: Logger
    private let registry: PrometheusCollectorRegistry?
    private let onListening: @Sendable (Int) -> Void
    private let onStopping: @Sendable () -> Void

    /// `registry` is the one the daemon bootstrapped swift-metrics with; the status socket
    /// serves it as Prometheus text.
    /// `onListening` runs once the port accepts associations (systemd READY=1), `onStopping`
    /// when a graceful stop begins (STOPPING=1).
    public init(configuration: GatewayConfiguration, logger: Logger, registry: PrometheusCollectorRegistry? = nil,
                onListening: @escaping @Sendable (Int) -> Void = { _ in },
                onStopping: @escaping @Sendable () -> Void = {}) {
        self.configuration = configuration
        self.logger = logger
        self.registry = registry
        self.onListening = onListening
        self.onStopping = onStopping
        live.withLockedValue { $0.configuration = configuration }
    }

    /// Applies a reloaded configuration to new associations; running ones are untouched.
    public func apply(_ configuration: GatewayConfiguration) {
        let (running, provider, uploader) = live.withLockedValue { ($0.configuration, $0.provider, $0.uploader) }
        let applied = configuration.liveChanges(from: running)
        let pending = configuration.restartRequiredChanges(from: running)
        provider?.update(policy: Self.policy(configuration.dicom, communities: running.communities))
        if configuration.upload != running.upload || configuration.destinations != running.destinations {
            var next = running
            next.upload = configuration.upload
            next.destinations = configuration.destinations
            uploader?.apply(next)
        }
        live.withLockedValue { state in
            // Keep the running values of what needs a restart, so the next reload compares right.
            state.configuration.dicom.aeTitle = configuration.dicom.aeTitle
            state.configuration.dicom.allowedCallingAETitles = configuration.dicom.allowedCallingAETitles
            state.configuration.dicom.maxAssociations = configuration.dicom.maxAssociations
            state.configuration.upload = configuration.upload
            state.configuration.destinations = configuration.destinations
        }
        logger.notice("configuration reloaded", metadata: [
            "applied": "\(applied.isEmpty ? "nothing changed" : applied.joined(separator: ", "))",
            "needs_restart": "\(pending.isEmpty ? "nothing" : pending.joined(separator: ", "))",
        ])
        if configuration.dicom.allowedCallingAETitles.isEmpty && !running.dicom.allowedCallingAETitles.isEmpty {
            logger.warning("dicom.allowed_calling_aets is now empty: any calling AE title may store")
        }
    }

    static func policy(_ dicom: GatewayConfiguration.DICOM, communities: [CommunitySettings]) -> StoragePolicy {
        var policy = StoragePolicy(calledAETitles: [dicom.aeTitle], allowedCallingAETitles: Set(dicom.allowedCallingAETitles),
                                   maximumAssociations: dicom.maxAssociations)
        policy.queryRetrieveAETitles = Set(communities.map(\.aeTitle))
        return policy
    }

    /// How long running transfers may continue after a stop is asked.
    public static let shutdownGracePeriod: Duration = .seconds(10)

    public func run() async throws {
        let startedAt = Date()
        let spool: Spool
        let recovered: (temporary: Int, orphans: Int)
        do {
            spool = try Spool(root: configuration.spool.path, minimumFree: configuration.spool.minFree)
            recovered = try spool.recover()
        } catch {
            throw GatewayError.cannotOpenSpool(path: configuration.spool.path, error)
        }
        if recovered.temporary + recovered.orphans > 0 {
            logger.notice("spool recovered after an interrupted run", metadata: [
                "temporary_files_removed": "\(recovered.temporary)",
                "unindexed_files_removed": "\(recovered.orphans)",
            ])
        }
        let dicom = configuration.dicom
        if dicom.allowedCallingAETitles.isEmpty {
            logger.warning("dicom.allowed_calling_aets is empty: any calling AE title may store")
        }
        let threadPool = NIOThreadPool(numberOfThreads: max(4, dicom.maxAssociations / 4))
        threadPool.start()
        let uploader = Uploader(configuration: configuration, spool: spool, threadPool: threadPool, logger: logger)
        let community: CommunityProxy?
        do {
            community = configuration.communities.isEmpty ? nil
                : try CommunityProxy(configuration: configuration, spool: spool, threadPool: threadPool, logger: logger)
        } catch {
            try? await threadPool.shutdownGracefully()
            throw GatewayError.cannotStartCommunity(error)
        }
        let provider = StorageProvider(policy: Self.policy(dicom, communities: configuration.communities), spool: spool,
                                       logger: logger, community: community,
                                       instanceStored: { uploader.instanceArrived() })
        live.withLockedValue {
            $0.provider = provider
            $0.uploader = uploader
        }
        let server = DICOMServer(
            configuration: .init(host: dicom.bind, port: dicom.port, maximumPDULength: dicom.maxPDULength,
                                 idleTimeout: .nanoseconds(Int64(dicom.idleTimeout.components.seconds) * 1_000_000_000
                                                           + dicom.idleTimeout.components.attoseconds / 1_000_000_000)),
            provider: provider, group: MultiThreadedEventLoopGroup.singleton, threadPool: threadPool, logger: logger)
        let port: Int
        do {
            port = try await server.start()
        } catch {
            try? await threadPool.shutdownGracefully()
            throw GatewayError.cannotListen(host: dicom.bind, port: dicom.port, error)
        }
        let responder = StatusResponder(configuration: configuration, spool: spool, startedAt: startedAt,
                                        listeningPort: port, registry: registry, uploader: uploader, community: community,
                                        activeAssociations: { provider.activeAssociations })
        live.withLockedValue { $0.responder = responder }
        let statusServer = StatusServer(path: configuration.statusSocketPath, responder: responder,
                                        threadPool: threadPool, logger: logger)
        do {
            try await statusServer.start(group: MultiThreadedEventLoopGroup.singleton)
        } catch {
            // Storage matters more than the status socket: warn and go on.
            logger.warning("status socket unavailable", metadata: [
                "path": "\(configuration.statusSocketPath)", "error": "\(error)",
            ])
        }
        let counts = try spool.database.counts()
        logger.info("listening", metadata: [
            "ae_title": "\(dicom.aeTitle)", "community_ae_titles": "\(configuration.communities.map(\.aeTitle))", "bind": "\(dicom.bind)", "port": "\(port)",
            "spool": "\(configuration.spool.path)", "spooled_instances": "\(counts.instances)",
            "status_socket": "\(configuration.statusSocketPath)",
        ])
        onListening(port)
        live.withLockedValue { $0.listening = true }
        let uploading = Task { await uploader.run() }
        let cacheHousekeeping = Task { await community?.runHousekeeping() }

        await withGracefulShutdownHandler {
            try? await server.waitUntilClosed()
        } onGracefulShutdown: { [logger, onStopping] in
            onStopping()
            logger.info("stopping: no new associations, waiting for running transfers")
            server.stopAccepting()
        }
        // Uploads in flight are abandoned (queued again); receptions get their grace period.
        uploading.cancel()
        cacheHousekeeping.cancel()
        await uploading.value
        await cacheHousekeeping.value
        await server.shutdown(gracePeriod: Self.shutdownGracePeriod)
        await statusServer.stop()
        await community?.shutdown()
        try await threadPool.shutdownGracefully()
        do {
            try spool.database.close()
        } catch {
            logger.warning("spool database not closed cleanly", metadata: ["error": "\(error)"])
        }
        logger.info("stopped")
    }
}
