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
    private let spool: Spool
    private let threadPool: NIOThreadPool
    private let logger: Logger
    private let configuration: @Sendable () -> GatewayConfiguration
    let wakeup = Wakeup()
    private let walkWakeup = Wakeup()
    private let live = NIOLockedValueBox(Live())
    private let archive = ArchiveClients()
    private let surveys: BackfillSurveys
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

    private func database<T: Sendable>(_ body: @escaping @Sendable (SpoolDatabase) throws -> T) async throws -> T {
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

    // MARK: Commands (status socket)

    struct StartRequest: Sendable {
        var source: String
        var since: String?
        var until: String?
        var modalities: [String]
        var windows: [String]?
    }

    /// Checks a request and creates its job; returns its ID.
    func start(_ request: StartRequest) throws(StatusError) -> Int64 {
        let configuration = configuration()
        let selection = try Self.selection(source: request.source, since: request.since, until: request.until,
                                           modalities: request.modalities, configuration: configuration)
        if let windows = request.windows {
            for window in windows where TimeWindow.parse(window) == nil {
                throw StatusError(code: "bad_request",
                                  message: "cannot read the window \"\(window)\"; write it as \"20:00-07:00\" or \"sat-sun 00:00-24:00\"")
            }
        }
        let id: Int64
        do {
            id = try spool.database.createBackfillJob(
                source: selection.pacs.title, since: selection.since, until: selection.until,
                modalities: selection.modalities, windows: request.windows,
                days: BackfillWalk.days(since: selection.since, until: selection.until))
        } catch {
            throw StatusError(code: "spool", message: "cannot record the job: \(error)")
        }
        logger.notice("backfill job started", metadata: [
            "job": "\(id)", "source": "\(selection.pacs.title)", "since": "\(selection.since)", "until": "\(selection.until)",
            "modalities": "\(selection.modalities.joined(separator: ","))",
        ])
        walkWakeup.signal()
        wakeup.signal()
        return id
    }

    /// Queues what a finished reconciliation found missing or incomplete at the archive as a
    /// job of its own.
    func fix(survey id: Int) throws(StatusError) -> Int64 {
        guard let survey = surveys.report(id), survey.kind == BackfillSurveys.Kind.reconcile.rawValue else {
            throw StatusError(code: "unknown_survey", message: "no reconciliation \(id) (passerelled restarted?)")
        }
        guard let result = survey.result, let selection = surveys.selection(id) else {
            throw StatusError(code: "not_ready", message: "reconciliation \(id) is \(survey.state)")
        }
        let studies = (result.missing + result.countDiffers).map {
            FoundStudy(studyInstanceUID: $0.study, studyDate: $0.studyDate, patientID: $0.patientID, modalities: [],
                       instances: $0.pacsInstances)
        }
        guard !studies.isEmpty else { throw StatusError(code: "nothing_to_fix", message: "nothing is missing at the archive") }
        do {
            let job = try spool.database.createBackfillJob(
                source: selection.pacs.title, since: selection.since, until: selection.until, modalities: [],
                windows: nil, days: [], studies: studies, kind: .fix)
            logger.notice("backfill job queued by reconciliation", metadata: ["job": "\(job)", "studies": "\(studies.count)"])
            wakeup.signal()
            return job
        } catch {
            throw StatusError(code: "spool", message: "cannot record the job: \(error)")
        }
    }

    func setPaused(_ paused: Bool, job: Int64?) throws(StatusError) -> [Int64] {
        do {
            let changed = try spool.database.setBackfillPaused(paused, job: job)
            if !changed.isEmpty {
                logger.notice(paused ? "backfill paused" : "backfill resumed", metadata: ["jobs": "\(changed)"])
                walkWakeup.signal()
                wakeup.signal()
            }
            return changed
        } catch {
            throw StatusError(code: "spool", message: "\(error)")
        }
    }

    func cancel(job: Int64) throws(StatusError) -> Bool {
        do {
            let cancelled = try spool.database.cancelBackfill(job: job)
            if cancelled { logger.notice("backfill job cancelled", metadata: ["job": "\(job)"]) }
            return cancelled
        } catch {
            throw StatusError(code: "spool", message: "\(error)")
        }
    }

    /// Progress of every job, with what each waits for.
    func report() throws -> [StatusReport.BackfillJobReport] {
        let settings = configuration().backfill
        let gates = live.withLockedValue { $0.gates }
        return try spool.database.backfillProgress().map { progress in
            StatusReport.BackfillJobReport(progress, gate: progress.job.state == .running ? gates[progress.job.id] : nil,
                                           settings: settings)
        }
    }

    func beginSurvey(_ request: BackfillSurveys.Request) throws(StatusError) -> Int {
        let configuration = configuration()
        let selection = try Self.selection(source: request.source, since: request.since, until: request.until,
                                           modalities: request.modalities, configuration: configuration)
        return surveys.begin(request.kind, selection: selection, configuration: configuration, spool: spool)
    }

    func survey(_ id: Int) -> BackfillSurveys.Report? { surveys.report(id) }

    struct Selection: Sendable {
        var pacs: KnownAE
        var since: String
        var until: String
        var modalities: [String]
    }

    /// What `--from`, `--since`, `--until` and `--modalities` select, checked.
    static func selection(source: String, since: String?, until: String?, modalities: [String],
                          configuration: GatewayConfiguration) throws(StatusError) -> Selection {
        guard let pacs = configuration.knownAEs.first(where: { $0.title == source }) else {
            let known = configuration.knownAEs.map(\.title)
            throw StatusError(code: "unknown_ae", message: "no [[ae]] entry titled \"\(source)\""
                + (known.isEmpty ? "; add one with its title, host and port" : "; known: \(known.joined(separator: ", "))"))
        }
        let allowed = configuration.dicom.allowedCallingAETitles
        if !allowed.isEmpty, !allowed.contains(pacs.title) {
            throw StatusError(code: "not_allowed", message: "\(pacs.title) is not in dicom.allowed_calling_aets: "
                + "the instances it sends back would be refused; add it there and reload")
        }
        func day(_ text: String?, _ name: String, default value: String) throws(StatusError) -> String {
            guard let text else { return value }
            guard let day = BackfillWalk.normalizedDate(text) else {
                throw StatusError(code: "bad_request", message: "\(name) \"\(text)\" is not a date; write it as 2024-01-31")
            }
            return day
        }
        let first = try day(since, "--since", default: BackfillSurveys.earliest)
        let last = try day(until, "--until", default: BackfillWalk.today())
        guard first <= last else {
            throw StatusError(code: "bad_request", message: "--since \(first) is after --until \(last)")
        }
        let modalities = modalities.map { $0.trimmingCharacters(in: .whitespaces).uppercased() }.filter { !$0.isEmpty }
        for modality in modalities where modality.count > 16 || !modality.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
            throw StatusError(code: "bad_request", message: "\"\(modality)\" is not a modality (CT, MR, CR…)")
        }
        return Selection(pacs: pacs, since: first, until: last, modalities: modalities)
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

    // MARK: Outages

    /// How long a loop may sleep: until the next try at an unreachable peer, at most `limit` s.
    private func untilNextTry(atMost limit: Double) -> Duration {
        let now = Date()
        let next = live.withLockedValue { $0.outages.values.map(\.retryAt).filter { $0 > now }.min() }
        let seconds = next.map { min(limit, $0.timeIntervalSince(now) + 0.01) } ?? limit
        return .milliseconds(Int64(seconds * 1000))
    }

    static func pacsKey(_ title: String) -> String { "pacs:" + title }

    /// Which peer an error says is unreachable as a whole: the PACS when the association
    /// failed (connection, rejection, abort, timeout), the archive when QIDO-RS failed.
    private func outageKey(of error: any Error, source: String) -> String? {
        if error is DICOMNetworkError { return Self.pacsKey(source) }
        if case BackfillError.archive = error { return "archive" }
        return nil
    }

    /// Why a job's peers make it wait, if they do.
    private func outage(of source: String) -> String? {
        let now = Date()
        return live.withLockedValue { state in
            for (key, name) in [(Self.pacsKey(source), "PACS \(source)"), ("archive", "the archive")] {
                guard let outage = state.outages[key], outage.retryAt > now else { continue }
                return "\(name) unreachable since \(Self.clock(outage.since)) (\(outage.error)); "
                    + "next try at \(Self.clock(outage.retryAt))"
            }
            return nil
        }
    }

    /// Records an outage: the next try waits 2 s, doubling up to 5 min.
    @discardableResult
    private func failed(_ key: String, _ error: any Error) -> Outage {
        let now = Date()
        let (outage, first) = live.withLockedValue { state -> (Outage, Bool) in
            var outage = state.outages[key] ?? Outage(since: now, retryAt: now, delay: 1, error: "")
            let first = state.outages[key] == nil
            outage.delay = min(outage.delay * 2, 300)
            outage.retryAt = now.addingTimeInterval(outage.delay)
            outage.error = "\(error)"
            state.outages[key] = outage
            return (outage, first)
        }
        if first {
            logger.warning("backfill: waiting for an unreachable peer", metadata: ["peer": "\(key)", "error": "\(error)"])
        }
        return outage
    }

    private func recovered(_ key: String) {
        let was = live.withLockedValue { $0.outages.removeValue(forKey: key) }
        if let was {
            logger.notice("backfill: peer reachable again", metadata: [
                "peer": "\(key)", "down_seconds": "\(Int(Date().timeIntervalSince(was.since)))",
            ])
        }
    }

    private static func clock(_ date: Date) -> String {
        let parts = Calendar.current.dateComponents([.hour, .minute, .second], from: date)
        return String(format: "%02d:%02d:%02d", parts.hour ?? 0, parts.minute ?? 0, parts.second ?? 0)
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

/// The archive's DICOMweb client, shared by retrievals and surveys; made again when its
/// settings change.
actor ArchiveClients {
    private var entry: (settings: DestinationSettings, client: DICOMwebClient)?

    /// The destination called `archive`, else the first non-shared one the site uploads to.
    static func archive(in configuration: GatewayConfiguration) -> DestinationSettings? {
        configuration.destinations.first { $0.name == "archive" && $0.upload }
            ?? configuration.destinations.first { $0.upload && !$0.shared }
    }

    func client(for configuration: GatewayConfiguration, logger: Logger) async throws -> DICOMwebClient? {
        guard let settings = Self.archive(in: configuration) else { return nil }
        if let entry, entry.settings == settings { return entry.client }
        if let old = entry?.client { try? await old.shutdown() }
        let client = try settings.makeClient(upload: configuration.upload, logger: logger)
        entry = (settings, client)
        return client
    }

    func shutdown() async {
        try? await entry?.client.shutdown()
        entry = nil
    }
}
