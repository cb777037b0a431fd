import Foundation
import GRDB

/// The withdrawals queued at shared destinations (late oppositions), the sweeps that find what
/// to withdraw, and the resends once an opposition is lifted.
extension SpoolDatabase {
    /// Queues a withdrawal of a study from a destination (none if one is pending already).
    /// The patient's issuer is recorded as the sharing check reads it (the site's when absent).
    func queueWithdrawal(studyID: Int64, destination: String, by: String, siteIssuer: String, now: Date,
                         db: Database) throws -> Withdrawal? {
        guard let row = try Row.fetchOne(db, sql: """
            SELECT st.study_instance_uid, p.patient_id, p.issuer_of_patient_id
            FROM study st JOIN patient p ON p.id = st.patient_ref WHERE st.id = ?
            """, arguments: [studyID]) else { return nil }
        let issuer: String = row[2]
        let ins = try String.fetchAll(db, sql: "SELECT ins FROM study_ins WHERE study_ref = ?", arguments: [studyID])
        return try queueWithdrawal(studyUID: row[0], destination: destination, patientID: row[1],
                                   issuer: issuer.isEmpty ? siteIssuer : issuer, ins: ins, by: by, now: now, db: db)
    }

    func queueWithdrawal(studyUID: String, destination: String, patientID: String?, issuer: String?, ins: [String] = [],
                         by: String, now: Date, db: Database) throws -> Withdrawal? {
        try db.execute(sql: """
            INSERT INTO withdrawal (study_uid, destination, patient_id, issuer, ins, next_at, requested_at, requested_by)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
            """, arguments: [studyUID, destination, patientID, issuer, ins.joined(separator: " "), now.timeIntervalSince1970,
                             now.timeIntervalSince1970, by])
        guard db.changesCount == 1 else { return nil }
        return try Withdrawal.fetchOne(db, key: db.lastInsertedRowID)
    }

    /// Studies found at a shared destination that an opposition covers: each gets a withdrawal
    /// (unless one is pending or the study is already withdrawn and not sent since); the sweep
    /// of that destination is done.
    public func recordSweep(oppositionID: Int64, destination: String, found: [(studyUID: String, patientID: String?)],
                            now: Date = Date()) throws -> [Withdrawal] {
        try writer.write { db in
            guard let opposition = try Opposition.fetchOne(db, key: oppositionID), opposition.removedAt == nil else {
                try db.execute(sql: "DELETE FROM opposition_sweep WHERE opposition_ref = ?", arguments: [oppositionID])
                return []
            }
            var queued: [Withdrawal] = []
            for study in found {
                let issuer = opposition.scope == "patient" ? opposition.issuer : nil
                let ins = opposition.scope == "ins" ? [opposition.value] : []
                if let withdrawal = try queueWithdrawal(studyUID: study.studyUID, destination: destination,
                                                        patientID: study.patientID, issuer: issuer, ins: ins,
                                                        by: opposition.addedBy, now: now, db: db) {
                    queued.append(withdrawal)
                }
            }
            try db.execute(sql: "DELETE FROM opposition_sweep WHERE opposition_ref = ? AND destination = ?",
                           arguments: [oppositionID, destination])
            return queued
        }
    }

    /// A sweep that could not run (destination unreachable): again at `at`.
    public func postponeSweep(oppositionID: Int64, destination: String, until at: Date, error: String) throws {
        try writeBookkeeping { db in
            try db.execute(sql: """
                UPDATE opposition_sweep SET next_at = ?, attempts = attempts + 1, last_error = ?
                WHERE opposition_ref = ? AND destination = ?
                """, arguments: [at.timeIntervalSince1970, error, oppositionID, destination])
        }
    }

    /// Sweeps due now: the opposition and the destination to search.
    public func dueSweeps(now: Date = Date()) throws -> [(opposition: Opposition, destination: String, attempts: Int)] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT s.destination, s.attempts, o.* FROM opposition_sweep s JOIN opposition o ON o.id = s.opposition_ref
                WHERE s.next_at <= ? ORDER BY s.next_at
                """, arguments: [now.timeIntervalSince1970]).map {
                (try Opposition(row: $0), $0["destination"], $0["attempts"])
            }
        }
    }

    /// Patient IDs (with issuers) the spool has seen with this INS: how a sweep finds an INS's
    /// studies at a hub that cannot search the Other Patient IDs Sequence.
    public func patients(withINS ins: String) throws -> [(patientID: String, issuer: String)] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT DISTINCT p.patient_id, p.issuer_of_patient_id FROM study_ins s
                JOIN study st ON st.id = s.study_ref JOIN patient p ON p.id = st.patient_ref WHERE s.ins = ?
                """, arguments: [ins]).map { ($0[0], $0[1]) }
        }
    }

    /// When the next sweep or pending withdrawal is due.
    public func nextRightsWork() throws -> Date? {
        try writer.read { db in
            try Double.fetchOne(db, sql: """
                SELECT MIN(t) FROM (SELECT MIN(next_at) AS t FROM opposition_sweep
                                    UNION ALL SELECT MIN(next_at) FROM withdrawal WHERE state IN ('pending', 'needs_resend'))
                """).map(Date.init(timeIntervalSince1970:))
        }
    }

    /// The patient (ID and issuer as received) of a study of the spool.
    public func patient(ofStudy uid: String) throws -> (patientID: String, issuer: String)? {
        try writer.read { db in
            try Row.fetchOne(db, sql: """
                SELECT p.patient_id, p.issuer_of_patient_id FROM study st JOIN patient p ON p.id = st.patient_ref
                WHERE st.study_instance_uid = ?
                """, arguments: [uid]).map { ($0[0], $0[1]) }
        }
    }

    /// Pending withdrawals due now, oldest first.
    public func dueWithdrawals(now: Date = Date(), limit: Int = 16) throws -> [Withdrawal] {
        try writer.read { db in
            try Withdrawal.fetchAll(db, sql: """
                SELECT * FROM withdrawal WHERE state = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?
                """, arguments: [now.timeIntervalSince1970, limit])
        }
    }

    /// Whether instances of the study are being sent to the destination right now (a withdrawal
    /// waits for them, else they would land after the delete).
    public func hasInFlight(studyUID: String, destination: String) throws -> Bool {
        try writer.read { db in
            try Bool.fetchOne(db, sql: """
                SELECT EXISTS (SELECT 1 FROM delivery d JOIN instance i ON i.id = d.instance_ref
                               JOIN series se ON se.id = i.series_ref JOIN study st ON st.id = se.study_ref
                               WHERE st.study_instance_uid = ? AND d.destination = ? AND d.state = 'in_flight')
                """, arguments: [studyUID, destination]) ?? false
        }
    }

    /// The study is gone from the destination: withdrawn. Its instances still in the spool go
    /// back to the queue there (withheld), so that lifting the opposition sends them again.
    /// The opposition may have been lifted during the delete (the row is `cancelled`): then the
    /// spool's queue sends the study again, or, purged, it needs a resend.
    public func recordWithdrawn(_ withdrawal: Withdrawal, now: Date = Date()) throws {
        try writer.write { db in
            try db.execute(sql: """
                UPDATE withdrawal SET state = 'withdrawn', done_at = ?, last_error = NULL
                WHERE id = ? AND state = 'pending'
                """, arguments: [now.timeIntervalSince1970, withdrawal.id])
            let inSpool = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM study WHERE study_instance_uid = ?)",
                                            arguments: [withdrawal.studyUID]) ?? false
            if !inSpool {
                try db.execute(sql: """
                    UPDATE withdrawal SET state = 'needs_resend', next_at = ?, done_at = ? WHERE id = ? AND state = 'cancelled'
                    """, arguments: [now.timeIntervalSince1970, now.timeIntervalSince1970, withdrawal.id])
            }
            try db.execute(sql: """
                UPDATE delivery SET state = 'queued', next_at = NULL, sent_sha256 = NULL, reason = 'withdrawn', updated_at = ?
                WHERE destination = ? AND instance_ref IN (
                    SELECT i.id FROM instance i JOIN series se ON se.id = i.series_ref JOIN study st ON st.id = se.study_ref
                    WHERE st.study_instance_uid = ?)
                """, arguments: [now.timeIntervalSince1970, withdrawal.destination, withdrawal.studyUID])
            try db.execute(sql: """
                UPDATE study_delivery SET verified_at = NULL, next_verify_at = NULL
                WHERE destination = ? AND study_ref IN (SELECT id FROM study WHERE study_instance_uid = ?)
                """, arguments: [withdrawal.destination, withdrawal.studyUID])
        }
    }

    /// A withdrawal (or resend) attempt that failed, or a manual one not done yet: again at `at`.
    /// `failed` false: a wait (chunks in flight, the operator), not an attempt that failed.
    public func postponeWithdrawal(_ withdrawal: Withdrawal, until at: Date, error: String?, failed: Bool = true) throws {
        try writeBookkeeping { db in
            try db.execute(sql: """
                UPDATE withdrawal SET next_at = ?, attempts = attempts + ?, last_error = COALESCE(?, last_error)
                WHERE id = ? AND state IN ('pending', 'needs_resend')
                """, arguments: [at.timeIntervalSince1970, failed ? 1 : 0, error, withdrawal.id])
        }
    }

    /// A study to send again that an opposition covers again: it stays withdrawn.
    public func keepWithdrawn(_ withdrawal: Withdrawal) throws {
        try writer.write { db in
            try db.execute(sql: "UPDATE withdrawal SET state = 'withdrawn' WHERE id = ? AND state = 'needs_resend'",
                           arguments: [withdrawal.id])
        }
    }

    /// Whether the spool knows the study and whether it carries this INS; nil when the spool
    /// does not hold the study.
    public func study(_ uid: String, carriesINS ins: String) throws -> Bool? {
        try writer.read { db in
            guard let study = try Int64.fetchOne(db, sql: "SELECT id FROM study WHERE study_instance_uid = ?",
                                                 arguments: [uid]) else { return nil }
            return try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM study_ins WHERE study_ref = ? AND ins = ?)",
                                     arguments: [study, ins]) ?? false
        }
    }

    /// After a reload (or at start): destinations no longer shared withhold nothing, and every
    /// study not yet verified at a shared destination is checked again (consent rule changed,
    /// destination newly shared). Returns how many studies were released.
    @discardableResult
    public func refreshSharing(rules: SharingRules) throws -> Int {
        try writer.write { db in
            let shared = Array(rules.sharedDestinations)
            let placeholders = shared.map { _ in "?" }.joined(separator: ",")
            let notShared = shared.isEmpty ? "" : "AND destination NOT IN (\(placeholders))"
            try db.execute(sql: "UPDATE study_delivery SET withheld = NULL WHERE withheld IS NOT NULL \(notShared)",
                           arguments: StatementArguments(shared))
            let released = db.changesCount
            guard !shared.isEmpty else { return released }
            let studies = try Int64.fetchAll(db, sql: """
                SELECT DISTINCT study_ref FROM study_delivery
                WHERE destination IN (\(placeholders)) AND (withheld IS NOT NULL OR verified_at IS NULL)
                """, arguments: StatementArguments(shared))
            return released + (try applySharing(studies: Set(studies), rules: rules, db: db).count)
        }
    }

    /// Withdrawn studies to send again (the opposition was lifted; the spool no longer holds
    /// them), due now.
    public func dueResends(now: Date = Date(), limit: Int = 4) throws -> [Withdrawal] {
        try writer.read { db in
            try Withdrawal.fetchAll(db, sql: """
                SELECT * FROM withdrawal WHERE state = 'needs_resend' AND next_at <= ? ORDER BY next_at, id LIMIT ?
                """, arguments: [now.timeIntervalSince1970, limit])
        }
    }

    /// A study sent again to the shared destination from the archive.
    public func recordReshared(_ withdrawal: Withdrawal, now: Date = Date()) throws {
        try writer.write { db in
            try db.execute(sql: """
                UPDATE withdrawal SET state = 'reshared', done_at = ?, last_error = NULL WHERE id = ? AND state = 'needs_resend'
                """, arguments: [now.timeIntervalSince1970, withdrawal.id])
        }
    }

    /// Whether an active opposition covers a withdrawal's study (by its UID or its patient).
    public func isOpposed(_ withdrawal: Withdrawal, rules: SharingRules) throws -> Bool {
        try writer.read { db in try stillOpposed(withdrawal, rules: rules, db: db) }
    }

    /// An operator says a manual withdrawal is done: it is checked at once.
    public func confirmWithdrawal(studyUID: String, by: String, now: Date = Date()) throws -> [Withdrawal] {
        try writer.write { db in
            try db.execute(sql: """
                UPDATE withdrawal SET confirmed_by = ?, next_at = ? WHERE study_uid = ? AND state = 'pending'
                """, arguments: [by, now.timeIntervalSince1970, studyUID])
            return try Withdrawal.fetchAll(db, sql: "SELECT * FROM withdrawal WHERE study_uid = ? AND state = 'pending'",
                                           arguments: [studyUID])
        }
    }

    /// Withdrawals, newest first: the pending ones and those done since `since`.
    public func withdrawals(since: Date? = nil) throws -> [Withdrawal] {
        try writer.read { db in
            try Withdrawal.fetchAll(db, sql: """
                SELECT * FROM withdrawal WHERE state IN ('pending', 'needs_resend') OR ? IS NULL OR done_at >= ?
                ORDER BY id DESC
                """, arguments: [since?.timeIntervalSince1970, since?.timeIntervalSince1970])
        }
    }

    /// Withdrawals not done yet (pending, or needing the study sent again), newest first.
    public func openWithdrawals() throws -> [Withdrawal] {
        try writer.read { db in
            try Withdrawal.fetchAll(db, sql: """
                SELECT * FROM withdrawal WHERE state IN ('pending', 'needs_resend') ORDER BY id DESC
                """)
        }
    }

    /// Counts for `status`: active oppositions, withheld studies per destination and reason,
    /// withdrawals per destination and state, sweeps pending.
    public func rightsTotals() throws -> RightsTotals {
        try writer.read { db in
            var totals = RightsTotals()
            totals.activeOppositions = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM opposition WHERE removed_at IS NULL") ?? 0
            for row in try Row.fetchAll(db, sql: """
                SELECT destination, withheld, COUNT(*) FROM study_delivery WHERE withheld IS NOT NULL GROUP BY 1, 2
                """) {
                totals.withheld[row[0], default: [:]][row[1]] = row[2]
            }
            for row in try Row.fetchAll(db, sql: """
                SELECT destination, state, COUNT(*) FROM withdrawal WHERE state IN ('pending', 'needs_resend') GROUP BY 1, 2
                """) {
                totals.withdrawals[row[0], default: [:]][row[1]] = row[2]
            }
            totals.pendingSweeps = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM opposition_sweep") ?? 0
            return totals
        }
    }
}
