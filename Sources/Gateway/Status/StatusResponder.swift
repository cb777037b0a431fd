import Foundation
import Prometheus
import Spool

/// Answers status-socket requests from the live gateway state. Blocking (database
/// reads): the status server calls it on a thread pool.
public struct StatusResponder: Sendable {
    let configuration: GatewayConfiguration
    let spool: Spool
    let startedAt: Date
    let activeAssociations: @Sendable () -> Int
    /// The bound DICOM port (the configured one until bound).
    let listeningPort: @Sendable () -> Int
    let registry: PrometheusCollectorRegistry?
    let uploader: Uploader?
    let community: CommunityProxy?
    let rights: PatientRights?
    /// Set by `GatewayRuntime` once the audit sender exists.
    var audit: AuditSender?
    /// The HL7 listener's bound port, once bound.
    var hl7Port: (@Sendable () -> Int?)?
    /// The DICOM TLS listener's bound port, once bound (`[dicom.tls]`).
    var tlsPort: (@Sendable () -> Int?)?
    /// Set by `GatewayRuntime`: the migration of the site's archive.
    var backfill: BackfillService?

    public init(configuration: GatewayConfiguration, spool: Spool, startedAt: Date, listeningPort: @escaping @Sendable () -> Int,
                registry: PrometheusCollectorRegistry?, uploader: Uploader? = nil, community: CommunityProxy? = nil,
                rights: PatientRights? = nil, activeAssociations: @escaping @Sendable () -> Int) {
        self.rights = rights
        self.uploader = uploader
        self.community = community
        self.configuration = configuration
        self.spool = spool
        self.startedAt = startedAt
        self.listeningPort = listeningPort
        self.registry = registry
        self.activeAssociations = activeAssociations
    }

    /// One response line (without the newline) for one request line.
    public func respond(to line: String) -> String {
        do {
            let request = try StatusRequest.parse(line)
            return try Self.encode(ok: true, result: respond(to: request))
        } catch let error as StatusError {
            return (try? Self.encode(ok: false, error: error)) ?? #"{"ok":false}"#
        } catch {
            let failure = StatusError(code: "internal", message: "\(error)")
            return (try? Self.encode(ok: false, error: failure)) ?? #"{"ok":false}"#
        }
    }

    private func respond(to request: StatusRequest) throws -> AnyEncodable {
        switch request {
        case .status:
            return AnyEncodable(try status())
        case .queue:
            return AnyEncodable(try queue())
        case .metrics:
            return AnyEncodable(["text": try metricsText()])
        case .retry(let study):
            let uploader = try activeUploader()
            let count = try uploader.retry(study: study)
            return AnyEncodable(["requeued": count])
        case .pause(let destination), .resume(let destination):
            let paused: Bool
            if case .pause = request { paused = true } else { paused = false }
            guard try activeUploader().setPaused(paused, destination: destination) else {
                throw StatusError(code: "unknown_destination", message: "no destination \"\(destination)\" is configured")
            }
            return AnyEncodable(["destination": AnyEncodable(destination), "paused": AnyEncodable(paused)])
        case .urgent(let study):
            guard try activeUploader().markUrgent(study: study) else {
                throw StatusError(code: "unknown_study", message: "no study \(study) in the spool")
            }
            return AnyEncodable(["study": AnyEncodable(study), "urgent": AnyEncodable(true)])
        case .rights(let request):
            return try respond(to: request)
        case .backfill(let request):
            return try respond(to: request)
        }
    }

    private func activeUploader() throws -> Uploader {
        guard let uploader, !configuration.destinations.isEmpty else {
            throw StatusError(code: "no_destination",
                              message: "no [destinations.*] is configured: studies wait in the spool")
        }
        return uploader
    }

    /// The studies of the spool, newest first, each with its delivery per destination.
    public func queue() throws -> [StatusReport.QueuedStudy] {
        let stableBefore = Date().addingTimeInterval(-Backoff.seconds(configuration.upload.stableAfter))
        let deliveries = try spool.database.studyDeliveries(stableBefore: stableBefore)
        return try spool.database.studySummaries().map {
            StatusReport.QueuedStudy(study: $0, destinations: deliveries[$0.studyInstanceUID] ?? [:])
        }
    }

    public func status() throws -> StatusReport {
        let totals = try spool.database.totalsByRevisionState()
        let studies = try spool.database.counts().studies
        let disk = try spool.files.diskSpace()
        var states: [String: StatusReport.Totals] = [:]
        for (state, value) in totals {
            states[state] = .init(instances: value.instances, bytes: value.bytes)
        }
        let journal = spool.journal.footprint()
        var report = StatusReport(
            version: PasserelleVersion.current,
            startedAt: startedAt,
            uptimeSeconds: Int(Date().timeIntervalSince(startedAt)),
            listening: ([configuration.dicom.aeTitle] + configuration.communities.map(\.aeTitle)).map {
                .init(aeTitle: $0, bind: configuration.dicom.bind,
                      port: configuration.dicom.clearListener ? listeningPort() : nil,
                      tlsPort: configuration.dicom.tls.map { tls in tlsPort?() ?? tls.port })
            },
            associations: .init(active: activeAssociations(), maximum: configuration.dicom.maxAssociations),
            spool: .init(path: spool.files.root, studies: studies, states: states, freeBytes: disk.available,
                         minimumFreeBytes: spool.minimumFreeBytes, belowMinimumFree: disk.available < spool.minimumFreeBytes || spool.indexWaitsForRoom,
                         journal: .init(segments: journal.segments, bytes: journal.bytes, ready: journal.spares)),
            destinations: try uploader?.destinationStatuses() ?? [],
            communities: try community?.status() ?? [],
            rights: try rightsStatus())
        report.audit = try audit?.status()
        if let backfill {
            let jobs = try backfill.report()
            report.backfill = jobs.isEmpty ? nil : jobs
        }
        if let settings = configuration.hl7 {
            let counts = try spool.database.hl7Counts()
            let corrections = try spool.database.identityCorrectionCounts()
            report.hl7 = .init(bind: settings.bind, port: hl7Port?() ?? settings.port,
                               messages: Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }),
                               corrections: .init(pending: corrections.pending, failing: corrections.failing,
                                                  verified: corrections.verified, searches: corrections.sweeps))
        }
        return report
    }

    private func metricsText() throws -> String {
        guard let registry else { return "" }
        let report = try status()
        registry.makeGauge(name: "passerelle_associations_active", help: "Associations in progress").set(Int64(report.associations.active))
        registry.makeGauge(name: "passerelle_spool_free_bytes", help: "Free bytes on the spool's file system")
            .set(Int64(clamping: report.spool.freeBytes))
        if let journal = report.spool.journal {
            registry.makeGauge(name: "passerelle_journal_bytes", help: "Bytes of the ingest journal's segment files")
                .set(Int64(journal.bytes))
            registry.makeGauge(name: "passerelle_journal_segments", help: "Segment files of the ingest journal (ready ones included)")
                .set(Int64(journal.segments))
        }
        for (state, totals) in report.spool.states {
            registry.makeGauge(name: "passerelle_spool_instances", labels: [("state", state)],
                               help: "Instances in the spool, per revision state").set(Int64(totals.instances))
            registry.makeGauge(name: "passerelle_spool_bytes", labels: [("state", state)],
                               help: "Bytes in the spool, per revision state").set(Int64(totals.bytes))
        }
        for destination in report.destinations {
            for (state, totals) in destination.instances {
                let labels = [("destination", destination.name), ("state", state)]
                registry.makeGauge(name: "passerelle_upload_instances", labels: labels,
                                   help: "Instances per destination and delivery state").set(Int64(totals.instances))
                registry.makeGauge(name: "passerelle_upload_bytes", labels: labels,
                                   help: "Bytes per destination and delivery state").set(Int64(totals.bytes))
            }
            for (state, count) in destination.studies {
                registry.makeGauge(name: "passerelle_upload_studies", labels: [("destination", destination.name), ("state", state)],
                                   help: "Studies per destination and study state").set(Int64(count))
            }
            registry.makeGauge(name: "passerelle_destination_up", labels: [("destination", destination.name)], help: "1 unless the destination is failing")
                .set(Int64(destination.health == "failing" ? 0 : 1))
        }
        if let rights = report.rights {
            registry.makeGauge(name: "passerelle_oppositions_active", help: "Active oppositions").set(Int64(rights.activeOppositions))
            for destination in rights.sharedDestinations {
                for reason in ["opposition", "consent"] {
                    registry.makeGauge(name: "passerelle_studies_withheld", labels: [("destination", destination), ("reason", reason)],
                                       help: "Studies withheld from a shared destination")
                        .set(Int64(rights.withheld[destination]?[reason] ?? 0))
                }
                for state in ["pending", "needs_resend"] {
                    registry.makeGauge(name: "passerelle_withdrawals", labels: [("destination", destination), ("state", state)],
                                       help: "Withdrawals from a shared destination not done yet")
                        .set(Int64(rights.withdrawals[destination]?[state] ?? 0))
                }
            }
            registry.makeGauge(name: "passerelle_rights_alarms", help: "Rights acts waiting for a person")
                .set(Int64(rights.alarms.count))
        }
        for community in report.communities {
            registry.makeGauge(name: "passerelle_community_up", labels: [("community", community.aeTitle)],
                               help: "1 unless the community's hub failed its last query or retrieval")
                .set(Int64(community.health == "failing" ? 0 : 1))
            registry.makeGauge(name: "passerelle_community_cache_bytes", labels: [("community", community.aeTitle)],
                               help: "Bytes of foreign studies kept in cache/").set(Int64(community.cachedBytes))
        }
        if let corrections = report.hl7?.corrections {
            for (state, count) in [("pending", corrections.pending - corrections.failing), ("failing", corrections.failing),
                                   ("verified", corrections.verified)] {
                registry.makeGauge(name: "passerelle_identity_corrections", labels: [("state", state)],
                                   help: "Studies whose identity is corrected at a destination (HL7 ADT), per state")
                    .set(Int64(count))
            }
        }
        for job in report.backfill ?? [] where job.state == "running" || job.state == "paused" {
            for (state, count) in job.studies {
                registry.makeGauge(name: "passerelle_backfill_studies", labels: [("job", "\(job.id)"), ("state", state)],
                                   help: "Studies of an unfinished migration job, per state").set(Int64(count))
            }
            let labels = [("job", "\(job.id)")]
            registry.makeGauge(name: "passerelle_backfill_instances_retrieved", labels: labels,
                               help: "Instances a migration job moved from the PACS into the spool").set(Int64(job.instancesRetrieved))
            registry.makeGauge(name: "passerelle_backfill_days_remaining", labels: labels,
                               help: "Days of a migration job not walked yet").set(Int64(job.daysTotal - job.daysDone))
            registry.makeGauge(name: "passerelle_backfill_waiting", labels: labels,
                               help: "1 while a migration job waits (schedule, cap, free space, backlog)")
                .set(Int64(job.gate == nil ? 0 : 1))
        }
        if let audit = report.audit {
            registry.makeGauge(name: "passerelle_audit_queue_depth", help: "Audit messages waiting for the ATNA repository")
                .set(Int64(audit.queueDepth))
        }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    static func encode(ok: Bool, result: AnyEncodable? = nil, error: StatusError? = nil) throws -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(StatusResponse(ok: ok, result: result, error: error))
        return String(decoding: data, as: UTF8.self)
    }
}

struct StatusResponse: Encodable {
    var ok: Bool
    var result: AnyEncodable?
    var error: StatusError?
}

struct AnyEncodable: Encodable {
    let encodeValue: (any Encoder) throws -> Void
    init(_ value: some Encodable) { encodeValue = value.encode(to:) }
    func encode(to encoder: any Encoder) throws { try encodeValue(encoder) }
}
