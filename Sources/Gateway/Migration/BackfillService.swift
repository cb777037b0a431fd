import DICOMNetwork
import DICOMweb
import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOPosix
import ServiceLifecycle
import Spool

/// The migration of the site's archive (docs/migration.md): walks the PACS by C-FIND, day by
/// day, and retrieves each study by C-MOVE to Passerelle's own AE title (or by C-GET, per
/// `[[ae]] retrieve`), from where the normal ingest and upload take it to the archive. Only what neither the archive nor the spool holds
/// is moved, so a restart (kill -9 included) never fetches twice what arrived.
///
/// Polite: retrievals wait outside the schedule, above the hourly cap, below the free-space
/// floor and above the upload backlog; the walk's queries wait outside the schedule too.
final class BackfillService: Service, Sendable {
    let spool: Spool
    let threadPool: NIOThreadPool
    let logger: Logger
    let configuration: @Sendable () -> GatewayConfiguration
    let wakeup = Wakeup()
    let walkWakeup = Wakeup()
    let live = NIOLockedValueBox(Live())
    private let archive = ArchiveClients()
    let surveys: BackfillSurveys
    private let uploaderWakeup: @Sendable () -> Void
    private let sink: RetrievalSink
    private let instancesRetrieved = Counter(label: "passerelle_backfill_instances_retrieved_total")

    struct Live {
        /// Why retrievals wait, per job (nil: they do not).
        var gates: [Int64: String] = [:]
        var retrieving: Int = 0
        /// A PACS ("pacs:TITLE") or the archive ("archive") that could not be reached: nothing
        /// asks it again before `retryAt`, and no study counts an attempt meanwhile.
        var outages: [String: Outage] = [:]
    }

    struct Outage {
        var since: Date
        var retryAt: Date
        var delay: Double
        var error: String
    }

    init(spool: Spool, threadPool: NIOThreadPool, logger: Logger,
         configuration: @escaping @Sendable () -> GatewayConfiguration,
         sink: RetrievalSink, uploaderWakeup: @escaping @Sendable () -> Void) {
        self.uploaderWakeup = uploaderWakeup
        self.sink = sink
        self.spool = spool
        self.threadPool = threadPool
        self.logger = logger
        self.configuration = configuration
        self.surveys = BackfillSurveys(threadPool: threadPool, logger: logger, archive: archive)
    }

    func database<T: Sendable>(_ body: @escaping @Sendable (SpoolDatabase) throws -> T) async throws -> T {
        let database = spool.database
        return try await threadPool.runIfActive { try body(database) }
    }

    func run() async {
        do {
            let reset = try await database { try $0.resetInterruptedBackfill() }
            if reset > 0 { logger.notice("backfill: retrievals interrupted by the last stop start again", metadata: ["studies": "\(reset)"]) }
        } catch {
            logger.error("backfill: spool unavailable", metadata: ["error": "\(error)"])
        }
        await cancelWhenGracefulShutdown {
            await withTaskCancellationHandler {
                await withDiscardingTaskGroup { group in
                    group.addTask { await self.walk() }
                    group.addTask { await self.retrieve() }
                    group.addTask { await self.surveys.serve() }
                }
            } onCancel: {
                self.surveys.finish()
            }
        }
        await archive.shutdown()
    }

    // MARK: The walk

    /// One association carries the walk's queries while there are some (a year of days is
    /// hundreds of C-FINDs in a row); it is released when the walk waits, aborted on an error.
    private struct WalkSession {
        var pacs: KnownAE
        var callingAETitle: String
        var session: PACSSession
    }

    private func walk() async {
        var held: WalkSession?
        while !Task.isCancelled {
            let configuration = configuration()
            var queried = false
            do {
                let jobs = try await database { try $0.backfillJobs(includeFinished: false) }
                let open = Set(jobs.filter {
                    $0.state == .running && windowsOpen(for: $0, configuration.backfill) && outage(of: $0.source) == nil
                }.map(\.id))
                if !open.isEmpty, let slice = try await database({ try $0.nextBackfillSlice(jobs: open) }),
                   let job = jobs.first(where: { $0.id == slice.jobID }) {
                    held = await query(slice, of: job, configuration: configuration, held: held)
                    queried = true
                }
                if queried { wakeup.signal() }
            } catch where !Task.isCancelled {
                logger.error("backfill: spool unavailable", metadata: ["error": "\(error)"])
            } catch {
                break
            }
            if !queried {
                if let session = held?.session {
                    held = nil
                    await session.release()
                }
                await walkWakeup.wait(upTo: untilNextTry(atMost: 30))
            }
        }
        if let session = held?.session { await session.association.abort() }
    }

    /// Queries one slice, on `held` when it is an association with the job's PACS; returns the
    /// association to keep (nil after an error).
    private func query(_ slice: BackfillSlice, of job: BackfillJob, configuration: GatewayConfiguration,
                       held: WalkSession?) async -> WalkSession? {
        guard let pacs = configuration.knownAEs.first(where: { $0.title == job.source }) else {
            try? await database { try $0.failBackfillSlice(slice, error: "no [[ae]] entry titled \(job.source)", retryAt: nil) }
            return held
        }
        let settings = configuration.backfill
        var current = held
        if let kept = current, kept.pacs != pacs || kept.callingAETitle != configuration.dicom.aeTitle {
            current = nil
            await kept.session.release()
        }
        do {
            if current == nil {
                current = WalkSession(pacs: pacs, callingAETitle: configuration.dicom.aeTitle, session: try await PACSSession.open(
                    pacs, callingAETitle: configuration.dicom.aeTitle, timeout: settings.timeout, threadPool: threadPool,
                    logger: logger))
            }
            let session = current!.session
            let answer: PACSSession.StudyAnswer
            do {
                answer = try await session.studies(on: slice.studyDate, timeRange: slice.timeRange,
                                                   findLimit: settings.findLimit)
            } catch {
                current = nil
                await session.association.abort()
                throw error
            }
            var narrower: [String] = []
            if !answer.complete {
                if let split = BackfillWalk.narrower(timeRange: slice.timeRange) {
                    narrower = split
                    logger.info("backfill: capped answer, query split", metadata: [
                        "day": "\(slice.studyDate)", "time": "\(slice.timeRange)",
                        "answers": "\(answer.studies.count)", "status": "\(answer.status)", "into": "\(split.count)",
                    ])
                } else {
                    logger.warning("backfill: a ten-minute query is still capped; studies beyond the PACS's limit are missed",
                                   metadata: ["day": "\(slice.studyDate)", "time": "\(slice.timeRange)",
                                              "answers": "\(answer.studies.count)"])
                }
            }
            let studies = answer.studies.filter { BackfillWalk.selected($0, modalities: job.modalities) }
            let split = narrower
            try await database { try $0.recordBackfillSlice(slice, studies: studies, narrower: split) }
            recovered(Self.pacsKey(job.source))
            if !studies.isEmpty { wakeup.signal() }
            return current
        } catch {
            if let session = current?.session { await session.association.abort() }
            if let key = outageKey(of: error, source: job.source) {
                let outage = failed(key, error)
                try? await database {
                    try $0.failBackfillSlice(slice, error: "\(error)", retryAt: outage.retryAt, countAttempt: false)
                }
                return nil
            }
            let retry = slice.attempts + 1 < settings.maxAttempts
                ? Date().addingTimeInterval(Backoff.seconds(settings.retryDelay) * Double(1 << slice.attempts)) : nil
            logger.warning("backfill: C-FIND failed", metadata: [
                "day": "\(slice.studyDate)", "error": "\(error)", "retry": "\(retry.map { "\($0)" } ?? "no, given up")",
            ])
            try? await database { try $0.failBackfillSlice(slice, error: "\(error)", retryAt: retry) }
            return nil
        }
    }

    // MARK: Retrievals

    private func retrieve() async {
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                let configuration = configuration()
                let settings = configuration.backfill
                do {
                    var jobs = try await database { try $0.backfillJobs(includeFinished: false) }.filter { $0.state == .running }
                    if !jobs.isEmpty, live.withLockedValue({ $0.retrieving }) == 0 {
                        let finished = try await database { try $0.finishBackfillJobs() }
                        for id in finished { logger.notice("backfill job done", metadata: ["job": "\(id)"]) }
                        jobs.removeAll { finished.contains($0.id) }
                    }
                    guard !jobs.isEmpty else {
                        // Nothing to do (no job, or all paused): no gate to evaluate.
                        live.withLockedValue { $0.gates = [:] }
                        await wakeup.wait(upTo: untilNextTry(atMost: 15))
                        continue
                    }
                    var gates: [Int64: String] = [:]
                    let common = try await commonGate(settings)
                    var open: Set<Int64> = []
                    for job in jobs {
                        if let common {
                            gates[job.id] = common
                        } else if let down = outage(of: job.source) {
                            gates[job.id] = down
                        } else if !windowsOpen(for: job, settings) {
                            gates[job.id] = "outside the schedule (\((job.windows ?? settings.schedule.map(\.text)).joined(separator: ", ")))"
                        } else {
                            open.insert(job.id)
                        }
                    }
                    live.withLockedValue { $0.gates = gates }
                    let running = live.withLockedValue { $0.retrieving }
                    var room = settings.parallel - running
                    if settings.maxStudiesPerHour > 0 {
                        let started = try await database { try $0.backfillRetrievalsStarted(since: Date().addingTimeInterval(-3600)) }
                        room = min(room, settings.maxStudiesPerHour - started)
                        if room <= 0, running == 0 {
                            let text = "max_studies_per_hour reached (\(started) in the last hour)"
                            live.withLockedValue { state in for id in open { state.gates[id] = text } }
                        }
                    }
                    if !open.isEmpty, room > 0 {
                        let claimed = try await database { [room, open] in try $0.claimBackfillStudies(limit: room, jobs: open) }
                        for item in claimed {
                            live.withLockedValue { $0.retrieving += 1 }
                            group.addTask {
                                await self.retrieve(item, configuration: configuration)
                                self.live.withLockedValue { $0.retrieving -= 1 }
                                self.wakeup.signal()
                            }
                        }
                        if !claimed.isEmpty { continue }
                    }
                } catch where !Task.isCancelled {
                    logger.error("backfill: spool unavailable", metadata: ["error": "\(error)"])
                } catch {
                    return
                }
                await wakeup.wait(upTo: untilNextTry(atMost: 15))
            }
        }
    }

    /// Why no retrieval may start now, whatever the job.
    private func commonGate(_ settings: BackfillSettings) async throws -> String? {
        if let space = try? spool.files.diskSpace() {
            let floor = settings.pauseBelowFree.bytes(ofTotal: space.total)
            if space.available < floor {
                return "spool free space \(Self.bytes(space.available)) below pause_below_free (\(Self.bytes(floor)))"
            }
        }
        let waiting = try await database { try $0.instancesAwaitingUpload() }
        if waiting > settings.pauseAboveQueue {
            return "\(waiting) instances await upload, above pause_above_queue (\(settings.pauseAboveQueue))"
        }
        return nil
    }

    private func windowsOpen(for job: BackfillJob, _ settings: BackfillSettings) -> Bool {
        let windows = job.windows.map { $0.compactMap(TimeWindow.parse) } ?? settings.schedule
        return windows.isEmpty || windows.contains { $0.contains(Date()) }
    }

    private static func bytes(_ count: UInt64) -> String {
        ByteCountFormatter.string(fromByteCount: Int64(clamping: count), countStyle: .binary)
    }

    /// One study: what the PACS holds, minus what the archive and the spool hold, moved.
    private func retrieve(_ item: BackfillStudy, configuration: GatewayConfiguration) async {
        let uid = item.study.studyInstanceUID
        let metadata: Logger.Metadata = ["job": "\(item.jobID)", "study": "\(uid)"]
        func finish(_ state: BackfillStudyState, retrieved: Int = 0, expected: Int? = nil, reason: String? = nil,
                    retryAt: Date? = nil, countAttempt: Bool = true) async {
            do {
                try await database {
                    try $0.finishBackfillStudy(job: item.jobID, study: uid, state: state, retrieved: retrieved,
                                               expected: expected, reason: reason, retryAt: retryAt,
                                               countAttempt: countAttempt)
                }
            } catch {
                logger.error("backfill: cannot record a retrieval", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            }
        }
        guard let pacs = configuration.knownAEs.first(where: { $0.title == item.source }) else {
            await finish(.failed, reason: "no [[ae]] entry titled \(item.source)")
            return
        }
        do {
            let session = try await PACSSession.open(pacs, callingAETitle: configuration.dicom.aeTitle,
                                                     timeout: configuration.backfill.timeout, threadPool: threadPool,
                                                     logger: logger)
            let outcome: (state: BackfillStudyState, retrieved: Int, expected: Int, reason: String?)
            do {
                outcome = try await retrieve(item, session: session, pacs: pacs, configuration: configuration,
                                             metadata: metadata)
                await session.release()
            } catch {
                await session.association.abort()
                throw error
            }
            recovered(Self.pacsKey(item.source))
            recovered("archive")
            if outcome.state == .found {
                let retry = retryAt(after: item.attempts, configuration.backfill)
                if retry == nil {
                    logger.warning("backfill: study given up", metadata: metadata.merging(["reason": "\(outcome.reason ?? "")"]) { $1 })
                }
                await finish(retry == nil ? .failed : .found, retrieved: outcome.retrieved, expected: outcome.expected,
                             reason: outcome.reason, retryAt: retry)
            } else {
                await finish(outcome.state, retrieved: outcome.retrieved, expected: outcome.expected, reason: outcome.reason)
            }
        } catch {
            if let key = outageKey(of: error, source: item.source) {
                // The PACS (or the archive) as a whole: the study waits for it without an attempt.
                let outage = failed(key, error)
                await finish(.found, reason: "\(error)", retryAt: outage.retryAt, countAttempt: false)
                return
            }
            let retry = retryAt(after: item.attempts, configuration.backfill)
            logger.warning("backfill: retrieval failed", metadata: metadata.merging([
                "error": "\(error)", "retry": "\(retry.map { "\($0)" } ?? "no, given up")",
            ]) { $1 })
            await finish(retry == nil ? .failed : .found, reason: "\(error)", retryAt: retry)
        }
    }

    /// When a study tried `attempts` times already is tried again; nil: given up.
    private func retryAt(after attempts: Int, _ settings: BackfillSettings) -> Date? {
        guard attempts + 1 < settings.maxAttempts else { return nil }
        return Date().addingTimeInterval(Backoff.seconds(settings.retryDelay) * Double(1 << min(attempts, 16)))
    }

    private func retrieve(_ item: BackfillStudy, session: PACSSession, pacs: KnownAE, configuration: GatewayConfiguration,
                          metadata: Logger.Metadata) async throws
        -> (state: BackfillStudyState, retrieved: Int, expected: Int, reason: String?) {
        let uid = item.study.studyInstanceUID
        // What this job brought in, however many attempts and restarts it took.
        let broughtIn: @Sendable () async throws -> Int = { [self] in
            try await database { try $0.instancesReceived(ofStudy: uid, from: pacs.title, since: item.firstStartedAt) }
        }
        let bySeries = try await session.instances(ofStudy: uid, classes: pacs.retrieve == .get)
        let atPACS = bySeries.values.reduce(into: Set<String>()) { $0.formUnion($1.keys) }
        guard !atPACS.isEmpty else {
            return (.failed, 0, 0, "the PACS lists no instance of the study")
        }
        let atArchive: Set<String>
        if let client = try await archive.client(for: configuration, logger: logger) {
            do {
                atArchive = Set(try await client.instances(inStudy: uid).keys)
            } catch {
                throw BackfillError.archive("\(error)")
            }
        } else {
            atArchive = []
        }
        if atPACS.isSubset(of: atArchive) {
            // An attempt cut short by a stop may have brought everything in already.
            let earlier = try await broughtIn()
            if earlier > 0 { return (.retrieved, earlier, atPACS.count, nil) }
            logger.info("backfill: study already archived", metadata: metadata)
            return (.alreadyArchived, 0, atPACS.count, nil)
        }
        let inSpool = try await database { try $0.spoolInstanceUIDs(ofStudy: uid) }
        // Delivered once, gone from the archive since: sent again from the spool.
        let lost = inSpool.intersection(atPACS).subtracting(atArchive)
        if let archive = ArchiveClients.archive(in: configuration), !lost.isEmpty {
            let queued = try await database { try $0.requeueLostDeliveries(study: uid, sopInstanceUIDs: lost,
                                                                            destination: archive.name) }
            if queued > 0 {
                logger.notice("backfill: instances the archive lost are uploaded again from the spool",
                              metadata: metadata.merging(["instances": "\(queued)"]) { $1 })
                uploaderWakeup()
            }
        }
        let missing = atPACS.subtracting(atArchive).subtracting(inSpool)
        if missing.isEmpty { return (.retrieved, try await broughtIn(), atPACS.count, nil) }
        let subset = missing.count == atPACS.count ? nil
            : bySeries.mapValues { Set($0.keys).intersection(missing).sorted() }.filter { !$0.value.isEmpty }
        let final: RetrieveResponseFields
        switch pacs.retrieve {
        case .move:
            final = try await session.move(study: uid, instances: subset, to: configuration.dicom.aeTitle) { _ in }
        case .get:
            let classes = Set(bySeries.values.flatMap { $0.filter { missing.contains($0.key) }.values })
            final = try await session.get(study: uid, instances: subset, sopClasses: classes, pacs: pacs,
                                          callingAETitle: configuration.dicom.aeTitle,
                                          timeout: configuration.backfill.timeout, threadPool: threadPool,
                                          logger: logger, sink: sink)
        }
        // Acknowledged instances are durable; their index rows follow within milliseconds.
        var arrived = Set<String>()
        for attempt in 0..<20 {
            arrived = try await database { try $0.spoolInstanceUIDs(ofStudy: uid) }.intersection(missing)
            if arrived.count == missing.count || attempt == 19 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let absent = missing.count - arrived.count
        instancesRetrieved.increment(by: arrived.count)
        let total = try await broughtIn()
        logger.info("backfill: study retrieved", metadata: metadata.merging([
            "moved": "\(arrived.count)", "absent": "\(absent)", "status": "\(final.status)",
            "failed_suboperations": "\(final.numberOfFailedSuboperations ?? 0)",
        ]) { $1 })
        guard absent == 0 else {
            return (.found, total, atPACS.count,
                    "\(absent) of \(missing.count) instances did not arrive (C-MOVE status \(final.status), "
                        + "\(final.numberOfFailedSuboperations ?? 0) failed sub-operations"
                        + (final.errorComment.map { ": \($0)" } ?? "") + ")")
        }
        return (.retrieved, total, atPACS.count, nil)
    }
}
