import Audit
import DICOMweb
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import Spool

/// Delivers the queue of one destination: up to `parallel` STOW-RS chunks at a time, then
/// verifies complete studies by QIDO-RS. Runs until cancelled (reload, shutdown); what was in
/// flight then goes back to the queue.
///
/// Only I/O lives here: every decision (what to start, when to wake up, how long to hold the
/// destination) is the `DestinationScheduler`'s, asked and fed under its lock.
final class DestinationUploader: Sendable {
    let settings: DestinationSettings
    let upload: UploadSettings
    /// Set for a shared destination: each chunk is checked against oppositions and consent.
    let sharing: SharingRules?
    let spool: Spool
    let threadPool: NIOThreadPool
    /// The bandwidth cap of all destinations together.
    let bucket: NIOLockedValueBox<TokenBucket>
    /// This destination's scheduling, shared with the `Uploader` (status, operator, reloads).
    let scheduler: NIOLockedValueBox<DestinationScheduler>
    /// Filled into instances lacking IssuerOfPatientID; nil: sent unchanged.
    let issuer: String?
    /// `[site] issuer_of_patient_id`: the issuer of an instance received without one.
    let siteIssuer: String
    let logger: Logger
    let wakeup = Wakeup()
    let audit: AuditTrail?

    var name: String { settings.name }

    init(settings: DestinationSettings, upload: UploadSettings, sharing: SharingRules?, issuer: String?, spool: Spool,
         threadPool: NIOThreadPool, bucket: NIOLockedValueBox<TokenBucket>,
         scheduler: NIOLockedValueBox<DestinationScheduler>, logger: Logger, audit: AuditTrail? = nil) {
        self.audit = audit
        self.settings = settings
        self.upload = upload
        self.sharing = sharing
        self.issuer = upload.fillIssuerOfPatientID ? issuer : nil
        self.siteIssuer = issuer ?? ""
        self.spool = spool
        self.threadPool = threadPool
        self.bucket = bucket
        self.scheduler = scheduler
        var logger = logger
        logger[metadataKey: "destination"] = "\(settings.name)"
        self.logger = logger
    }

    /// Runs a blocking spool call off the cooperative threads.
    func database<T: Sendable>(_ body: @escaping @Sendable (SpoolDatabase) throws -> T) async throws -> T {
        let database = spool.database
        return try await threadPool.runIfActive { try body(database) }
    }

    /// Runs a spool write that must happen even when the task is cancelled. The async
    /// `runIfActive` (used by `database`) drops work not started yet once its task is
    /// cancelled; the future-returning one does not look at the task, and `get()` waits for
    /// the future whatever happens to the waiter. Structured: the caller waits for the write.
    func record<T: Sendable>(_ body: @escaping @Sendable (SpoolDatabase) throws -> T) async throws -> T {
        let database = spool.database
        return try await threadPool.runIfActive(eventLoop: MultiThreadedEventLoopGroup.singleton.any()) {
            try body(database)
        }.get()
    }

    func makeClient() throws -> DICOMwebClient {
        try settings.makeClient(upload: upload, logger: logger)
    }

    func run() async {
        let client: DICOMwebClient
        do {
            client = try makeClient()
            scheduler.withLockedValue { $0.clientCreated() }
        } catch {
            let message = "\(error)"
            scheduler.withLockedValue { $0.clientUnavailable(message, at: Date()) }
            logger.error("destination unusable: fix the configuration and reload", metadata: ["error": "\(message)"])
            // Nothing is sent; instances wait in the queue until a reload brings a usable client.
            while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
            return
        }
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                switch scheduler.withLockedValue({ $0.next(now: Date()) }) {
                case .takeChunk:
                    guard let chunk = try? await takeChunk(), !chunk.isEmpty else {
                        scheduler.withLockedValue { $0.nothingDue() }
                        continue
                    }
                    // Taken means in flight: even when cancelled now, `send` records the
                    // chunk (requeued), so it must run.
                    scheduler.withLockedValue { $0.chunkTaken() }
                    group.addTask {
                        await self.send(chunk, client: client)
                        self.scheduler.withLockedValue { $0.chunkFinished() }
                        self.wakeup.signal()
                    }
                case .verify:
                    group.addTask {
                        await self.verifyDueStudies(client: client)
                        self.scheduler.withLockedValue { $0.verificationFinished() }
                    }
                case .wait(let until):
                    let seconds = until.map { max(0, $0.timeIntervalSinceNow) } ?? 3600
                    await wakeup.wait(upTo: .milliseconds(Int64(seconds * 1000)))
                }
            }
        }
        try? await client.shutdown()
    }

    private func takeChunk() async throws -> [ChunkInstance] {
        let (name, count, bytes, sharing) = (settings.name, upload.chunkMaxInstances, upload.chunkMaxBytes, sharing)
        return try await database {
            try $0.takeChunk(destination: name, maxInstances: count, maxBytes: bytes, sharing: sharing)
        }
    }

    // MARK: Sending

    /// Sends one chunk and records each instance's outcome.
    func send(_ chunk: [ChunkInstance], client: DICOMwebClient) async {
        var outcomes: [(instanceID: Int64, outcome: DeliveryOutcome)] = []
        var prepared: [(instance: ChunkInstance, outgoing: OutgoingInstance)] = []
        // A chunk is one study: one patient, one identity in force (HL7 identity updates).
        let identity: PatientIdentity?
        do {
            identity = try chunk.first.flatMap { try spool.database.patientIdentity(ofStudy: $0.studyInstanceUID,
                                                                                    siteIssuer: siteIssuer) }
        } catch {
            logger.error("cannot read the patient's identity: chunk sent again later", metadata: ["error": "\(error)"])
            try? await record { [name = settings.name] in
                try $0.complete(destination: name, outcomes: chunk.map { ($0.instanceID, .requeue) })
            }
            return
        }
        for var instance in chunk {
            do {
                if instance.sha256.isEmpty {
                    // Received moments ago, not digested yet (Spool.digestPending): hash it now.
                    let location = instance.location
                    instance.sha256 = try Spool.sha256(of: spool.files.absolutePath(location.relativePath),
                                                       offset: location.offset, length: location.length)
                    try? spool.database.storeDigest(instanceID: instance.instanceID, sha256: instance.sha256)
                }
                let outgoing = try OutgoingInstance(instance, root: spool.files.root, issuer: issuer, identity: identity)
                for note in outgoing.notes {
                    logger.notice("instance not sent exactly as the identity in force asks", metadata: [
                        "sop_instance_uid": "\(instance.sopInstanceUID)", "reason": "\(note)"])
                }
                prepared.append((instance, outgoing))
            } catch {
                logger.error("spooled instance unreadable: rejected", metadata: [
                    "sop_instance_uid": "\(instance.sopInstanceUID)", "error": "\(error)"])
                outcomes.append((instance.instanceID, .rejected(reason: "spool file unreadable: \(error)")))
            }
        }
        outcomes += await deliver(prepared, client: client)
        let name = settings.name
        let recorded = outcomes
        do {
            // Even when a reload or a shutdown cancelled this task: else the rows would stay in
            // flight until the next start.
            try await record { try $0.complete(destination: name, outcomes: recorded) }
        } catch {
            // The rows stay in flight and go back to the queue at the next start.
            logger.error("cannot record upload outcomes", metadata: ["error": "\(error)"])
        }
        let stored = outcomes.filter { if case .stored = $0.outcome { true } else { false } }.count
        await audit?.record(AuditTrail.uploadEvents(chunk, outcomes: outcomes, destination: name))
        logger.debug("chunk sent", metadata: [
            "study_uid": "\(chunk.first?.studyInstanceUID ?? "")", "instances": "\(chunk.count)",
            "stored": "\(stored)"])
    }

    /// One STOW-RS request for `prepared`; a request refused for its content is retried one
    /// instance at a time, so a bad instance is rejected alone.
    private func deliver(_ prepared: [(instance: ChunkInstance, outgoing: OutgoingInstance)],
                         client: DICOMwebClient) async -> [(instanceID: Int64, outcome: DeliveryOutcome)] {
        guard !prepared.isEmpty else { return [] }
        // 1 MiB reads: four times fewer hops through the HTTP client than the 256 KiB default.
        let body = STOWRequestBody(parts: prepared.map(\.outgoing.part), chunkSize: 1 << 20)
        var pace: (@Sendable (Int) async throws -> Void)?
        if bucket.withLockedValue({ $0.bytesPerSecond }) != nil || !upload.bandwidthSchedule.isEmpty {
            let bucket = self.bucket
            pace = { @Sendable bytes in
                if let wait = bucket.withLockedValue({ $0.reserve(bytes, at: .now) }) { try await Task.sleep(for: wait) }
            }
        }
        do {
            let uids = prepared.map(\.instance.sopInstanceUID)
            let results: [String: STOWInstanceResult]
            do {
                results = try await client.store(body, sopInstanceUIDs: uids, pace: pace)
            } catch where error.code == .connectionClosed && !Task.isCancelled {
                // Most often a keep-alive connection the server closed while idle: once more on a new one.
                logger.debug("connection closed by the server, sending again", metadata: ["error": "\(error)"])
                results = try await client.store(body, sopInstanceUIDs: uids, pace: pace)
            }
            let now = Date()
            await hubAnswered(at: now)
            let backoff = scheduler.withLockedValue { $0.settings.backoff }
            return ChunkVerdict.outcomes(for: prepared.map { ($0.instance, $0.outgoing.sentSHA256) }, results: results,
                                         now: now, retryDelay: { backoff.delay(afterFailures: $0) })
        } catch {
            if Task.isCancelled {
                return prepared.map { ($0.instance.instanceID, .requeue) }
            }
            switch ChunkVerdict.disposition(of: error) {
            case .holdDestination:
                let until = destinationFailed(error)
                return prepared.map { ($0.instance.instanceID, .retry(at: until, reason: error.description)) }
            case .isolate where prepared.count > 1:
                logger.notice("chunk refused: sending its instances one by one", metadata: ["error": "\(error)"])
                var outcomes: [(instanceID: Int64, outcome: DeliveryOutcome)] = []
                for one in prepared {
                    outcomes += await deliver([one], client: client)
                }
                return outcomes
            case .isolate:
                let instance = prepared[0].instance
                logger.warning("instance refused by the hub: rejected", metadata: [
                    "sop_instance_uid": "\(instance.sopInstanceUID)", "study_uid": "\(instance.studyInstanceUID)",
                    "error": "\(error)"])
                return [(instance.instanceID, .rejected(reason: error.description))]
            }
        }
    }

    /// Tells the scheduler; a destination that was failing gets its retries due at once.
    private func hubAnswered(at now: Date) async {
        guard case .expediteRetries = scheduler.withLockedValue({ $0.hubAnswered(at: now) }) else { return }
        logger.notice("destination answers again")
        let name = settings.name
        try? await database { try $0.expediteRetries(destination: name) }
    }

    /// Holds the destination after a failure; returns until when.
    private func destinationFailed(_ error: DICOMwebError) -> Date {
        let hold = scheduler.withLockedValue {
            $0.hubFailed(error.description, at: Date(), jitter: .random(in: -1...1))
        }
        logger.warning("destination failed: holding it", metadata: [
            "error": "\(error)", "kind": "\(error.kind)", "consecutive_failures": "\(hold.consecutiveFailures)",
            "next_attempt": "\(hold.until)"])
        return hold.until
    }

    // MARK: Verification

    /// Lists complete, stored studies at the hub: verified when every instance is there,
    /// missing ones queued again.
    func verifyDueStudies(client: DICOMwebClient) async {
        let (name, stableBefore) = (settings.name, Date().addingTimeInterval(-Backoff.seconds(upload.stableAfter)))
        guard let candidates = try? await database({
            try $0.verificationCandidates(destination: name, stableBefore: stableBefore)
        }) else { return }
        for candidate in candidates where !Task.isCancelled {
            do {
                let atHub = try await client.instances(inStudy: candidate.studyInstanceUID)
                let missing = candidate.instances.filter { atHub[$0.key] == nil }.map(\.value)
                let verified = try await database {
                    try $0.recordVerification(candidate, destination: name, missing: missing)
                }
                if verified {
                    await audit?.record(AuditTrail.verificationEvent(study: candidate.studyInstanceUID,
                                                                     instances: candidate.instances.count, destination: name))
                    logger.info("study verified at the destination", metadata: [
                        "study_uid": "\(candidate.studyInstanceUID)", "instances": "\(candidate.instances.count)"])
                } else if !missing.isEmpty {
                    logger.warning("instances missing at the hub after upload: queued again", metadata: [
                        "study_uid": "\(candidate.studyInstanceUID)", "missing": "\(missing.count)"])
                }
                await hubAnswered(at: Date())
            } catch let error as DICOMwebError {
                if Task.isCancelled { return }
                let until = destinationFailed(error)
                try? await database { try $0.postponeVerification(candidate, destination: name, until: until) }
                return
            } catch {
                logger.error("cannot record a verification", metadata: ["error": "\(error)"])
                return
            }
        }
    }
}
