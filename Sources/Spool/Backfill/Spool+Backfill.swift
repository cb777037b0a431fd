import Foundation
import GRDB

/// Migration jobs (docs/migration.md): slices of the walk still to query, studies found and
/// what became of each. Every step is one transaction, so kill -9 leaves a state the next
/// start goes on from (`retrieving` goes back to `found`, and what already arrived is not
/// asked for again: the retrieval compares with the spool first).
extension SpoolDatabase {
    static func migrateBackfill(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE backfill_job (
                id INTEGER PRIMARY KEY,
                source TEXT NOT NULL,
                since TEXT NOT NULL,
                until TEXT NOT NULL,
                modalities TEXT NOT NULL DEFAULT '',
                windows TEXT,
                kind TEXT NOT NULL CHECK (kind IN ('backfill', 'fix')),
                state TEXT NOT NULL CHECK (state IN ('running', 'paused', 'done', 'cancelled')),
                created_at REAL NOT NULL,
                finished_at REAL
            );
            CREATE TABLE backfill_slice (
                id INTEGER PRIMARY KEY,
                job_id INTEGER NOT NULL REFERENCES backfill_job(id) ON DELETE CASCADE,
                study_date TEXT NOT NULL,
                time_range TEXT NOT NULL DEFAULT '',
                state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'split', 'failed')),
                studies INTEGER NOT NULL DEFAULT 0,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_at REAL NOT NULL DEFAULT 0,
                last_error TEXT,
                UNIQUE (job_id, study_date, time_range)
            );
            CREATE INDEX backfill_slice_due ON backfill_slice (state, job_id, study_date);
            CREATE TABLE backfill_study (
                job_id INTEGER NOT NULL REFERENCES backfill_job(id) ON DELETE CASCADE,
                study_instance_uid TEXT NOT NULL,
                study_date TEXT NOT NULL DEFAULT '',
                patient_id TEXT NOT NULL DEFAULT '',
                modalities TEXT NOT NULL DEFAULT '',
                expected INTEGER,
                state TEXT NOT NULL DEFAULT 'found'
                    CHECK (state IN ('found', 'retrieving', 'retrieved', 'already_archived', 'failed')),
                retrieved INTEGER NOT NULL DEFAULT 0,
                reason TEXT,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_at REAL NOT NULL DEFAULT 0,
                started_at REAL,
                -- The first claim: what the PACS sent since then is what this job brought in,
                -- however many attempts (and restarts) it took.
                first_started_at REAL,
                finished_at REAL,
                PRIMARY KEY (job_id, study_instance_uid)
            );
            CREATE INDEX backfill_study_due ON backfill_study (state, next_at);
            CREATE INDEX backfill_study_started ON backfill_study (started_at);
            """)
    }

    // MARK: Jobs

    /// A new job: one slice per day for a walk, or the listed studies for a fix. Returns its ID.
    public func createBackfillJob(source: String, since: String, until: String, modalities: [String],
                                  windows: [String]?, days: [String], studies: [FoundStudy] = [],
                                  kind: BackfillJob.Kind = .backfill, now: Date = Date()) throws -> Int64 {
        try writer.write { db in
            try db.execute(sql: """
                INSERT INTO backfill_job (source, since, until, modalities, windows, kind, state, created_at)
                VALUES (?, ?, ?, ?, ?, ?, 'running', ?)
                """, arguments: [source, since, until, modalities.joined(separator: ","),
                                 windows?.joined(separator: "\n"), kind.rawValue, now.timeIntervalSince1970])
            let id = db.lastInsertedRowID
            for day in days {
                try db.cachedStatement(sql: "INSERT INTO backfill_slice (job_id, study_date) VALUES (?, ?)")
                    .execute(arguments: [id, day])
            }
            try Self.insertFound(studies, job: id, db: db)
            return id
        }
    }

    /// Pauses or resumes one job, or every unfinished one (`id` nil). Returns the jobs changed.
    @discardableResult
    public func setBackfillPaused(_ paused: Bool, job id: Int64?) throws -> [Int64] {
        try writer.write { db in
            let from = paused ? "running" : "paused"
            let ids = try Int64.fetchAll(db, sql: "SELECT id FROM backfill_job WHERE state = ?"
                                             + (id == nil ? "" : " AND id = ?"),
                                         arguments: id.map { [from, $0] } ?? [from])
            for changed in ids {
                try db.execute(sql: "UPDATE backfill_job SET state = ? WHERE id = ?",
                               arguments: [paused ? "paused" : "running", changed])
            }
            return ids
        }
    }

    public func cancelBackfill(job id: Int64, now: Date = Date()) throws -> Bool {
        try writer.write { db in
            try db.execute(sql: """
                UPDATE backfill_job SET state = 'cancelled', finished_at = ? WHERE id = ? AND state IN ('running', 'paused')
                """, arguments: [now.timeIntervalSince1970, id])
            return db.changesCount > 0
        }
    }

    public func backfillJobs(includeFinished: Bool = true) throws -> [BackfillJob] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, source, since, until, modalities, windows, kind, state, created_at, finished_at
                FROM backfill_job \(includeFinished ? "" : "WHERE state IN ('running', 'paused')") ORDER BY id
                """).map(Self.job)
        }
    }

    private static func job(_ row: Row) -> BackfillJob {
        let modalities: String = row[4]
        let windows: String? = row[5]
        let finished: Double? = row[9]
        return BackfillJob(id: row[0], source: row[1], since: row[2], until: row[3],
                           modalities: modalities.split(separator: ",").map(String.init),
                           windows: windows.map { $0.split(separator: "\n").map(String.init) },
                           kind: BackfillJob.Kind(rawValue: row[6]) ?? .backfill,
                           state: BackfillJobState(rawValue: row[7]) ?? .running,
                           createdAt: Date(timeIntervalSince1970: row[8]),
                           finishedAt: finished.map(Date.init(timeIntervalSince1970:)))
    }

    /// Marks running jobs with nothing left to query or retrieve `done`; returns them.
    public func finishBackfillJobs(now: Date = Date()) throws -> [Int64] {
        try writer.write { db in
            let ids = try Int64.fetchAll(db, sql: """
                SELECT j.id FROM backfill_job j WHERE j.state = 'running'
                  AND NOT EXISTS (SELECT 1 FROM backfill_slice s WHERE s.job_id = j.id AND s.state = 'pending')
                  AND NOT EXISTS (SELECT 1 FROM backfill_study t WHERE t.job_id = j.id
                                  AND t.state IN ('found', 'retrieving'))
                """)
            for id in ids {
                try db.execute(sql: "UPDATE backfill_job SET state = 'done', finished_at = ? WHERE id = ?",
                               arguments: [now.timeIntervalSince1970, id])
            }
            return ids
        }
    }

    /// After a restart: retrievals interrupted go back to `found` (the next attempt asks only
    /// for what did not arrive).
    @discardableResult
    public func resetInterruptedBackfill() throws -> Int {
        try writer.write { db in
            try db.execute(sql: "UPDATE backfill_study SET state = 'found', next_at = 0 WHERE state = 'retrieving'")
            return db.changesCount
        }
    }

    // MARK: The walk

    /// The next slice to query, of a running job (oldest job, earliest day first).
    public func nextBackfillSlice(jobs: Set<Int64>, now: Date = Date()) throws -> BackfillSlice? {
        let list = jobs.map(String.init).joined(separator: ",")
        return try writer.read { db in
            try Row.fetchOne(db, sql: """
                SELECT s.id, s.job_id, s.study_date, s.time_range, s.attempts FROM backfill_slice s
                JOIN backfill_job j ON j.id = s.job_id
                WHERE j.state = 'running' AND j.id IN (\(list)) AND s.state = 'pending' AND s.next_at <= ?
                ORDER BY s.job_id, s.study_date, s.time_range LIMIT 1
                """, arguments: [now.timeIntervalSince1970]).map {
                BackfillSlice(id: $0[0], jobID: $0[1], studyDate: $0[2], timeRange: $0[3], attempts: $0[4])
            }
        }
    }

    /// A slice answered: its studies recorded as found, the slice `done`; or, when the answer
    /// was capped, the slice `split` into `narrower` StudyTime ranges (the studies seen are
    /// kept anyway).
    public func recordBackfillSlice(_ slice: BackfillSlice, studies: [FoundStudy], narrower: [String]) throws {
        try writer.write { db in
            try Self.insertFound(studies, job: slice.jobID, db: db)
            try db.execute(sql: "UPDATE backfill_slice SET state = ?, studies = ?, last_error = NULL WHERE id = ?",
                           arguments: [narrower.isEmpty ? "done" : "split", studies.count, slice.id])
            for range in narrower {
                try db.cachedStatement(sql: """
                    INSERT OR IGNORE INTO backfill_slice (job_id, study_date, time_range) VALUES (?, ?, ?)
                    """).execute(arguments: [slice.jobID, slice.studyDate, range])
            }
        }
    }

    /// A query failed: retried at `retryAt`, or `failed` for good (nil). A failure of the
    /// PACS as a whole (unreachable) does not count as an attempt.
    public func failBackfillSlice(_ slice: BackfillSlice, error: String, retryAt: Date?, countAttempt: Bool = true) throws {
        try writer.write { db in
            try db.execute(sql: """
                UPDATE backfill_slice SET state = ?, attempts = attempts + ?, next_at = ?, last_error = ? WHERE id = ?
                """, arguments: [retryAt == nil ? "failed" : "pending", countAttempt ? 1 : 0,
                                 retryAt?.timeIntervalSince1970 ?? 0, error, slice.id])
        }
    }

    private static func insertFound(_ studies: [FoundStudy], job: Int64, db: Database) throws {
        for study in studies {
            try db.cachedStatement(sql: """
                INSERT INTO backfill_study (job_id, study_instance_uid, study_date, patient_id, modalities, expected)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (job_id, study_instance_uid) DO UPDATE SET
                    expected = COALESCE(excluded.expected, expected)
                """).execute(arguments: [job, study.studyInstanceUID, study.studyDate, study.patientID,
                                         study.modalities.joined(separator: ","), study.instances])
        }
    }

    // MARK: Retrieval

    /// Claims up to `limit` found studies of running jobs for retrieval (`retrieving`), oldest
    /// day first; a study another job is retrieving waits.
    public func claimBackfillStudies(limit: Int, jobs: Set<Int64>, now: Date = Date()) throws -> [BackfillStudy] {
        guard limit > 0, !jobs.isEmpty else { return [] }
        let list = jobs.map(String.init).joined(separator: ",")
        return try writer.write { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT t.job_id, j.source, t.study_instance_uid, t.study_date, t.patient_id, t.modalities, t.expected,
                       t.attempts, COALESCE(t.first_started_at, ?)
                FROM backfill_study t JOIN backfill_job j ON j.id = t.job_id
                WHERE j.state = 'running' AND j.id IN (\(list)) AND t.state = 'found' AND t.next_at <= ?
                  AND NOT EXISTS (SELECT 1 FROM backfill_study o WHERE o.study_instance_uid = t.study_instance_uid
                                  AND o.state = 'retrieving')
                ORDER BY t.job_id, t.study_date, t.study_instance_uid LIMIT ?
                """, arguments: [now.timeIntervalSince1970, now.timeIntervalSince1970, limit])
            var claimed: [BackfillStudy] = []
            var seen: Set<String> = []
            for row in rows {
                let uid: String = row[2]
                guard seen.insert(uid).inserted else { continue }
                try db.execute(sql: """
                    UPDATE backfill_study SET state = 'retrieving', started_at = :now,
                        first_started_at = COALESCE(first_started_at, :now)
                    WHERE job_id = :job AND study_instance_uid = :uid
                    """, arguments: ["now": now.timeIntervalSince1970, "job": row[0] as Int64, "uid": uid])
                let modalities: String = row[5]
                claimed.append(BackfillStudy(
                    jobID: row[0], source: row[1],
                    study: FoundStudy(studyInstanceUID: uid, studyDate: row[3], patientID: row[4],
                                      modalities: modalities.split(separator: ",").map(String.init), instances: row[6]),
                    attempts: row[7], firstStartedAt: Date(timeIntervalSince1970: row[8])))
            }
            return claimed
        }
    }

    /// The outcome of one retrieval: `retrieved`, the instances the job brought in so far.
    /// `retryAt` (with `.found`) tries again later; an attempt is counted unless the PACS or
    /// the archive as a whole was unreachable.
    public func finishBackfillStudy(job: Int64, study uid: String, state: BackfillStudyState, retrieved: Int,
                                    expected: Int?, reason: String?, retryAt: Date? = nil, countAttempt: Bool = true,
                                    now: Date = Date()) throws {
        try writer.write { db in
            try db.execute(sql: """
                UPDATE backfill_study SET state = ?, retrieved = MAX(retrieved, ?), expected = COALESCE(?, expected),
                    reason = ?, attempts = attempts + ?, next_at = ?, finished_at = ?
                WHERE job_id = ? AND study_instance_uid = ?
                """, arguments: [state.rawValue, retrieved, expected, reason, state == .found && countAttempt ? 1 : 0,
                                 retryAt?.timeIntervalSince1970 ?? 0,
                                 state == .found ? nil : now.timeIntervalSince1970, job, uid])
        }
    }

    /// Instances of a study in the spool that `callingAETitle` sent since `date`.
    public func instancesReceived(ofStudy uid: String, from callingAETitle: String, since date: Date) throws -> Int {
        try writer.read { db in
            try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM instance i JOIN series se ON se.id = i.series_ref
                JOIN study st ON st.id = se.study_ref
                WHERE st.study_instance_uid = ? AND i.calling_ae_title = ? AND i.received_at >= ?
                  AND i.revision_state = 'current'
                """, arguments: [uid, callingAETitle, date.timeIntervalSince1970]) ?? 0
        }
    }

    /// Retrievals started since `date` (the hourly cap).
    public func backfillRetrievalsStarted(since date: Date) throws -> Int {
        try writer.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(DISTINCT study_instance_uid) FROM backfill_study WHERE started_at >= ?",
                             arguments: [date.timeIntervalSince1970]) ?? 0
        }
    }

    /// The current SOP instances of a study held in the spool.
    public func spoolInstanceUIDs(ofStudy uid: String) throws -> Set<String> {
        try writer.read { db in
            Set(try String.fetchAll(db, sql: """
                SELECT i.sop_instance_uid FROM instance i JOIN series se ON se.id = i.series_ref
                JOIN study st ON st.id = se.study_ref
                WHERE st.study_instance_uid = ? AND i.revision_state = 'current'
                """, arguments: [uid]))
        }
    }

    /// Instances of the spool delivered to `destination` that it no longer holds (the
    /// archive lost them): queued again, and the study verified again once they are stored.
    /// Returns how many were queued.
    public func requeueLostDeliveries(study uid: String, sopInstanceUIDs: Set<String>, destination: String,
                                      now: Date = Date()) throws -> Int {
        guard !sopInstanceUIDs.isEmpty else { return 0 }
        return try writer.write { db in
            var queued = 0
            for sop in sopInstanceUIDs {
                try db.cachedStatement(sql: """
                    UPDATE delivery SET state = 'queued', next_at = NULL,
                        reason = 'not held by the destination at reconciliation', updated_at = ?
                    WHERE destination = ? AND state = 'stored' AND instance_ref IN (
                        SELECT i.id FROM instance i JOIN series se ON se.id = i.series_ref
                        JOIN study st ON st.id = se.study_ref
                        WHERE i.sop_instance_uid = ? AND st.study_instance_uid = ? AND i.revision_state = 'current')
                    """).execute(arguments: [now.timeIntervalSince1970, destination, sop, uid])
                queued += db.changesCount
            }
            if queued > 0 {
                try db.execute(sql: """
                    UPDATE study_delivery SET verified_at = NULL, next_verify_at = NULL
                    WHERE destination = ? AND study_ref IN (SELECT id FROM study WHERE study_instance_uid = ?)
                    """, arguments: [destination, uid])
            }
            return queued
        }
    }

    /// Current instances in the spool per study, for the studies listed (absent: none).
    public func spoolInstanceCounts(ofStudies uids: [String]) throws -> [String: Int] {
        try writer.read { db in
            var counts: [String: Int] = [:]
            for uid in uids {
                let count = try Int.fetchOne(db.cachedStatement(sql: """
                    SELECT COUNT(*) FROM instance i JOIN series se ON se.id = i.series_ref
                    JOIN study st ON st.id = se.study_ref
                    WHERE st.study_instance_uid = ? AND i.revision_state = 'current'
                    """), arguments: [uid]) ?? 0
                if count > 0 { counts[uid] = count }
            }
            return counts
        }
    }

    /// Instances of the spool not yet delivered everywhere they are routed (the backlog
    /// `pause_above_queue` watches).
    public func instancesAwaitingUpload() throws -> Int {
        try writer.read { db in
            try Int.fetchOne(db, sql: """
                SELECT COUNT(DISTINCT instance_ref) FROM delivery WHERE state IN ('queued', 'in_flight', 'retry')
                """) ?? 0
        }
    }

    // MARK: Progress

    public func backfillProgress(now: Date = Date(), failureLimit: Int = 20) throws -> [BackfillProgress] {
        try writer.read { db in
            let jobs = try Row.fetchAll(db, sql: """
                SELECT id, source, since, until, modalities, windows, kind, state, created_at, finished_at
                FROM backfill_job ORDER BY id
                """).map(Self.job)
            return try jobs.map { job in
                let days = try Row.fetchOne(db, sql: """
                    SELECT COUNT(DISTINCT study_date),
                           COUNT(DISTINCT CASE WHEN study_date NOT IN (SELECT study_date FROM backfill_slice p
                                 WHERE p.job_id = s.job_id AND p.state = 'pending') THEN study_date END),
                           SUM(state = 'pending')
                    FROM backfill_slice s WHERE job_id = ?
                    """, arguments: [job.id])
                var studies: [BackfillStudyState: Int] = [:]
                var expected = 0, retrieved = 0
                for row in try Row.fetchAll(db, sql: """
                    SELECT state, studies, expected, retrieved FROM backfill_totals WHERE job_id = ? AND studies <> 0
                    """, arguments: [job.id]) {
                    if let state = BackfillStudyState(rawValue: row[0]) { studies[state] = row[1] }
                    expected += row[2]
                    retrieved += row[3]
                }
                let finishedLastHour = try Int.fetchOne(db, sql: """
                    SELECT COUNT(*) FROM backfill_study WHERE job_id = ? AND state <> 'found' AND finished_at >= ?
                    """, arguments: [job.id, now.timeIntervalSince1970 - 3600]) ?? 0
                let failures = try Row.fetchAll(db, sql: """
                    SELECT study_instance_uid, COALESCE(reason, '') FROM backfill_study
                    WHERE job_id = ? AND state = 'failed' ORDER BY study_date LIMIT ?
                    """, arguments: [job.id, failureLimit]).map { (study: $0[0] as String, reason: $0[1] as String) }
                return BackfillProgress(job: job, daysTotal: days?[0] ?? 0, daysDone: days?[1] ?? 0,
                                        slicesPending: days?[2] ?? 0, studies: studies,
                                        instancesExpected: expected, instancesRetrieved: retrieved,
                                        finishedLastHour: finishedLastHour, failures: failures)
            }
        }
    }
}
