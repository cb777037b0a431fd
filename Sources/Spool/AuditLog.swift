import Foundation
import GRDB

/// One row of the append-only `audit` table, as written (docs/audit.md). The chain's rule
/// (how `hash` follows from `previousHash` and `content`) is the Audit target's: the spool
/// only keeps rows in order and links each to the last inside one write transaction.
public struct AuditRecord: Sendable, Equatable {
    public var id: Int64
    /// RFC 3339 UTC, as in the content.
    public var at: String
    public var action: String
    public var outcome: Int
    public var content: String
    public var previousHash: String
    public var hash: String

    public init(id: Int64, at: String, action: String, outcome: Int, content: String, previousHash: String,
                hash: String) {
        self.id = id
        self.at = at
        self.action = action
        self.outcome = outcome
        self.content = content
        self.previousHash = previousHash
        self.hash = hash
    }
}

/// What to append: the content and the columns the export searches by.
public struct AuditDraft: Sendable, Equatable {
    public var at: String
    public var action: String
    public var outcome: Int
    public var content: String
    /// (patient ID, issuer) pairs.
    public var patients: [AuditPatientKey]
    public var studies: [String]
    /// Calling AE titles and user names, for "who did" searches.
    public var actors: [String]

    public init(at: String, action: String, outcome: Int, content: String, patients: [AuditPatientKey] = [],
                studies: [String] = [], actors: [String] = []) {
        self.at = at
        self.action = action
        self.outcome = outcome
        self.content = content
        self.patients = patients
        self.studies = studies
        self.actors = actors
    }
}

public struct AuditPatientKey: Sendable, Hashable {
    public var id: String
    public var issuer: String

    public init(id: String, issuer: String) {
        self.id = id
        self.issuer = issuer
    }
}

extension SpoolDatabase {
    static func migrateAudit(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE audit (
                id INTEGER PRIMARY KEY,
                at TEXT NOT NULL,
                action TEXT NOT NULL,
                outcome INTEGER NOT NULL,
                content TEXT NOT NULL,
                previous_hash TEXT NOT NULL,
                hash TEXT NOT NULL UNIQUE
            );
            -- Who and which patients and studies each row names: the export is one indexed query.
            CREATE TABLE audit_subject (
                kind TEXT NOT NULL CHECK (kind IN ('patient', 'study', 'actor')),
                value TEXT NOT NULL,
                issuer TEXT NOT NULL DEFAULT '',
                audit_id INTEGER NOT NULL REFERENCES audit(id),
                PRIMARY KEY (kind, value, issuer, audit_id)
            ) WITHOUT ROWID;
            -- The ATNA outbox: rows with id > sent_through are queued for the repository.
            CREATE TABLE audit_outbox (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                sent_through INTEGER NOT NULL
            );
            INSERT INTO audit_outbox (id, sent_through) VALUES (1, 0);
            -- Append-only: the daemon never changes nor deletes a row (the chain shows it if anyone does).
            CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
                BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
            CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
                BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
            """)
    }

    /// Appends rows in one transaction; `link(previousHash)` gives each row's hash, the
    /// previous one being the last row's (`genesis` for the first row of the table). The
    /// transaction holds the write lock, so two writers cannot fork the chain.
    public func appendAudit(_ drafts: [AuditDraft], genesis: String,
                            link: (_ previousHash: String, _ draft: AuditDraft) -> String) throws -> [AuditRecord] {
        guard !drafts.isEmpty else { return [] }
        return try writer.write { db in
            var last = try Row.fetchOne(db.cachedStatement(sql: "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1"))
                .map { (id: $0[0] as Int64, hash: $0[1] as String) } ?? (id: 0, hash: genesis)
            var records: [AuditRecord] = []
            for draft in drafts {
                let id = last.id + 1
                let hash = link(last.hash, draft)
                try db.cachedStatement(sql: """
                    INSERT INTO audit (id, at, action, outcome, content, previous_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)
                    """).execute(arguments: [id, draft.at, draft.action, draft.outcome, draft.content, last.hash, hash])
                let subject = try db.cachedStatement(sql: """
                    INSERT OR IGNORE INTO audit_subject (kind, value, issuer, audit_id) VALUES (?, ?, ?, ?)
                    """)
                for patient in draft.patients {
                    try subject.execute(arguments: ["patient", patient.id, patient.issuer, id])
                }
                for study in draft.studies { try subject.execute(arguments: ["study", study, "", id]) }
                for actor in draft.actors { try subject.execute(arguments: ["actor", actor, "", id]) }
                records.append(AuditRecord(id: id, at: draft.at, action: draft.action, outcome: draft.outcome,
                                           content: draft.content, previousHash: last.hash, hash: hash))
                last = (id, hash)
            }
            return records
        }
    }

    /// Rows with id > `afterID`, in id order (verify walks them in pages).
    public func auditRecords(after afterID: Int64 = 0, limit: Int = 1000) throws -> [AuditRecord] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, at, action, outcome, content, previous_hash, hash FROM audit WHERE id > ? ORDER BY id LIMIT ?
                """, arguments: [afterID, limit]).map(Self.auditRecord)
        }
    }

    /// The rows naming the patient, or naming a study that a row naming the patient names
    /// (a retrieval names its studies, not their patient), at or after `since`, in id order.
    public func auditRecords(patientID: String, issuer: String, since: String? = nil) throws -> [AuditRecord] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                WITH mine AS (
                    SELECT audit_id FROM audit_subject WHERE kind = 'patient' AND value = ? AND issuer = ?
                ), studies AS (
                    SELECT DISTINCT s.value FROM audit_subject s JOIN mine ON s.audit_id = mine.audit_id
                    WHERE s.kind = 'study'
                ), hits AS (
                    SELECT audit_id FROM mine
                    UNION SELECT s.audit_id FROM audit_subject s JOIN studies ON s.kind = 'study' AND s.value = studies.value
                )
                SELECT id, at, action, outcome, content, previous_hash, hash FROM audit
                WHERE id IN (SELECT audit_id FROM hits) AND at >= ? ORDER BY id
                """, arguments: [patientID, issuer, since ?? ""]).map(Self.auditRecord)
        }
    }

    /// The last row (the chain's head), nil while the table is empty.
    public func auditHead() throws -> AuditRecord? {
        try writer.read { db in
            try Row.fetchOne(db, sql: """
                SELECT id, at, action, outcome, content, previous_hash, hash FROM audit ORDER BY id DESC LIMIT 1
                """).map(Self.auditRecord)
        }
    }

    /// The id of the last row sent to the repository.
    public func auditSentThrough() throws -> Int64 {
        try writer.read { db in
            try Int64.fetchOne(db, sql: "SELECT sent_through FROM audit_outbox WHERE id = 1") ?? 0
        }
    }

    /// Rows sent up to `id` (never moves back).
    public func setAuditSentThrough(_ id: Int64) throws {
        try writer.write { db in
            try db.execute(sql: "UPDATE audit_outbox SET sent_through = MAX(sent_through, ?) WHERE id = 1",
                           arguments: [id])
        }
    }

    /// Rows waiting for the repository.
    public func auditQueueDepth() throws -> Int {
        try writer.read { db in
            try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM audit WHERE id > (SELECT sent_through FROM audit_outbox WHERE id = 1)
                """) ?? 0
        }
    }

    private static func auditRecord(_ row: Row) -> AuditRecord {
        AuditRecord(id: row[0], at: row[1], action: row[2], outcome: row[3], content: row[4], previousHash: row[5],
                    hash: row[6])
    }
}
