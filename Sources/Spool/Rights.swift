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
    func stillOpposed(_ withdrawal: Withdrawal, rules: SharingRules, db: Database) throws -> Bool {
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
}
