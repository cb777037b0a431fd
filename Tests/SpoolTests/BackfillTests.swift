import Foundation
import GRDB
import Testing
@testable import Spool

/// Migration jobs in the spool: the walk's slices, the studies found, their claims and
/// outcomes, and what a restart resets.
@Suite struct BackfillTests {
    let database: SpoolDatabase
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    init() throws {
        database = try SpoolDatabase()
    }

    func found(_ uid: String, day: String = "20240102", instances: Int? = 3) -> FoundStudy {
        FoundStudy(studyInstanceUID: uid, studyDate: day, patientID: "P\(uid)", modalities: ["CT"], instances: instances)
    }

    func job(days: [String] = ["20240101", "20240102"]) throws -> Int64 {
        try database.createBackfillJob(source: "PACS", since: days.first ?? "", until: days.last ?? "", modalities: [],
                                       windows: nil, days: days, now: t0)
    }

    /// The progress `status` shows (counters the triggers keep) against the rows themselves.
    func expectProgressMatchesTheRows(now: Date) throws {
        for progress in try database.backfillProgress(now: now) {
            let rows = try database.writer.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT state, COUNT(*), COALESCE(SUM(expected), 0), SUM(retrieved),
                           SUM(state <> 'found' AND COALESCE(finished_at >= ?, 0)) FROM backfill_study WHERE job_id = ? GROUP BY state
                    """, arguments: [now.timeIntervalSince1970 - 3600, progress.job.id])
            }
            var studies: [BackfillStudyState: Int] = [:]
            for row in rows { studies[BackfillStudyState(rawValue: row[0])!] = row[1] }
            #expect(progress.studies == studies)
            #expect(progress.instancesExpected == rows.reduce(0) { $0 + ($1[2] as Int) })
            #expect(progress.instancesRetrieved == rows.reduce(0) { $0 + ($1[3] as Int) })
            #expect(progress.finishedLastHour == rows.reduce(0) { $0 + ($1[4] as Int) })
        }
    }

    @Test func theWalkGoesDayByDayAndSplitsACappedDay() throws {
        let id = try job()
        let first = try #require(try database.nextBackfillSlice(jobs: [id], now: t0))
        #expect(first.studyDate == "20240101" && first.timeRange.isEmpty)
        try database.recordBackfillSlice(first, studies: [found("1.1", day: "20240101")], narrower: [])
        let second = try #require(try database.nextBackfillSlice(jobs: [id], now: t0))
        #expect(second.studyDate == "20240102")
        // Capped: kept what it saw, split in two narrower queries.
        try database.recordBackfillSlice(second, studies: [found("2.1")],
                                         narrower: ["00-005959.999999", "01-015959.999999"])
        let third = try #require(try database.nextBackfillSlice(jobs: [id], now: t0))
        #expect(third.timeRange == "00-005959.999999")
        try database.recordBackfillSlice(third, studies: [found("2.1", instances: 4), found("2.2")], narrower: [])
        var progress = try #require(try database.backfillProgress(now: t0).first)
        #expect(progress.daysTotal == 2 && progress.daysDone == 1 && progress.slicesPending == 1)
        #expect(progress.studies[.found] == 3)
        #expect(progress.instancesExpected == 3 + 4 + 3)  // the later answer's count wins
        let fourth = try #require(try database.nextBackfillSlice(jobs: [id], now: t0))
        try database.recordBackfillSlice(fourth, studies: [], narrower: [])
        #expect(try database.nextBackfillSlice(jobs: [id], now: t0) == nil)
        progress = try #require(try database.backfillProgress(now: t0).first)
        #expect(progress.daysDone == 2)
        #expect(try database.finishBackfillJobs(now: t0).isEmpty)  // studies are still to retrieve
        try expectProgressMatchesTheRows(now: t0)
    }

    @Test func aFailedQueryIsRetriedThenGivenUp() throws {
        let id = try job(days: ["20240101"])
        let slice = try #require(try database.nextBackfillSlice(jobs: [id], now: t0))
        try database.failBackfillSlice(slice, error: "timeout", retryAt: t0.addingTimeInterval(60))
        #expect(try database.nextBackfillSlice(jobs: [id], now: t0) == nil)
        let again = try #require(try database.nextBackfillSlice(jobs: [id], now: t0.addingTimeInterval(61)))
        #expect(again.attempts == 1)
        try database.failBackfillSlice(again, error: "refused", retryAt: nil)
        #expect(try database.nextBackfillSlice(jobs: [id], now: t0.addingTimeInterval(1e6)) == nil)
        #expect(try database.finishBackfillJobs(now: t0) == [id])
    }

    @Test func studiesAreClaimedOnceAndARestartHandsThemBack() throws {
        let id = try job(days: [])
        let other = try job(days: [])
        try database.recordBackfillSlice(BackfillSlice(id: 0, jobID: id, studyDate: "", timeRange: "", attempts: 0),
                                         studies: [found("1"), found("2"), found("3")], narrower: [])
        try database.recordBackfillSlice(BackfillSlice(id: 0, jobID: other, studyDate: "", timeRange: "", attempts: 0),
                                         studies: [found("1")], narrower: [])
        let claimed = try database.claimBackfillStudies(limit: 2, jobs: [id, other], now: t0)
        #expect(claimed.map(\.study.studyInstanceUID) == ["1", "2"])
        // The same study in another job waits while this one retrieves it.
        let more = try database.claimBackfillStudies(limit: 5, jobs: [id, other], now: t0)
        #expect(more.map(\.study.studyInstanceUID) == ["3"])
        #expect(try database.backfillRetrievalsStarted(since: t0) == 3)
        try database.finishBackfillStudy(job: id, study: "1", state: .retrieved, retrieved: 3, expected: 3, reason: nil, now: t0)
        try database.finishBackfillStudy(job: id, study: "2", state: .found, retrieved: 1, expected: 3,
                                         reason: "2 of 3 instances did not arrive", retryAt: t0.addingTimeInterval(60), now: t0)
        #expect(try database.resetInterruptedBackfill() == 1)  // "3" was retrieving
        let next = try database.claimBackfillStudies(limit: 5, jobs: [id, other], now: t0)
        #expect(Set(next.map(\.study.studyInstanceUID)) == ["1", "3"])  // "1" of the other job; "2" waits a minute
        #expect(next.first { $0.jobID == other } != nil)
        let progress = try database.backfillProgress(now: t0)
        #expect(progress[0].instancesRetrieved == 4)
        #expect(progress[0].studies[.retrieved] == 1)
        try expectProgressMatchesTheRows(now: t0)
        try expectProgressMatchesTheRows(now: t0.addingTimeInterval(7200))
    }

    @Test func pausedAndCancelledJobsNeitherWalkNorRetrieve() throws {
        let id = try job()
        try database.recordBackfillSlice(try #require(try database.nextBackfillSlice(jobs: [id], now: t0)),
                                         studies: [found("1")], narrower: [])
        #expect(try database.setBackfillPaused(true, job: nil) == [id])
        #expect(try database.nextBackfillSlice(jobs: [id], now: t0) == nil)
        #expect(try database.claimBackfillStudies(limit: 5, jobs: [id], now: t0).isEmpty)
        #expect(try database.setBackfillPaused(true, job: id).isEmpty)  // already paused
        #expect(try database.setBackfillPaused(false, job: id) == [id])
        #expect(try database.claimBackfillStudies(limit: 5, jobs: [id], now: t0).count == 1)
        #expect(try database.cancelBackfill(job: id, now: t0))
        #expect(try database.nextBackfillSlice(jobs: [id], now: t0) == nil)
        #expect(try database.backfillJobs(includeFinished: false).isEmpty)
        #expect(try database.backfillJobs().first?.state == .cancelled)
    }

    @Test func aFixJobListsItsStudiesAndEndsWhenTheyAreDone() throws {
        let id = try database.createBackfillJob(source: "PACS", since: "20240101", until: "20240131", modalities: [],
                                                windows: ["20:00-07:00"], days: [], studies: [found("9")], kind: .fix, now: t0)
        let job = try #require(try database.backfillJobs().first)
        #expect(job.kind == .fix && job.windows == ["20:00-07:00"])
        let claimed = try database.claimBackfillStudies(limit: 5, jobs: [id], now: t0)
        try database.finishBackfillStudy(job: id, study: claimed[0].study.studyInstanceUID, state: .alreadyArchived,
                                         retrieved: 0, expected: 3, reason: nil, now: t0)
        #expect(try database.finishBackfillJobs(now: t0) == [id])
        #expect(try database.backfillJobs().first?.state == .done)
    }
}
