import DICOMNetwork
import DICOMweb
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import Spool

/// `backfill plan` and `reconcile` (docs/migration.md): walks of the PACS by C-FIND only,
/// compared with the archive (QIDO-RS) and the spool, run in the background; the CLI polls
/// their progress and result by ID. Nothing is moved.
final class BackfillSurveys: Sendable {
    enum Kind: String, Sendable { case plan, reconcile }

    struct Request: Sendable {
        var kind: Kind
        var source: String
        var since: String?
        var until: String?
        var modalities: [String]
    }

    /// Progress, then the result (JSON-ready) or the error.
    struct Report: Sendable, Encodable {
        var id: Int
        var kind: String
        var state: String
        var daysTotal: Int
        var daysDone: Int
        var queries: Int
        var error: String?
        var result: SurveyResult?

        enum CodingKeys: String, CodingKey {
            case id, kind, state, daysTotal = "days_total", daysDone = "days_done", queries, error, result
        }
    }

    /// The walk starts here by default: DICOM 3.0, the oldest digital archives a PACS migrates.
    static let earliest = "19930101"

    private struct State {
        var next = 1
        var reports: [Int: Report] = [:]
        var selections: [Int: BackfillService.Selection] = [:]
    }

    private struct Work: Sendable {
        var id: Int
        var kind: Kind
        var days: [String]
        var selection: BackfillService.Selection
        var configuration: GatewayConfiguration
        var spool: Spool
    }

    private let state = NIOLockedValueBox(State())
    private let threadPool: NIOThreadPool
    private let logger: Logger
    private let archive: ArchiveClients
    private let queue: AsyncStream<Work>
    private let enqueue: AsyncStream<Work>.Continuation

    init(threadPool: NIOThreadPool, logger: Logger, archive: ArchiveClients) {
        self.threadPool = threadPool
        self.logger = logger
        self.archive = archive
        (queue, enqueue) = AsyncStream.makeStream(of: Work.self)
    }

    /// Runs the surveys asked for, each as a child task, until the service stops.
    func serve() async {
        await withDiscardingTaskGroup { group in
            for await work in queue {
                group.addTask { await self.run(work) }
            }
        }
    }

    private func run(_ work: Work) async {
        do {
            let result = try await survey(work.id, kind: work.kind, days: work.days, selection: work.selection,
                                          configuration: work.configuration, spool: work.spool)
            update(work.id) { $0.state = "done"; $0.result = result }
        } catch {
            update(work.id) { $0.state = "failed"; $0.error = "\(error)" }
        }
    }

    func begin(_ kind: Kind, selection: BackfillService.Selection, configuration: GatewayConfiguration,
               spool: Spool) -> Int {
        let days = BackfillWalk.days(since: selection.since, until: selection.until)
        let id = state.withLockedValue { state in
            let id = state.next
            state.next += 1
            state.selections[id] = selection
            state.reports[id] = Report(id: id, kind: kind.rawValue, state: "running", daysTotal: days.count, daysDone: 0,
                                       queries: 0)
            return id
        }
        enqueue.yield(Work(id: id, kind: kind, days: days, selection: selection, configuration: configuration,
                           spool: spool))
        state.withLockedValue { state in
            // A long-running daemon keeps the last 32 surveys for the CLI to read.
            for key in state.reports.keys.sorted().dropLast(32) where state.reports[key]?.state != "running" {
                state.reports[key] = nil
                state.selections[key] = nil
            }
        }
        return id
    }

    func report(_ id: Int) -> Report? { state.withLockedValue { $0.reports[id] } }

    func selection(_ id: Int) -> BackfillService.Selection? { state.withLockedValue { $0.selections[id] } }

    func finish() { enqueue.finish() }

    private func update(_ id: Int, _ change: (inout Report) -> Void) {
        state.withLockedValue { state in
            if var report = state.reports[id] {
                change(&report)
                state.reports[id] = report
            }
        }
    }

    private func survey(_ id: Int, kind: Kind, days: [String], selection: BackfillService.Selection,
                        configuration: GatewayConfiguration, spool: Spool) async throws -> SurveyResult {
        let archiveClient = try await archive.client(for: configuration, logger: logger)
        if kind == .reconcile && archiveClient == nil {
            throw BackfillError.configuration("no archive destination is configured to reconcile with")
        }
        var result = SurveyResult()
        let settings = configuration.backfill
        let session = try await PACSSession.open(selection.pacs, callingAETitle: configuration.dicom.aeTitle,
                                                 timeout: settings.timeout, threadPool: threadPool, logger: logger)
        do {
            for day in days {
                try Task.checkCancellation()
                // The day's slices, narrowed while answers come back capped.
                var pending = [""]
                var found: [String: FoundStudy] = [:]
                while let range = pending.popLast() {
                    let answer = try await session.studies(on: day, timeRange: range, findLimit: settings.findLimit)
                    update(id) { $0.queries += 1 }
                    for study in answer.studies where BackfillWalk.selected(study, modalities: selection.modalities) {
                        found[study.studyInstanceUID] = study
                    }
                    if !answer.complete, let narrower = BackfillWalk.narrower(timeRange: range) {
                        pending += narrower
                    }
                }
                var atArchive: [String: Int] = [:]
                if let archiveClient, result.archiveError == nil, kind == .reconcile || !found.isEmpty {
                    switch await Self.studies(at: archiveClient, on: day) {
                    case .success(let studies): atArchive = studies
                    // A plan is still worth having without the archive's side.
                    case .failure(let error) where kind == .plan: result.archiveError = error.description
                    case .failure(let error): throw error
                    }
                }
                let studies = found.values.sorted { $0.studyInstanceUID < $1.studyInstanceUID }
                switch kind {
                case .plan:
                    result.addPlanned(studies, atArchive: atArchive)
                case .reconcile:
                    let uids = studies.map(\.studyInstanceUID)
                    let inSpool = try await threadPool.runIfActive { try spool.database.spoolInstanceCounts(ofStudies: uids) }
                    result.addReconciled(day: day, studies, atArchive: atArchive, inSpool: inSpool,
                                         modalities: selection.modalities)
                }
                update(id) { $0.daysDone += 1 }
            }
            await session.release()
        } catch {
            await session.association.abort()
            throw error
        }
        if kind == .plan {
            // The slower of the hourly cap and the rate the last finished job reached, over
            // the share of the week the schedule opens.
            var seconds: [Double] = []
            if settings.maxStudiesPerHour > 0 {
                seconds.append(Double(result.studies - result.alreadyArchived) / Double(settings.maxStudiesPerHour) * 3600)
            }
            let jobs = try await threadPool.runIfActive { try spool.database.backfillProgress() }
            if let last = jobs.last(where: { $0.job.state == .done && $0.instancesRetrieved > 0 && $0.job.finishedAt != nil }),
               let finished = last.job.finishedAt, finished > last.job.createdAt {
                let rate = Double(last.instancesRetrieved) / finished.timeIntervalSince(last.job.createdAt)
                result.lastJobRate = rate
                seconds.append(Double(result.instancesToMove) / rate)
            }
            if let slowest = seconds.max() {
                result.estimatedSeconds = slowest / max(BackfillWalk.openFraction(settings.schedule), 0.01)
            }
            result.limits = "parallel \(settings.parallel), max_studies_per_hour "
                + (settings.maxStudiesPerHour > 0 ? "\(settings.maxStudiesPerHour)" : "unlimited")
                + ", schedule " + (settings.schedule.isEmpty ? "always" : settings.schedule.map(\.text).joined(separator: ", "))
        }
        result.queries = report(id)?.queries ?? 0
        return result
    }
}

extension BackfillSurveys {
    // A Result rather than a typed-throws catch: the latter crashes the 6.3 compiler here.
    static func studies(at client: DICOMwebClient, on day: String) async -> Result<[String: Int], DICOMwebError> {
        do {
            return .success(try await client.studiesAtArchive(on: day))
        } catch {
            return .failure(error)
        }
    }
}

/// A plan (`studies`… `byYearModality`) or a reconciliation (`missing`…), as JSON.
struct SurveyResult: Sendable, Encodable {
    struct Group: Sendable, Encodable {
        var year: String
        var modality: String
        var studies = 0
        var instances = 0
        var alreadyArchived = 0

        enum CodingKeys: String, CodingKey {
            case year, modality, studies, instances, alreadyArchived = "already_archived"
        }
    }

    struct Entry: Sendable, Encodable {
        var study: String
        var studyDate: String
        var patientID: String
        var pacsInstances: Int?
        var archiveInstances: Int?
        var spoolInstances: Int?

        enum CodingKeys: String, CodingKey {
            case study, studyDate = "study_date", patientID = "patient_id", pacsInstances = "pacs_instances",
                 archiveInstances = "archive_instances", spoolInstances = "in_spool"
        }
    }

    var studies = 0
    var instances = 0
    var alreadyArchived = 0
    var byYearModality: [Group] = []
    var queries = 0
    var estimatedSeconds: Double?
    var limits: String?
    /// Why a plan could not ask the archive (its `already_archived` then counts nothing).
    var archiveError: String?
    /// Instances per second of the last finished job, the estimate's basis without a cap.
    var lastJobRate: Double?
    /// Instances of the studies not already archived (not encoded).
    var instancesToMove = 0
    var missing: [Entry] = []
    var countDiffers: [Entry] = []
    var onlyAtArchive: [Entry] = []
    var matching = 0

    enum CodingKeys: String, CodingKey {
        case studies, instances, alreadyArchived = "already_archived", byYearModality = "by_year_modality", queries,
             estimatedSeconds = "estimated_seconds", limits, archiveError = "archive_error",
             lastJobRate = "last_job_instances_per_second", missing, countDiffers = "count_differs",
             onlyAtArchive = "only_at_archive", matching
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(studies, forKey: .studies)
        try container.encode(instances, forKey: .instances)
        try container.encode(alreadyArchived, forKey: .alreadyArchived)
        try container.encode(byYearModality, forKey: .byYearModality)
        try container.encode(queries, forKey: .queries)
        try container.encode(estimatedSeconds, forKey: .estimatedSeconds)
        try container.encodeIfPresent(limits, forKey: .limits)
        try container.encodeIfPresent(archiveError, forKey: .archiveError)
        try container.encodeIfPresent(lastJobRate, forKey: .lastJobRate)
        try container.encode(missing, forKey: .missing)
        try container.encode(countDiffers, forKey: .countDiffers)
        try container.encode(onlyAtArchive, forKey: .onlyAtArchive)
        try container.encode(matching, forKey: .matching)
    }

    /// A study counts under each modality it holds (a CT study with an SR counts under both).
    mutating func addPlanned(_ found: [FoundStudy], atArchive: [String: Int]) {
        for study in found {
            let archived = atArchive[study.studyInstanceUID].map { $0 >= (study.instances ?? 1) && $0 > 0 } ?? false
            studies += 1
            instances += study.instances ?? 0
            if archived { alreadyArchived += 1 } else { instancesToMove += study.instances ?? 0 }
            let year = String(study.studyDate.prefix(4))
            for modality in study.modalities.isEmpty ? [""] : study.modalities {
                if let index = byYearModality.firstIndex(where: { $0.year == year && $0.modality == modality }) {
                    byYearModality[index].studies += 1
                    byYearModality[index].instances += study.instances ?? 0
                    if archived { byYearModality[index].alreadyArchived += 1 }
                } else {
                    byYearModality.append(Group(year: year, modality: modality, studies: 1,
                                                instances: study.instances ?? 0, alreadyArchived: archived ? 1 : 0))
                }
            }
        }
        byYearModality.sort { ($0.year, $0.modality) < ($1.year, $1.modality) }
    }

    /// Studies the archive holds on a day the PACS does not know are "only at the archive"
    /// (when the walk was narrowed to modalities, only a full day says so, and it is skipped).
    mutating func addReconciled(day: String, _ found: [FoundStudy], atArchive: [String: Int], inSpool: [String: Int],
                                modalities: [String]) {
        for study in found {
            studies += 1
            instances += study.instances ?? 0
            let entry = Entry(study: study.studyInstanceUID, studyDate: study.studyDate, patientID: study.patientID,
                              pacsInstances: study.instances, archiveInstances: atArchive[study.studyInstanceUID],
                              spoolInstances: inSpool[study.studyInstanceUID] ?? 0)
            switch atArchive[study.studyInstanceUID] {
            case nil: missing.append(entry)
            case let count? where study.instances.map({ $0 != count }) ?? false: countDiffers.append(entry)
            default: matching += 1
            }
        }
        guard modalities.isEmpty else { return }
        let known = Set(found.map(\.studyInstanceUID))
        for (uid, count) in atArchive.sorted(by: { $0.key < $1.key }) where !known.contains(uid) {
            onlyAtArchive.append(Entry(study: uid, studyDate: day, patientID: "", pacsInstances: nil,
                                       archiveInstances: count, spoolInstances: nil))
        }
    }
}
