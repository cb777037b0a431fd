import Foundation
import GRDB

/// Patients' rights as state (docs/rights.md): oppositions with their history, consent records
/// (informed, emergency), the INS a study carries, what is withheld from each shared
/// destination, and the withdrawals queued there. Gateway decides; these are the rows.
extension SpoolDatabase {
    static func migrateRights(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE opposition (
                id INTEGER PRIMARY KEY,
                scope TEXT NOT NULL CHECK (scope IN ('patient', 'ins', 'study')),
                value TEXT NOT NULL,
                -- the patient ID's issuer; '' for the other scopes
                issuer TEXT NOT NULL DEFAULT '',
                added_at REAL NOT NULL,
                added_by TEXT NOT NULL,
                reason TEXT,
                removed_at REAL,
                removed_by TEXT,
                removal_reason TEXT
            );
            -- One active opposition per subject; removed ones stay as history.
            CREATE UNIQUE INDEX opposition_active ON opposition(scope, value, issuer) WHERE removed_at IS NULL;
            -- The shared destinations still to be searched for studies an opposition covers.
            CREATE TABLE opposition_sweep (
                opposition_ref INTEGER NOT NULL REFERENCES opposition(id),
                destination TEXT NOT NULL,
                next_at REAL NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                last_error TEXT,
                PRIMARY KEY (opposition_ref, destination)
            ) WITHOUT ROWID;
            CREATE TABLE consent (
                id INTEGER PRIMARY KEY,
                scope TEXT NOT NULL CHECK (scope IN ('patient', 'study')),
                value TEXT NOT NULL,
                issuer TEXT NOT NULL DEFAULT '',
                basis TEXT NOT NULL CHECK (basis IN ('informed', 'emergency')),
                at REAL NOT NULL,
                by TEXT NOT NULL,
                reason TEXT
            );
            CREATE INDEX consent_subject ON consent(value, scope, issuer);
            -- The INS (Other Patient IDs with an INS OID) each study carries.
            CREATE TABLE study_ins (
                study_ref INTEGER NOT NULL REFERENCES study(id) ON DELETE CASCADE,
                ins TEXT NOT NULL,
                PRIMARY KEY (study_ref, ins)
            ) WITHOUT ROWID;
            CREATE INDEX study_ins_value ON study_ins(ins);
            -- Why a study is not sent to a shared destination: 'opposition' or 'consent'.
            ALTER TABLE study_delivery ADD COLUMN withheld TEXT;
            CREATE TABLE withdrawal (
                id INTEGER PRIMARY KEY,
                study_uid TEXT NOT NULL,
                destination TEXT NOT NULL,
                patient_id TEXT,
                issuer TEXT,
                -- the INS values the study carried, space-separated (it may be purged since)
                ins TEXT NOT NULL DEFAULT '',
                state TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'withdrawn', 'cancelled', 'needs_resend', 'reshared')),
                attempts INTEGER NOT NULL DEFAULT 0,
                next_at REAL NOT NULL,
                last_error TEXT,
                requested_at REAL NOT NULL,
                requested_by TEXT NOT NULL,
                -- manual withdrawals: who said it was done (then QIDO-RS confirms it)
                confirmed_by TEXT,
                done_at REAL
            );
            CREATE UNIQUE INDEX withdrawal_open ON withdrawal(study_uid, destination) WHERE state = 'pending';
            CREATE INDEX withdrawal_state ON withdrawal(state, next_at);
            """)
    }

    // MARK: Sharing

    /// SQL: why study `:study` may not go to a shared destination now, or NULL.
    static let sharingBlockSQL = """
        SELECT CASE
            WHEN EXISTS (SELECT 1 FROM opposition WHERE removed_at IS NULL
                         AND scope = 'study' AND value = st.study_instance_uid AND issuer = '')
              OR EXISTS (SELECT 1 FROM opposition WHERE removed_at IS NULL
                         AND scope = 'patient' AND value = p.patient_id
                         AND issuer = COALESCE(NULLIF(p.issuer_of_patient_id, ''), :site))
              OR EXISTS (SELECT 1 FROM study_ins s JOIN opposition o
                         ON o.scope = 'ins' AND o.value = s.ins AND o.issuer = '' AND o.removed_at IS NULL
                         WHERE s.study_ref = st.id)
                THEN 'opposition'
            WHEN :hold
              AND NOT EXISTS (SELECT 1 FROM consent WHERE value = st.study_instance_uid AND scope = 'study' AND issuer = '')
              AND NOT EXISTS (SELECT 1 FROM consent WHERE value = p.patient_id AND scope = 'patient'
                              AND issuer = COALESCE(NULLIF(p.issuer_of_patient_id, ''), :site))
                THEN 'consent'
            END
        FROM study st JOIN patient p ON p.id = st.patient_ref WHERE st.id = :study
        """

    func sharingBlock(studyID: Int64, rules: SharingRules, db: Database) throws -> SharingBlock? {
        try String.fetchOne(db.cachedStatement(sql: Self.sharingBlockSQL), arguments: [
            "study": studyID, "site": rules.siteIssuer, "hold": rules.holdUntilInformed,
        ]).flatMap(SharingBlock.init(rawValue:))
    }

    /// Recomputes what is withheld from the shared destinations for `studies`: blocked studies
    /// are withheld, the others released (their queued instances go). Returns the released ones.
    @discardableResult
    func applySharing(studies: Set<Int64>, rules: SharingRules, db: Database) throws -> [Int64] {
        guard !rules.sharedDestinations.isEmpty else { return [] }
        var released: [Int64] = []
        for study in studies.sorted() {
            let block = try sharingBlock(studyID: study, rules: rules, db: db)
            for destination in rules.sharedDestinations.sorted() {
                let before = try String?.fetchOne(db.cachedStatement(sql: """
                    SELECT withheld FROM study_delivery WHERE study_ref = ? AND destination = ?
                    """), arguments: [study, destination]) ?? nil
                try db.cachedStatement(sql: """
                    UPDATE study_delivery SET withheld = ? WHERE study_ref = ? AND destination = ?
                    """).execute(arguments: [block?.rawValue, study, destination])
                if before != nil && block == nil && db.changesCount > 0 { released.append(study) }
            }
        }
        return released
    }

    /// Studies of the spool an opposition's subject covers.
    func studies(covering subject: RightsSubject, siteIssuer: String, db: Database) throws -> [Int64] {
        switch subject {
        case .study(let uid):
            return try Int64.fetchAll(db, sql: "SELECT id FROM study WHERE study_instance_uid = ?", arguments: [uid])
        case .patient(let id, let issuer):
            return try Int64.fetchAll(db, sql: """
                SELECT st.id FROM study st JOIN patient p ON p.id = st.patient_ref
                WHERE p.patient_id = ? AND COALESCE(NULLIF(p.issuer_of_patient_id, ''), ?) = ?
                """, arguments: [id, siteIssuer, issuer])
        case .ins(let ins):
            return try Int64.fetchAll(db, sql: "SELECT study_ref FROM study_ins WHERE ins = ?", arguments: [ins])
        }
    }

    /// Records the INS values carried by received studies.
    func recordINS(_ ins: [String], studyID: Int64, db: Database) throws {
        for value in ins {
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO study_ins (study_ref, ins) VALUES (?, ?)")
                .execute(arguments: [studyID, value])
        }
    }

    // MARK: Oppositions

    /// Registers an opposition: the covered studies are withheld from every shared destination
    /// at once, those already (partly) delivered there get a withdrawal, and every shared
    /// destination is to be searched for covered studies the spool no longer holds.
    public func addOpposition(_ subject: RightsSubject, by: String, reason: String?, rules: SharingRules,
                              now: Date = Date()) throws -> OppositionChange {
        try writer.write { db in
            if try Opposition.fetchActive(subject, db: db) != nil {
                throw RightsError.alreadyOpposed(subject)
            }
            try db.execute(sql: """
                INSERT INTO opposition (scope, value, issuer, added_at, added_by, reason) VALUES (?, ?, ?, ?, ?, ?)
                """, arguments: [subject.scope, subject.value, subject.issuer, now.timeIntervalSince1970, by, reason])
            let oppositionID = db.lastInsertedRowID
            for destination in rules.sharedDestinations.sorted() {
                try db.execute(sql: """
                    INSERT INTO opposition_sweep (opposition_ref, destination, next_at) VALUES (?, ?, ?)
                    """, arguments: [oppositionID, destination, now.timeIntervalSince1970])
            }
            let studies = try self.studies(covering: subject, siteIssuer: rules.siteIssuer, db: db)
            try applySharing(studies: Set(studies), rules: rules, db: db)
            // Studies waiting to be sent again are withdrawn again, in effect: they stay away.
            try db.execute(sql: """
                UPDATE withdrawal SET state = 'withdrawn' WHERE state = 'needs_resend' AND \(subject.withdrawalFilter)
                """, arguments: subject.withdrawalArguments)
            var withdrawals: [Withdrawal] = []
            for study in studies {
                for destination in rules.sharedDestinations.sorted() {
                    let delivered = try Bool.fetchOne(db, sql: """
                        SELECT EXISTS (SELECT 1 FROM delivery d JOIN instance i ON i.id = d.instance_ref
                                       JOIN series se ON se.id = i.series_ref
                                       WHERE se.study_ref = ? AND d.destination = ? AND d.state IN ('stored', 'in_flight'))
                        """, arguments: [study, destination]) ?? false
                    guard delivered else { continue }
                    if let withdrawal = try queueWithdrawal(studyID: study, destination: destination, by: by,
                                                            siteIssuer: rules.siteIssuer, now: now, db: db) {
                        withdrawals.append(withdrawal)
                    }
                }
            }
            let opposition = try Opposition.fetchOne(db, key: oppositionID)!
            return OppositionChange(opposition: opposition, studiesInSpool: studies.count, withdrawals: withdrawals)
        }
    }

    /// Removes an opposition (it stays in the history): covered studies no longer opposed are
    /// released (sent again from the spool), their pending withdrawals cancelled; withdrawn
    /// studies the spool no longer holds are marked `needs_resend`.
    public func removeOpposition(_ subject: RightsSubject, by: String, reason: String?, rules: SharingRules,
                                 now: Date = Date()) throws -> OppositionChange {
        try writer.write { db in
            guard var opposition = try Opposition.fetchActive(subject, db: db) else {
                throw RightsError.notOpposed(subject)
            }
            try db.execute(sql: """
                UPDATE opposition SET removed_at = ?, removed_by = ?, removal_reason = ? WHERE id = ?
                """, arguments: [now.timeIntervalSince1970, by, reason, opposition.id])
            try db.execute(sql: "DELETE FROM opposition_sweep WHERE opposition_ref = ?", arguments: [opposition.id])
            opposition = try Opposition.fetchOne(db, key: opposition.id)!
            let studies = try self.studies(covering: subject, siteIssuer: rules.siteIssuer, db: db)
            try applySharing(studies: Set(studies), rules: rules, db: db)
            // Withdrawals of studies nothing opposes any more: cancelled if pending; resent when
            // already done (from the spool when it still holds the study).
            var changed: [Withdrawal] = []
            for withdrawal in try Withdrawal.fetchAll(db, sql: """
                SELECT * FROM withdrawal WHERE state IN ('pending', 'withdrawn') AND \(subject.withdrawalFilter)
                """, arguments: subject.withdrawalArguments) {
                let studyID = try Int64.fetchOne(db, sql: "SELECT id FROM study WHERE study_instance_uid = ?",
                                                 arguments: [withdrawal.studyUID])
                if let studyID, try sharingBlock(studyID: studyID, rules: rules, db: db) == .opposition { continue }
                if studyID == nil, try stillOpposed(withdrawal, rules: rules, db: db) { continue }
                // Not in the spool any more: what the destination holds (all, part or none) is
                // completed from the archive. In the spool: its queue sends what is missing.
                let state: WithdrawalState = studyID == nil ? .needsResend
                    : withdrawal.state == .pending ? .cancelled : .reshared
                try db.execute(sql: "UPDATE withdrawal SET state = ?, done_at = ? WHERE id = ?",
                               arguments: [state.rawValue, now.timeIntervalSince1970, withdrawal.id])
                changed.append(try Withdrawal.fetchOne(db, key: withdrawal.id)!)
            }
            return OppositionChange(opposition: opposition, studiesInSpool: studies.count, withdrawals: changed)
        }
    }

    /// Whether another active opposition still covers a withdrawn study the spool no longer holds.
    private func stillOpposed(_ withdrawal: Withdrawal, rules: SharingRules, db: Database) throws -> Bool {
        if try Bool.fetchOne(db, sql: """
            SELECT EXISTS (SELECT 1 FROM opposition WHERE removed_at IS NULL AND (
                (scope = 'study' AND value = ?) OR (scope = 'patient' AND value = ? AND issuer = ?)))
            """, arguments: [withdrawal.studyUID, withdrawal.patientID, withdrawal.issuer ?? rules.siteIssuer]) == true {
            return true
        }
        for ins in withdrawal.ins where try Bool.fetchOne(db, sql: """
            SELECT EXISTS (SELECT 1 FROM opposition WHERE removed_at IS NULL AND scope = 'ins' AND value = ? AND issuer = '')
            """, arguments: [ins]) == true {
            return true
        }
        return false
    }

    /// Every opposition, active and removed, newest first.
    public func oppositions() throws -> [Opposition] {
        try writer.read { db in try Opposition.fetchAll(db, sql: "SELECT * FROM opposition ORDER BY id DESC") }
    }

    /// Whether an active opposition covers this subject's studies (a study: by itself, its
    /// patient or its INS, as far as the spool knows them).
    public func isOpposed(study uid: String, rules: SharingRules) throws -> Bool {
        try writer.read { db in
            if try Bool.fetchOne(db, sql: """
                SELECT EXISTS (SELECT 1 FROM opposition WHERE removed_at IS NULL AND scope = 'study' AND value = ?)
                """, arguments: [uid]) == true { return true }
            guard let studyID = try Int64.fetchOne(db, sql: "SELECT id FROM study WHERE study_instance_uid = ?",
                                                   arguments: [uid]) else { return false }
            return try sharingBlock(studyID: studyID, rules: rules, db: db) == .opposition
        }
    }

    // MARK: Consent

    /// Records that a patient (or a study's patient) was informed, or an emergency share of a
    /// study; releases what it unblocks. An emergency share of an opposed study is refused.
    public func recordConsent(_ subject: RightsSubject, basis: ConsentBasis, by: String, reason: String?,
                              rules: SharingRules, now: Date = Date()) throws -> ConsentChange {
        try writer.write { db in
            if case .ins = subject { throw RightsError.unsupported("consent is recorded per patient ID or study") }
            let studies = try self.studies(covering: subject, siteIssuer: rules.siteIssuer, db: db)
            if basis == .emergency {
                guard case .study(let uid) = subject else {
                    throw RightsError.unsupported("an emergency share names one study")
                }
                let opposedInSpool = try studies.contains { try sharingBlock(studyID: $0, rules: rules, db: db) == .opposition }
                let opposedByUID = try Bool.fetchOne(db, sql: """
                    SELECT EXISTS (SELECT 1 FROM opposition WHERE removed_at IS NULL AND scope = 'study' AND value = ?)
                    """, arguments: [uid]) ?? false
                if opposedInSpool || opposedByUID { throw RightsError.opposed(subject) }
                if studies.isEmpty { throw RightsError.unknownStudy(uid) }
            }
            try db.execute(sql: """
                INSERT INTO consent (scope, value, issuer, basis, at, by, reason) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [subject.scope, subject.value, subject.issuer, basis.rawValue,
                                 now.timeIntervalSince1970, by, reason])
            let released = try applySharing(studies: Set(studies), rules: rules, db: db)
            let uids = try released.isEmpty ? [] : String.fetchAll(db, sql: """
                SELECT study_instance_uid FROM study WHERE id IN (\(released.map { _ in "?" }.joined(separator: ",")))
                """, arguments: StatementArguments(released))
            return ConsentChange(studiesInSpool: studies.count, released: uids)
        }
    }

    // MARK: Withdrawals

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

/// Which studies a right applies to: a patient (ID qualified by its issuer), an INS, one study.
public enum RightsSubject: Sendable, Equatable, Hashable, CustomStringConvertible {
    case patient(id: String, issuer: String)
    case ins(String)
    case study(String)

    var scope: String {
        switch self {
        case .patient: "patient"
        case .ins: "ins"
        case .study: "study"
        }
    }

    var value: String {
        switch self {
        case .patient(let id, _): id
        case .ins(let ins): ins
        case .study(let uid): uid
        }
    }

    var issuer: String {
        if case .patient(_, let issuer) = self { return issuer }
        return ""
    }

    /// Withdrawals this subject covers (by what a withdrawal row records).
    var withdrawalFilter: String {
        switch self {
        case .patient: "patient_id = ? AND issuer = ?"
        case .ins: "(' ' || ins || ' ') LIKE ('% ' || ? || ' %')"
        case .study: "study_uid = ?"
        }
    }

    var withdrawalArguments: StatementArguments {
        switch self {
        case .patient(let id, let issuer): [id, issuer]
        case .ins(let ins): [ins]
        case .study(let uid): [uid]
        }
    }

    public var description: String {
        switch self {
        case .patient(let id, let issuer): "patient \(id) (\(issuer))"
        case .ins(let ins): "INS \(ins)"
        case .study(let uid): "study \(uid)"
        }
    }
}

/// What the sharing check needs: the shared destinations, whether studies wait for the patient
/// to be informed (`[consent] default = "hold"`), and the issuer of IDs received without one.
public struct SharingRules: Sendable, Equatable {
    public var sharedDestinations: Set<String>
    public var holdUntilInformed: Bool
    public var siteIssuer: String

    public init(sharedDestinations: Set<String>, holdUntilInformed: Bool, siteIssuer: String) {
        self.sharedDestinations = sharedDestinations
        self.holdUntilInformed = holdUntilInformed
        self.siteIssuer = siteIssuer
    }
}

/// Why a study is withheld from the shared destinations.
public enum SharingBlock: String, Sendable, Codable {
    case opposition
    /// `[consent] default = "hold"` and the patient is not known to be informed.
    case consent
}

public enum ConsentBasis: String, Sendable, Codable {
    case informed
    case emergency
}

public struct Opposition: Sendable, Equatable, Codable, FetchableRecord, TableRecord {
    public static let databaseTableName = "opposition"
    public var id: Int64
    public var scope: String
    public var value: String
    public var issuer: String
    public var addedAt: Date
    public var addedBy: String
    public var reason: String?
    public var removedAt: Date?
    public var removedBy: String?
    public var removalReason: String?

    public init(row: Row) throws {
        id = row["id"]
        scope = row["scope"]
        value = row["value"]
        issuer = row["issuer"]
        addedAt = Date(timeIntervalSince1970: row["added_at"])
        addedBy = row["added_by"]
        reason = row["reason"]
        removedAt = (row["removed_at"] as Double?).map(Date.init(timeIntervalSince1970:))
        removedBy = row["removed_by"]
        removalReason = row["removal_reason"]
    }

    public var subject: RightsSubject {
        switch scope {
        case "patient": .patient(id: value, issuer: issuer)
        case "ins": .ins(value)
        default: .study(value)
        }
    }

    static func fetchActive(_ subject: RightsSubject, db: Database) throws -> Opposition? {
        try fetchOne(db, sql: """
            SELECT * FROM opposition WHERE scope = ? AND value = ? AND issuer = ? AND removed_at IS NULL
            """, arguments: [subject.scope, subject.value, subject.issuer])
    }
}

public enum WithdrawalState: String, Sendable, Codable {
    case pending
    /// QIDO-RS at the destination no longer finds the study.
    case withdrawn
    /// The opposition was lifted before the withdrawal ran.
    case cancelled
    /// The opposition was lifted after the withdrawal; the spool no longer holds the study.
    case needsResend = "needs_resend"
    /// The opposition was lifted after the withdrawal; the spool sends the study again.
    case reshared
}

public struct Withdrawal: Sendable, Equatable, Codable, FetchableRecord, TableRecord {
    public static let databaseTableName = "withdrawal"
    public var id: Int64
    public var studyUID: String
    public var destination: String
    public var patientID: String?
    public var issuer: String?
    /// The INS values the study carried when the withdrawal was queued.
    public var ins: [String]
    public var state: WithdrawalState
    public var attempts: Int
    public var nextAt: Date
    public var lastError: String?
    public var requestedAt: Date
    public var requestedBy: String
    public var confirmedBy: String?
    public var doneAt: Date?

    public init(row: Row) throws {
        id = row["id"]
        studyUID = row["study_uid"]
        destination = row["destination"]
        patientID = row["patient_id"]
        issuer = row["issuer"]
        ins = (row["ins"] as String).split(separator: " ").map(String.init)
        state = WithdrawalState(rawValue: row["state"]) ?? .pending
        attempts = row["attempts"]
        nextAt = Date(timeIntervalSince1970: row["next_at"])
        lastError = row["last_error"]
        requestedAt = Date(timeIntervalSince1970: row["requested_at"])
        requestedBy = row["requested_by"]
        confirmedBy = row["confirmed_by"]
        doneAt = (row["done_at"] as Double?).map(Date.init(timeIntervalSince1970:))
    }
}

public struct OppositionChange: Sendable, Equatable {
    public var opposition: Opposition
    /// Studies of the spool the opposition covers.
    public var studiesInSpool: Int
    /// Withdrawals queued (add) or changed (remove: cancelled, reshared, needs_resend).
    public var withdrawals: [Withdrawal]
}

public struct ConsentChange: Sendable, Equatable {
    public var studiesInSpool: Int
    /// Study UIDs released to the shared destinations.
    public var released: [String]
}

public struct RightsTotals: Sendable, Equatable {
    public var activeOppositions = 0
    /// destination → reason → studies
    public var withheld: [String: [String: Int]] = [:]
    /// destination → state → withdrawals
    public var withdrawals: [String: [String: Int]] = [:]
    public var pendingSweeps = 0
}

public enum RightsError: Error, Equatable, CustomStringConvertible {
    case alreadyOpposed(RightsSubject)
    case notOpposed(RightsSubject)
    case opposed(RightsSubject)
    case unknownStudy(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case .alreadyOpposed(let s): "an opposition for \(s) is already registered"
        case .notOpposed(let s): "no active opposition for \(s)"
        case .opposed(let s): "\(s) is covered by an opposition: an emergency never overrides it"
        case .unknownStudy(let uid): "no study \(uid) in the spool"
        case .unsupported(let why): why
        }
    }
}
