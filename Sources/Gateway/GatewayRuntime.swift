import Audit
import DICOMNetwork
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import Spool

/// The gateway built from one configuration: the spool opened and recovered, and its
/// long-running parts as the `Service`s that `passerelled` runs in its `ServiceGroup`
/// (``services``, in start order; the group stops them in reverse). Reloads go through
/// ``apply(_:)``; the status socket and systemd read ``statusReport()``.
public final class GatewayRuntime: Sendable {
    /// The configuration in force (reloads change part of it).
    private let running: NIOLockedValueBox<GatewayConfiguration>
    private let provider: SiteServiceProvider
    private let uploader: Uploader
    private let rights: PatientRights
    private let backfill: BackfillService
    private let responder: StatusResponder
    private let listening = ListeningSignal()
    private let tlsListening = ListeningSignal()
    private let logger: Logger
    /// The audit trail: every act as one hash-chained row (docs/audit.md).
    public let audit: AuditTrail
    /// In start order.
    public let services: [any Service]

    /// Opens and recovers the spool and builds every part; nothing listens yet.
    /// `registry` is the one the daemon bootstrapped swift-metrics with (the status socket
    /// serves it); `onListening` runs once the DICOM port is bound (systemd READY=1),
    /// `onStopping` when a graceful stop begins (STOPPING=1); running transfers then get
    /// `shutdownGracePeriod` before an A-ABORT.
    public init(configuration: GatewayConfiguration, logger: Logger, registry: PrometheusCollectorRegistry? = nil,
                shutdownGracePeriod: Duration = .seconds(10),
                onListening: @escaping @Sendable (Int) -> Void = { _ in },
                onStopping: @escaping @Sendable () -> Void = {}) throws {
        let startedAt = Date()
        let spool: Spool
        let recovered: (temporary: Int, orphans: Int)
        let replayed: JournalReplay.Summary
        do {
            spool = try Spool(root: configuration.spool.path, minimumFree: configuration.spool.minFree,
                              segmentSize: configuration.spool.segmentSize)
            recovered = try spool.recover()
            replayed = try JournalReplay.run(spool: spool, logger: logger)
        } catch {
            throw GatewayError.cannotOpenSpool(path: configuration.spool.path, error)
        }
        if recovered.temporary + recovered.orphans + replayed.indexed + replayed.torn.count > 0 {
            logger.notice("spool recovered after an interrupted run", metadata: [
                "temporary_files_removed": "\(recovered.temporary)",
                "unindexed_files_removed": "\(recovered.orphans)",
                "journal_records_indexed": "\(replayed.indexed)",
                "journal_torn_tails": "\(replayed.torn.count)",
            ])
        }
        let dicom = configuration.dicom
        if dicom.allowedCallingAETitles.isEmpty {
            logger.warning("dicom.allowed_calling_aets is empty: any calling AE title may store")
        }
        let threadPool = NIOThreadPool(numberOfThreads: max(4, dicom.maxAssociations / 4))
        threadPool.start()
        let resources = SharedResources(spool: spool, threadPool: threadPool, logger: logger)
        let audit = AuditTrail(database: spool.database, threadPool: threadPool, enabled: configuration.audit.enabled,
                               siteIssuer: configuration.site.issuerOfPatientID, logger: logger)
        audit.recordNow(AuditEvent(action: .applicationStart, actor: .gateway,
                                   details: ["version": PasserelleVersion.current]))
        let auditSender: AuditSender
        do {
            auditSender = try AuditSender(trail: audit, database: spool.database, threadPool: threadPool,
                                          configuration: configuration, logger: logger)
        } catch {
            try? threadPool.syncShutdownGracefully()
            try? spool.database.close()
            throw GatewayError.cannotStartAudit(error)
        }
        let community: CommunityProxy?
        do {
            community = configuration.communities.isEmpty ? nil
                : try CommunityProxy(configuration: configuration, spool: spool, threadPool: threadPool, logger: logger,
                                     audit: audit)
        } catch {
            try? threadPool.syncShutdownGracefully()
            try? spool.database.close()
            throw GatewayError.cannotStartCommunity(error)
        }
        let uploader = Uploader(configuration: configuration, spool: spool, threadPool: threadPool, logger: logger,
                                audit: audit)
        let rights = PatientRights(configuration: configuration, spool: spool, logger: logger, audit: audit,
                                   released: { uploader.wakeWorkers() })
        rights.refreshSharing()
        let withdrawals = WithdrawalService(rights: rights, spool: spool, threadPool: threadPool, logger: logger)
        let corrector = IdentityCorrector(rights: rights, spool: spool, threadPool: threadPool, audit: audit, logger: logger)
        let provider = SiteServiceProvider(policy: Self.policy(dicom, communities: configuration.communities,
                                                                  knownAEs: configuration.knownAEs),
                                           spool: spool, logger: logger, community: community, audit: audit,
                                           instanceStored: { uploader.instanceArrived() })
        let running = NIOLockedValueBox(configuration)
        let retrievals = NIOLockedValueBox<UInt64>(1 << 48)  // apart from the SCP's association numbers
        let backfill = BackfillService(
            spool: spool, threadPool: threadPool, logger: logger, configuration: { running.withLockedValue { $0 } },
            sink: RetrievalSink(receiver: { provider.reception($0, transferSyntax: $1, association: $2) },
                                ended: { provider.receptionEnded($0) },
                                nextAssociationID: { retrievals.withLockedValue { $0 += 1; return $0 } }),
            uploaderWakeup: { uploader.wakeWorkers() })
        let listening = self.listening
        var responder = StatusResponder(configuration: configuration, spool: spool, startedAt: startedAt,
                                        listeningPort: { listening.port ?? dicom.port }, registry: registry,
                                        uploader: uploader, community: community, rights: rights,
                                        activeAssociations: { provider.activeAssociations })
        // The TLS listener: the clear one's settings, its own port and context.
        let clearSettings = DICOMServer.Configuration(host: dicom.bind, port: dicom.port, maximumPDULength: dicom.maxPDULength,
                                                      idleTimeout: TimeAmount(dicom.idleTimeout))
        var tlsSettings: DICOMServer.Configuration?
        if let tls = dicom.tls {
            do {
                tlsSettings = clearSettings
                tlsSettings?.port = tls.port
                tlsSettings?.tls = try tls.listener.makeServerContext()
            } catch {
                try? threadPool.syncShutdownGracefully()
                try? spool.database.close()
                throw GatewayError.cannotStartDICOMTLS(error)
            }
        }
        let makeServer = { (settings: DICOMServer.Configuration) in
            DICOMServer(configuration: settings, provider: provider, group: MultiThreadedEventLoopGroup.singleton,
                        threadPool: threadPool, logger: logger)
        }
        let clearServer = dicom.clearListener ? makeServer(clearSettings) : nil
        let tlsServer = tlsSettings.map(makeServer)
        var hl7: HL7Listener?
        var bridge: HL7Bridge?
        if let settings = configuration.hl7 {
            do {
                let applier = HL7Bridge(settings: settings, site: configuration.site, spool: spool, threadPool: threadPool,
                                        audit: audit, logger: logger,
                                        configuration: { rights.current },
                                        instanceStored: { uploader.instanceArrived() },
                                        identityUpdated: { corrector.wakeup.signal() },
                                        reportCancelled: { rights.withdrawalsChanged.signal() })
                bridge = applier
                hl7 = try HL7Listener(settings: settings,
                                      inbox: try HL7Inbox(settings: settings,
                                                          issuers: configuration.site.patientIssuers,
                                                          spool: spool, audit: audit,
                                                          logger: logger, accepted: { applier.wakeup.signal() }),
                                      gracePeriod: shutdownGracePeriod, logger: logger)
            } catch {
                try? threadPool.syncShutdownGracefully()
                try? spool.database.close()
                throw GatewayError.cannotStartHL7(error)
            }
        }
        responder.audit = auditSender
        responder.backfill = backfill
        if let hl7 { responder.hl7Port = { hl7.listening.port } }
        let tlsListening = self.tlsListening
        if dicom.tls != nil { responder.tlsPort = { tlsListening.port } }
        let statusServer = StatusServer(path: configuration.statusSocketPath, responder: responder, logger: logger)
        let listener = DICOMListener(clear: clearServer, secure: tlsServer, configuration: configuration, spool: spool,
                                     listening: listening, tlsListening: tlsListening,
                                     gracePeriod: shutdownGracePeriod, logger: logger,
                                     others: hl7.map { [$0.listening] } ?? [], onListening: onListening,
                                     onStopping: onStopping)
        // Started in this order, stopped in reverse: the DICOM port first (its running
        // transfers get their grace period while uploads go on), the shared resources last.
        // The audit sender stops after everything that records acts, before the spool closes.
        let journal = JournalMaintenance(spool: spool, threadPool: threadPool, logger: logger)
        let digester = Digester(spool: spool, logger: logger)
        var services: [any Service] = [resources, auditSender, journal, digester, statusServer, uploader, withdrawals,
                                      corrector, backfill, IdleRelease(spool: spool)]
        if let community { services += [community, CacheHousekeeping(community: community)] }
        if let hl7, let bridge { services += [bridge, hl7] }
        services.append(listener)
        self.services = services
        self.running = running
        self.provider = provider
        self.uploader = uploader
        self.rights = rights
        self.backfill = backfill
        self.responder = responder
        self.logger = logger
        self.audit = audit
    }

    /// Returns once the DICOM port accepts associations; nil if it never will.
    @discardableResult
    public func waitUntilListening() async -> Int? {
        await listening.wait()
    }

    /// The current status (nil before the gateway listens), e.g. for systemd's STATUS= line.
    public func statusReport() -> StatusReport? {
        guard listening.port != nil else { return nil }
        return try? responder.status()
    }

    /// Applies a reloaded configuration to new associations and to the uploader; running
    /// associations are untouched, and what needs a restart is named in the log.
    public func apply(_ configuration: GatewayConfiguration) {
        let running = self.running.withLockedValue { $0 }
        let applied = configuration.liveChanges(from: running)
        let pending = configuration.restartRequiredChanges(from: running)
        provider.update(policy: Self.policy(configuration.dicom, communities: running.communities,
                                            knownAEs: running.knownAEs))
        var next = running
        next.upload = configuration.upload
        next.destinations = configuration.destinations
        next.consent = configuration.consent
        if configuration.upload != running.upload || configuration.destinations != running.destinations
            || configuration.consent != running.consent {
            uploader.apply(next)
            rights.apply(next)
        }
        self.running.withLockedValue { state in
            // Keep the running values of what needs a restart, so the next reload compares right.
            state.dicom.aeTitle = configuration.dicom.aeTitle
            state.dicom.allowedCallingAETitles = configuration.dicom.allowedCallingAETitles
            state.dicom.maxAssociations = configuration.dicom.maxAssociations
            state.dicom.checkCallingHost = configuration.dicom.checkCallingHost
            state.upload = configuration.upload
            state.destinations = configuration.destinations
            state.consent = configuration.consent
            state.backfill = configuration.backfill
        }
        if configuration.backfill != running.backfill { backfill.wakeup.signal() }
        audit.post(AuditEvent(action: .configurationReload, actor: .gateway,
                              details: ["applied": applied.joined(separator: ", "),
                                        "needs_restart": pending.joined(separator: ", ")]))
        logger.notice("configuration reloaded", metadata: [
            "applied": "\(applied.isEmpty ? "nothing changed" : applied.joined(separator: ", "))",
            "needs_restart": "\(pending.isEmpty ? "nothing" : pending.joined(separator: ", "))",
        ])
        if configuration.dicom.allowedCallingAETitles.isEmpty && !running.dicom.allowedCallingAETitles.isEmpty {
            logger.warning("dicom.allowed_calling_aets is now empty: any calling AE title may store")
        }
    }

    static func policy(_ dicom: GatewayConfiguration.DICOM, communities: [CommunitySettings],
                       knownAEs: [KnownAE]) -> AssociationPolicy {
        var policy = AssociationPolicy(calledAETitles: [dicom.aeTitle],
                                       allowedCallingAETitles: Set(dicom.allowedCallingAETitles),
                                       maximumAssociations: dicom.maxAssociations)
        policy.queryRetrieveAETitles = Set(communities.map(\.aeTitle))
        if dicom.checkCallingHost {
            policy.callingHosts = Dictionary(knownAEs.map { ($0.title, $0.hosts) }, uniquingKeysWith: { first, _ in first })
        }
        return policy
    }
}
