import Foundation
import GRDB

/// Identity updates from the PAS (docs/hl7.md): the identity in force per patient, and the
/// corrections of studies already delivered, each a retried task until QIDO-RS shows it.
extension SpoolDatabase {
    /// Records updates in one transaction, in order: for each, the patient's identity (and the
    /// prior ID it replaces), a correction for each study of the spool already (being)
    /// delivered to a destination, a search of each destination for older ones, and its
    /// message `applied` with `detail(corrections queued)`. `siteIssuer`: the issuer a study
    /// received without IssuerOfPatientID belongs to. Returns the corrections queued per update.
    @discardableResult
    public func applyIdentityUpdates(_ updates: [(update: IdentityUpdateRecord, messageID: Int64,
                                                  detail: (_ corrections: Int) -> String)],
                                     destinations: [String], siteIssuer: String, now: Date = Date()) throws -> [Int] {
        try writer.write { db in
            try updates.map { item in
                let corrections = try Self.apply(item.update, destinations: destinations, siteIssuer: siteIssuer,
                                                 at: now.timeIntervalSince1970, db: db)
                try db.cachedStatement(sql: "UPDATE hl7_message SET state = 'applied', detail = ?, updated_at = ? WHERE id = ?")
                    .execute(arguments: [item.detail(corrections), now.timeIntervalSince1970, item.messageID])
                return corrections
            }
        }
    }

    private static func apply(_ update: IdentityUpdateRecord, destinations: [String], siteIssuer: String,
                              at time: Double, db: Database) throws -> Int {
        let identity = update.identity
        // Fields the message left empty keep what an earlier update said.
        try db.cachedStatement(sql: """
            INSERT INTO patient_identity (issuer, patient_id, replaced_by, patient_name, birth_date, sex, ins,
                ins_authority, ins_known, control_id, updated_at)
            VALUES (?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (issuer, patient_id) DO UPDATE SET replaced_by = NULL,
                patient_name = COALESCE(excluded.patient_name, patient_name),
                birth_date = COALESCE(excluded.birth_date, birth_date), sex = COALESCE(excluded.sex, sex),
                ins = CASE WHEN excluded.ins_known THEN excluded.ins ELSE ins END,
                ins_authority = CASE WHEN excluded.ins_known THEN excluded.ins_authority ELSE ins_authority END,
                ins_known = MAX(ins_known, excluded.ins_known),
                control_id = excluded.control_id, updated_at = excluded.updated_at
            """).execute(arguments: [identity.issuer, identity.patientID, identity.name, identity.birthDate, identity.sex,
                                     identity.ins?.value, identity.ins?.assigningAuthority, identity.insKnown,
                                     update.controlID, time])
        if let prior = update.priorPatientID, prior != identity.patientID {
            try db.cachedStatement(sql: """
                INSERT INTO patient_identity (issuer, patient_id, replaced_by, control_id, updated_at)
                VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (issuer, patient_id) DO UPDATE SET replaced_by = excluded.replaced_by,
                    control_id = excluded.control_id, updated_at = excluded.updated_at
                """).execute(arguments: [identity.issuer, prior, identity.patientID, update.controlID, time])
        }
        var corrections = 0
        for patientID in update.affectedPatientIDs {
            for destination in destinations {
                let studies = try String.fetchAll(db.cachedStatement(sql: """
                    SELECT DISTINCT st.study_instance_uid FROM patient p
                    JOIN study st ON st.patient_ref = p.id
                    JOIN series se ON se.study_ref = st.id
                    JOIN instance i ON i.series_ref = se.id
                    JOIN delivery d ON d.instance_ref = i.id
                    WHERE p.patient_id = ? AND (p.issuer_of_patient_id = ? OR (p.issuer_of_patient_id = '' AND ? = ?))
                      AND d.destination = ? AND d.state IN ('stored', 'in_flight')
                    """), arguments: [patientID, identity.issuer, identity.issuer, siteIssuer, destination])
                for study in studies {
                    corrections += try queueCorrection(study: study, destination: destination, issuer: identity.issuer,
                                                       patientID: patientID, controlID: update.controlID, at: time, db: db)
                }
                try db.cachedStatement(sql: """
                    INSERT INTO identity_sweep (destination, issuer, patient_id, control_id, next_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (destination, issuer, patient_id) DO UPDATE SET control_id = excluded.control_id,
                        attempts = 0, next_at = excluded.next_at, last_error = NULL
                    """).execute(arguments: [destination, identity.issuer, patientID, update.controlID, time])
            }
        }
        return corrections
    }

    /// A correction to do; one already verified for the same message is not done again.
    private static func queueCorrection(study: String, destination: String, issuer: String, patientID: String,
                                        controlID: String, at time: Double, db: Database) throws -> Int {
        try db.execute(sql: """
            INSERT INTO identity_correction (study_instance_uid, destination, issuer, patient_id, state, next_at,
                control_id, created_at, updated_at)
            VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?)
            ON CONFLICT (study_instance_uid, destination) DO UPDATE SET state = 'pending', attempts = 0,
                next_at = excluded.next_at, last_error = NULL, control_id = excluded.control_id,
                updated_at = excluded.updated_at
            WHERE NOT (identity_correction.state = 'verified' AND identity_correction.control_id = excluded.control_id)
            """, arguments: [study, destination, issuer, patientID, time, controlID, time, time])
        return db.changesCount
    }

    /// The identity in force for a patient, following changes of identifier and merges; nil
    /// when no update ever named it.
    public func patientIdentity(issuer: String, patientID: String) throws -> PatientIdentity? {
        try writer.read { db in try Self.resolveIdentity(issuer: issuer, patientID: patientID, db: db) }
    }

    /// The identity in force for the patient of a study of the spool (nil: none recorded).
    public func patientIdentity(ofStudy uid: String, siteIssuer: String) throws -> PatientIdentity? {
        try writer.read { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT p.patient_id, p.issuer_of_patient_id FROM study st JOIN patient p ON p.id = st.patient_ref
                WHERE st.study_instance_uid = ?
                """, arguments: [uid]) else { return nil }
            let issuer: String = row[1]
            return try Self.resolveIdentity(issuer: issuer.isEmpty ? siteIssuer : issuer, patientID: row[0], db: db)
        }
    }

    static func resolveIdentity(issuer: String, patientID: String, db: Database) throws -> PatientIdentity? {
        var id = patientID
        var seen: Set<String> = []
        // A chain of replacements (A47 a→b, then A40 b→c) ends at the ID in force; a loop
        // (the PAS undoing a change the other way) ends where it would repeat.
        while let row = try Row.fetchOne(db, sql: """
            SELECT replaced_by, patient_name, birth_date, sex, ins, ins_authority, ins_known
            FROM patient_identity WHERE issuer = ? AND patient_id = ?
            """, arguments: [issuer, id]) {
            seen.insert(id)
            if let next: String = row[0], !seen.contains(next) {
                id = next
                continue
            }
            let ins: String? = row[4], authority: String? = row[5]
            return PatientIdentity(issuer: issuer, patientID: id, name: row[1], birthDate: row[2], sex: row[3],
                                   ins: ins.map { PatientIdentity.INSValue(value: $0, assigningAuthority: authority ?? "") },
                                   insKnown: row[6])
        }
        // The last replacement names an ID no update described: only the ID changes.
        return seen.isEmpty ? nil : PatientIdentity(issuer: issuer, patientID: id)
    }

    // MARK: Sweeps

    public func dueIdentitySweeps(now: Date = Date(), limit: Int = 16) throws -> [IdentitySweep] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT destination, issuer, patient_id, control_id, attempts FROM identity_sweep
                WHERE next_at <= ? ORDER BY next_at LIMIT ?
                """, arguments: [now.timeIntervalSince1970, limit]).map {
                IdentitySweep(destination: $0[0], issuer: $0[1], patientID: $0[2], controlID: $0[3], attempts: $0[4])
            }
        }
    }

    /// A destination searched: a correction for each study found there; the sweep is done.
    /// Returns how many corrections were queued.
    @discardableResult
    public func recordIdentitySweep(_ sweep: IdentitySweep, found studies: [String], now: Date = Date()) throws -> Int {
        try writer.write { db in
            var queued = 0
            for study in studies {
                queued += try Self.queueCorrection(study: study, destination: sweep.destination, issuer: sweep.issuer,
                                                   patientID: sweep.patientID, controlID: sweep.controlID,
                                                   at: now.timeIntervalSince1970, db: db)
            }
            try db.execute(sql: """
                DELETE FROM identity_sweep WHERE destination = ? AND issuer = ? AND patient_id = ? AND control_id = ?
                """, arguments: [sweep.destination, sweep.issuer, sweep.patientID, sweep.controlID])
            return queued
        }
    }

    public func postponeIdentitySweep(_ sweep: IdentitySweep, until: Date, error: String) throws {
        try writeBookkeeping { db in
            try db.execute(sql: """
                UPDATE identity_sweep SET attempts = attempts + 1, next_at = ?, last_error = ?
                WHERE destination = ? AND issuer = ? AND patient_id = ?
                """, arguments: [until.timeIntervalSince1970, error, sweep.destination, sweep.issuer, sweep.patientID])
        }
    }

    /// Searches not done yet: (destination, patient, attempts, last error).
    public func pendingIdentitySweeps() throws -> [(sweep: IdentitySweep, lastError: String?)] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT destination, issuer, patient_id, control_id, attempts, last_error FROM identity_sweep ORDER BY next_at
                """).map {
                (IdentitySweep(destination: $0[0], issuer: $0[1], patientID: $0[2], controlID: $0[3], attempts: $0[4]), $0[5])
            }
        }
    }

    // MARK: Corrections

    public func dueIdentityCorrections(now: Date = Date(), limit: Int = 16) throws -> [IdentityCorrection] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT \(Self.correctionColumns) FROM identity_correction
                WHERE state = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?
                """, arguments: [now.timeIntervalSince1970, limit]).map(Self.correction)
        }
    }

    /// QIDO-RS at the destination shows the identity in force: done. A newer update queued
    /// meanwhile (another control ID) keeps it pending.
    public func recordIdentityCorrected(_ correction: IdentityCorrection, now: Date = Date()) throws {
        try writer.write { db in
            try db.execute(sql: """
                UPDATE identity_correction SET state = 'verified', last_error = NULL, updated_at = ?
                WHERE id = ? AND control_id = ?
                """, arguments: [now.timeIntervalSince1970, correction.id, correction.controlID])
        }
    }

    /// `failed`: counted as an attempt (else a wait, e.g. chunks of the study still in flight).
    public func postponeIdentityCorrection(_ correction: IdentityCorrection, until: Date, error: String?,
                                           failed: Bool = true) throws {
        try writeBookkeeping { db in
            try db.execute(sql: """
                UPDATE identity_correction SET next_at = ?, attempts = attempts + ?, last_error = COALESCE(?, last_error),
                    updated_at = ?
                WHERE id = ? AND state = 'pending'
                """, arguments: [until.timeIntervalSince1970, failed ? 1 : 0, error, Date().timeIntervalSince1970,
                                 correction.id])
        }
    }

    /// Corrections, newest first, optionally only in one state.
    public func identityCorrections(state: IdentityCorrectionState? = nil, limit: Int = 100) throws -> [IdentityCorrection] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT \(Self.correctionColumns) FROM identity_correction
                \(state == nil ? "" : "WHERE state = ?") ORDER BY id DESC LIMIT ?
                """, arguments: StatementArguments(state.map { [$0.rawValue] } ?? []) + [limit]).map(Self.correction)
        }
    }

    /// Pending (of which failing: tried and failed at least once), verified, and sweeps to do.
    public func identityCorrectionCounts() throws -> (pending: Int, failing: Int, verified: Int, sweeps: Int) {
        try writer.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT (SELECT COUNT(*) FROM identity_correction WHERE state = 'pending'),
                       (SELECT COUNT(*) FROM identity_correction WHERE state = 'pending' AND attempts > 0),
                       (SELECT COUNT(*) FROM identity_correction WHERE state = 'verified'),
                       (SELECT COUNT(*) FROM identity_sweep)
                """)!
            return (row[0], row[1], row[2], row[3])
        }
    }

    /// When the next sweep or correction is due.
    public func nextIdentityWork() throws -> Date? {
        try writer.read { db in
            try Double.fetchOne(db, sql: """
                SELECT MIN(t) FROM (SELECT MIN(next_at) AS t FROM identity_sweep
                                    UNION ALL SELECT MIN(next_at) FROM identity_correction WHERE state = 'pending')
                """).map(Date.init(timeIntervalSince1970:))
        }
    }

    private static let correctionColumns = """
        id, study_instance_uid, destination, issuer, patient_id, state, attempts, next_at, last_error, control_id,
        created_at, updated_at
        """

    private static func correction(_ row: Row) -> IdentityCorrection {
        IdentityCorrection(id: row[0], studyInstanceUID: row[1], destination: row[2], issuer: row[3], patientID: row[4],
                           state: IdentityCorrectionState(rawValue: row[5]) ?? .pending, attempts: row[6],
                           nextAt: Date(timeIntervalSince1970: row[7]), lastError: row[8], controlID: row[9],
                           createdAt: Date(timeIntervalSince1970: row[10]), updatedAt: Date(timeIntervalSince1970: row[11]))
    }
}
