import Foundation
import Spool

/// What the status socket asks of the migration (docs/migration.md, docs/status-socket.md).
extension BackfillService {
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
}
