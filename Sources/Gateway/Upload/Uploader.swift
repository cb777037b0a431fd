import Audit
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Spool

/// Delivers the spool to the destinations (docs/upload.md): routes new instances, runs one
/// `DestinationUploader` per destination, purges verified studies. A reload replaces the
/// destinations' workers; in-flight chunks go back to the queue.
///
/// A `Service`: `run()` ends when its task is cancelled or, in a `ServiceGroup`, at graceful
/// shutdown.
public final class Uploader: Service {
    /// The configuration in force, its generation (bumped by each reload) and its workers.
    private struct InForce {
        var configuration: GatewayConfiguration
        var generation = 0
        var workers: [String: DestinationUploader] = [:]
    }

    private let inForce: NIOLockedValueBox<InForce>
    private let spool: Spool
    private let threadPool: NIOThreadPool
    private let logger: Logger
    /// The bandwidth cap of all destinations together.
    private let bucket: NIOLockedValueBox<TokenBucket>
    /// One per destination name, kept across reloads, so status keeps its history.
    private let schedulers = NIOLockedValueBox<[String: NIOLockedValueBox<DestinationScheduler>]>([:])
    private let housekeeping = Wakeup()
    private let reloaded = Wakeup()
    private let audit: AuditTrail?

    /// How often verified studies are considered for purging.
    static let purgeInterval: TimeInterval = 5

    public init(configuration: GatewayConfiguration, spool: Spool, threadPool: NIOThreadPool, logger: Logger,
                audit: AuditTrail? = nil) {
        self.audit = audit
        inForce = NIOLockedValueBox(InForce(configuration: Self.sending(configuration)))
        self.spool = spool
        self.threadPool = threadPool
        self.logger = logger
        bucket = NIOLockedValueBox(TokenBucket(bytesPerSecond: configuration.upload.bandwidth(at: Date()),
                                               start: .now))
    }

    var configuration: GatewayConfiguration { inForce.withLockedValue { $0.configuration } }

    func database<T: Sendable>(_ body: @escaping @Sendable (SpoolDatabase) throws -> T) async throws -> T {
        let database = spool.database
        return try await threadPool.runIfActive { try body(database) }
    }

    /// A new instance is in the spool: route it now.
    public func instanceArrived() {
        housekeeping.signal()
    }

    /// Replaces upload settings and destinations (SIGHUP).
    public func apply(_ configuration: GatewayConfiguration) {
        inForce.withLockedValue {
            $0.configuration = Self.sending(configuration)
            $0.generation += 1
        }
        reloaded.signal()
    }

    /// Destinations with `upload = false` are for `[[community]]` searches only.
    private static func sending(_ configuration: GatewayConfiguration) -> GatewayConfiguration {
        var configuration = configuration
        configuration.destinations.removeAll { !$0.upload }
        return configuration
    }

    /// Delivers until the task is cancelled or a graceful shutdown begins; uploads in flight
    /// are then abandoned (queued again). Not throwing, which satisfies `Service.run()`.
    public func run() async {
        await cancelWhenGracefulShutdown { await self.deliver() }
    }

    private func deliver() async {
        do {
            let reset = try await database { try $0.resetInFlight() }
            if reset > 0 { logger.notice("uploads interrupted by the last stop are queued again", metadata: ["instances": "\(reset)"]) }
            let paused = try await database { try $0.pausedDestinations() }
            for name in paused { scheduler(name).withLockedValue { $0.setPaused(true) } }
        } catch where !Task.isCancelled {
            logger.error("upload queue unavailable", metadata: ["error": "\(error)"])
        } catch {
            return
        }
        while !Task.isCancelled {
            let (configuration, generation) = inForce.withLockedValue { ($0.configuration, $0.generation) }
            let workers = configuration.destinations.map { destination in
                let scheduler = self.scheduler(destination.name)
                scheduler.withLockedValue { $0.apply(.init(configuration.upload)) }
                return DestinationUploader(settings: destination, upload: configuration.upload,
                                           sharing: destination.shared ? configuration.sharingRules : nil,
                                           issuer: configuration.site.issuerOfPatientID, spool: spool,
                                           threadPool: threadPool, bucket: bucket, scheduler: scheduler, logger: logger,
                                           audit: audit)
            }
            inForce.withLockedValue { $0.workers = Dictionary(uniqueKeysWithValues: workers.map { ($0.name, $0) }) }
            if workers.isEmpty {
                logger.notice("no upload destination configured: studies wait in the spool")
            } else {
                logger.info("uploading", metadata: ["destinations": "\(workers.map(\.name).joined(separator: ", "))"])
            }
            await withTaskGroup(of: Void.self) { group in
                for worker in workers { group.addTask { await worker.run() } }
                group.addTask { await self.housekeep(configuration, workers: workers) }
                while !Task.isCancelled, inForce.withLockedValue({ $0.generation }) == generation {
                    await reloaded.wait(upTo: .seconds(3600))
                }
                group.cancelAll()
            }
        }
    }

    /// The scheduler of destination `name`, made on first use.
    func scheduler(_ name: String) -> NIOLockedValueBox<DestinationScheduler> {
        let settings = DestinationScheduler.Settings(configuration.upload)
        return schedulers.withLockedValue { boxes in
            if let box = boxes[name] { return box }
            let box = NIOLockedValueBox(DestinationScheduler(settings: settings))
            boxes[name] = box
            return box
        }
    }

    // MARK: Routing and retention

    private func housekeep(_ configuration: GatewayConfiguration, workers: [DestinationUploader]) async {
        var lastPurge = Date.distantPast
        while !Task.isCancelled {
            let rate = configuration.upload.bandwidth(at: Date())
            bucket.withLockedValue { $0.setRate(rate) }
            if !configuration.destinations.isEmpty, let routed = try? await route(configuration.destinations), routed > 0 {
                for worker in workers { worker.wakeup.signal() }
            }
            if Date().timeIntervalSince(lastPurge) >= Self.purgeInterval || !spool.hasRoom() {
                lastPurge = Date()
                await purge(retention: configuration.spool.retention)
            }
            await housekeeping.wait(upTo: .seconds(1))
        }
    }

    /// Decides the destinations of new instances; returns how many were routed.
    func route(_ destinations: [DestinationSettings]) async throws -> Int {
        var total = 0
        while true {
            let candidates = try await database { try $0.unroutedInstances(limit: 500) }
            guard !candidates.isEmpty else { return total }
            let decisions = candidates.map { candidate in
                (instanceID: candidate.instanceID,
                 destinations: destinations.filter {
                     $0.accepts(callingAETitle: candidate.callingAETitle, modality: candidate.modality,
                                sopClassUID: candidate.sopClassUID)
                 }.map(\.name))
            }
            let sharing = configuration.sharingRules
            try await database { try $0.route(decisions, sharing: sharing) }
            total += candidates.count
        }
    }

    /// Purges verified studies past `retention`, then, while free space is under `min_free`,
    /// the oldest verified ones. Never an unverified study.
    func purge(retention: Duration) async {
        let cutoff = Date().addingTimeInterval(-Backoff.seconds(retention))
        do {
            for candidate in try await database({ try $0.purgeCandidates(verifiedBefore: cutoff) }) {
                try await purge(candidate, reason: "retention")
            }
            while !spool.hasRoom() {
                guard let candidate = try await database({ try $0.purgeCandidates(verifiedBefore: nil, limit: 1) }).first
                else {
                    break
                }
                try await purge(candidate, reason: "min_free")
            }
        } catch where !Task.isCancelled {
            logger.error("purge failed", metadata: ["error": "\(error)"])
        } catch {
            // Stopping: the next start purges.
        }
    }

    private func purge(_ candidate: PurgeCandidate, reason: String) async throws {
        let site = configuration.site.issuerOfPatientID ?? ""
        let paths = try await database { try $0.purge(candidate, siteIssuer: site) }
        spool.release(paths)
        await audit?.record(AuditEvent(action: .purge, actor: .gateway, studies: [candidate.studyInstanceUID],
                                       details: ["reason": reason, "files": String(paths.count),
                                                 "bytes": String(candidate.bytes)]))
        logger.info("verified study purged from the spool", metadata: [
            "study_uid": "\(candidate.studyInstanceUID)", "reason": "\(reason)", "files": "\(paths.count)",
            "bytes": "\(candidate.bytes)"])
    }

    // MARK: Control (status socket)

    /// Queues again the retries and rejections of a study, or of all; returns how many.
    public func retry(study: String?) throws -> Int {
        let count = try spool.database.requeue(studyInstanceUID: study)
        for destination in configuration.destinations {
            scheduler(destination.name).withLockedValue { $0.retryNow() }
        }
        wakeWorkers()
        return count
    }

    /// Pauses or resumes a configured destination; false when there is none of that name.
    public func setPaused(_ paused: Bool, destination: String) throws -> Bool {
        guard configuration.destinations.contains(where: { $0.name == destination }) else { return false }
        try spool.database.setPaused(paused, destination: destination)
        scheduler(destination).withLockedValue { $0.setPaused(paused) }
        logger.notice(paused ? "destination paused" : "destination resumed", metadata: ["destination": "\(destination)"])
        wakeWorkers()
        return true
    }

    public func markUrgent(study: String) throws -> Bool {
        let found = try spool.database.markUrgent(studyInstanceUID: study)
        wakeWorkers()
        return found
    }

    /// Also when studies were released to shared destinations (consent, an opposition lifted).
    func wakeWorkers() {
        for worker in inForce.withLockedValue({ Array($0.workers.values) }) { worker.wakeup.signal() }
    }

    // MARK: Status

    /// Per configured destination: health, queue totals, studies per state, certificates.
    public func destinationStatuses() throws -> [StatusReport.Destination] {
        let configuration = self.configuration
        guard !configuration.destinations.isEmpty else { return [] }
        let totals = try spool.database.deliveryTotals()
        let stableBefore = Date().addingTimeInterval(-Backoff.seconds(configuration.upload.stableAfter))
        let studies = try spool.database.studyStateTotals(stableBefore: stableBefore)
        return try configuration.destinations.map { destination in
            // One lock: health, hold and pause read at the same moment.
            let (health, paused) = scheduler(destination.name).withLockedValue { ($0.health, $0.paused) }
            var instances: [String: DeliveryTotals] = [:]
            for state in DeliveryState.allCases {
                instances[state.rawValue] = totals[destination.name]?[state] ?? DeliveryTotals()
            }
            let studyStates = Dictionary(uniqueKeysWithValues: StudyDeliveryState.allCases.map {
                ($0.rawValue, studies[destination.name]?[$0] ?? 0)
            })
            let pending = instances.filter { $0.key != DeliveryState.stored.rawValue && $0.key != DeliveryState.rejected.rawValue }
                .values.reduce(0) { $0 + $1.instances }
            let state: String = paused ? "paused"
                : health.isFailing ? "failing"
                : (health.lastSuccessAt == nil && pending == 0) ? "idle" : "ok"
            var nextRetry = try spool.database.nextRetry(destination: destination.name)
            if let hold = health.holdUntil, hold > Date() { nextRetry = max(nextRetry ?? hold, hold) }
            return StatusReport.Destination(
                name: destination.name, url: destination.url.absoluteString, health: state, paused: paused,
                instances: instances, studies: studyStates, lastSuccessAt: health.lastSuccessAt,
                lastError: health.lastError.map { .init(at: $0.at, message: $0.message) },
                nextRetryAt: pending > 0 ? nextRetry : nil,
                clientCertificateExpiresAt: destination.clientCertificate.flatMap(Self.expiry),
                caExpiresAt: destination.ca.flatMap(Self.expiry))
        }
    }

    /// The notAfter of the first certificate of a PEM file.
    static func expiry(ofCertificateAt path: String) -> Date? {
        guard let certificate = try? NIOSSLCertificate.fromPEMFile(path).first else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(certificate.notValidAfter))
    }
}
