import Foundation
import GRDB

/// The spool's index: patients, studies, series and instances in SQLite (WAL).
///
/// Each method is one intention and one transaction. The database file is opened once per
/// process; `passerellectl` opens it read-only beside a running daemon.
public struct SpoolDatabase: Sendable {
    let writer: any DatabaseWriter

    /// Opens (and migrates) the spool database at `path` in WAL mode with `synchronous=FULL`,
    /// so that a committed row survives a power cut.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        let pool = try DatabasePool(path: path, configuration: configuration)
        // GRDB sets NORMAL for WAL pools, which does not sync the WAL at each commit: a row
        // acknowledged to a sender could vanish in a power cut. FULL syncs every commit. All
        // writes go through the pool's single writer connection, so setting it there is enough.
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        try Self.migrator.migrate(pool)
        self.writer = pool
    }

    /// Opens an existing spool database for reading only (the daemon may be running).
    public init(readOnlyPath path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw SpoolError.noDatabase(path: path)
        }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        self.writer = try DatabaseQueue(path: path, configuration: configuration)
    }

    /// An in-memory database, for tests.
    public init() throws {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        let queue = try DatabaseQueue(configuration: configuration)
        try Self.migrator.migrate(queue)
        self.writer = queue
    }

    /// A database the caller opened and migrated (tests of a migration).
    init(writer: any DatabaseWriter) {
        self.writer = writer
    }

    /// Closes the reader connections not in use and empties the connections' page caches (the
    /// gateway turned idle): a burst's readers and caches are not kept for ever.
    public func releaseMemory() {
        (writer as? DatabasePool)?.releaseMemoryEventually()
    }

    /// Checkpoints the WAL into the database file and closes it (a clean stop leaves no
    /// `-wal` behind). The database is unusable afterwards.
    public func close() throws {
        guard let pool = writer as? DatabasePool else { return }
        try pool.writeWithoutTransaction { try $0.checkpoint(.truncate) }
        try pool.close()
    }

    /// Shipped migrations are never edited: add a new one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-index") { db in
            try db.execute(sql: """
                CREATE TABLE patient (
                    id INTEGER PRIMARY KEY,
                    patient_id TEXT NOT NULL,
                    issuer_of_patient_id TEXT NOT NULL,
                    patient_name TEXT,
                    birth_date TEXT,
                    sex TEXT,
                    UNIQUE (patient_id, issuer_of_patient_id)
                );
                CREATE TABLE study (
                    id INTEGER PRIMARY KEY,
                    study_instance_uid TEXT NOT NULL UNIQUE,
                    patient_ref INTEGER NOT NULL REFERENCES patient(id),
                    study_date TEXT,
                    study_time TEXT,
                    accession_number TEXT,
                    study_description TEXT,
                    last_received_at REAL NOT NULL
                );
                CREATE TABLE series (
                    id INTEGER PRIMARY KEY,
                    series_instance_uid TEXT NOT NULL UNIQUE,
                    study_ref INTEGER NOT NULL REFERENCES study(id),
                    modality TEXT,
                    series_number TEXT
                );
                CREATE TABLE instance (
                    id INTEGER PRIMARY KEY,
                    sop_instance_uid TEXT NOT NULL,
                    sop_class_uid TEXT NOT NULL,
                    transfer_syntax_uid TEXT NOT NULL,
                    series_ref INTEGER NOT NULL REFERENCES series(id),
                    instance_number TEXT,
                    file_path TEXT NOT NULL,
                    size INTEGER NOT NULL CHECK (size >= 0),
                    sha256 TEXT NOT NULL,
                    dataset_offset INTEGER NOT NULL CHECK (dataset_offset >= 0),
                    calling_ae_title TEXT NOT NULL,
                    received_at REAL NOT NULL,
                    revision INTEGER NOT NULL DEFAULT 1,
                    revision_state TEXT NOT NULL DEFAULT 'current'
                        CHECK (revision_state IN ('current', 'superseded'))
                );
                -- One current revision per SOP instance; superseded ones are kept beside it.
                CREATE UNIQUE INDEX instance_current ON instance(sop_instance_uid)
                    WHERE revision_state = 'current';
                CREATE INDEX instance_series ON instance(series_ref);
                CREATE INDEX instance_file ON instance(file_path);
                """)
        }
        migrator.registerMigration("v2-delivery") { db in
            try migrateDelivery(db)
        }
        migrator.registerMigration("v3-community") { db in
            try migrateCommunity(db)
        }
        migrator.registerMigration("v4-audit") { db in
            try migrateAudit(db)
        }
        migrator.registerMigration("v5-rights") { db in
            try migrateRights(db)
        }
        migrator.registerMigration("v6-journal") { db in
            try migrateJournal(db)
        }
        migrator.registerMigration("v7-digest") { db in
            try migrateDigest(db)
        }
        migrator.registerMigration("v8-hl7") { db in
            try migrateHL7(db)
        }
        migrator.registerMigration("v9-identity") { db in
            try migrateIdentity(db)
        }
        migrator.registerMigration("v10-report-withdrawal") { db in
            try migrateReportWithdrawal(db)
        }
        migrator.registerMigration("v11-backfill") { db in
            try migrateBackfill(db)
        }
        migrator.registerMigration("v12-status-totals") { db in
            try migrateStatusTotals(db)
            try migrateBackfillTotals(db)
        }
        migrator.registerMigration("v13-delivery-queue-indexes") { db in
            try migrateDeliveryQueueIndexes(db)
        }
        return migrator
    }

    /// Indexes a received instance (tests; the daemon indexes through `recordJournaled`).
    public func record(_ instance: NewInstance,
                       sameDataSet: (_ current: StoredLocation) throws -> Bool) throws -> RecordOutcome {
        try record([instance]) { _, current in try sameDataSet(current) }[0].get()
    }

    /// Indexes several instances in one transaction, each in a savepoint of its own, so that
    /// one failing row fails alone.
    ///
    /// When the SOP instance is already current, `sameDataSet(new, current)` says whether its
    /// data set bytes equal the new one's: equal is a `.duplicate` (nothing changes); different
    /// makes the new one current and keeps the old one as superseded. The comparison runs
    /// inside the transaction, so two receptions of one instance cannot race.
    public func record(
        _ instances: [NewInstance],
        sameDataSet: (_ instance: NewInstance, _ current: StoredLocation) throws -> Bool
    ) throws -> [Result<RecordOutcome, any Error>] {
        try writer.write { db in
            instances.map { instance in
                Result {
                    var outcome = RecordOutcome.stored
                    try db.inSavepoint {
                        outcome = try recordOne(instance, db: db) { try sameDataSet(instance, $0) }
                        return .commit
                    }
                    return outcome
                }
            }
        }
    }

    func recordOne(_ instance: NewInstance, db: Database,
                           sameDataSet: (_ current: StoredLocation) throws -> Bool) throws -> RecordOutcome {
        if let current = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT id, file_path, file_offset, size, dataset_offset, revision FROM instance
            WHERE sop_instance_uid = ? AND revision_state = 'current'
            """), arguments: [instance.sopInstanceUID]) {
            let currentID: Int64 = current["id"]
            let location = StoredLocation(relativePath: current["file_path"], offset: current["file_offset"],
                                          length: current["size"], dataSetOffset: current["dataset_offset"])
            if try sameDataSet(location) {
                return .duplicate(existing: location)
            }
            try db.cachedStatement(sql: "UPDATE instance SET revision_state = 'superseded' WHERE id = ?")
                .execute(arguments: [currentID])
            let revision: Int = current["revision"]
            try insert(instance, revision: revision + 1, db: db)
            return .revised(previous: location, revision: revision + 1)
        }
        try insert(instance, revision: 1, db: db)
        return .stored
    }

    /// Statements are cached: this runs once per received instance.
    private func insert(_ instance: NewInstance, revision: Int, db: Database) throws {
        let a = instance.attributes
        let patientRef = try Int64.fetchOne(db.cachedStatement(sql: """
            INSERT INTO patient (patient_id, issuer_of_patient_id, patient_name, birth_date, sex)
            VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (patient_id, issuer_of_patient_id) DO UPDATE SET
                patient_name = excluded.patient_name,
                birth_date = excluded.birth_date,
                sex = excluded.sex
            RETURNING id
            """), arguments: [a.patientID, a.issuerOfPatientID, a.patientName, a.patientBirthDate, a.patientSex])
        let studyRef = try Int64.fetchOne(db.cachedStatement(sql: """
            INSERT INTO study (study_instance_uid, patient_ref, study_date, study_time,
                               accession_number, study_description, last_received_at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (study_instance_uid) DO UPDATE SET
                patient_ref = excluded.patient_ref,
                last_received_at = excluded.last_received_at
            RETURNING id
            """), arguments: [a.studyInstanceUID, patientRef, a.studyDate, a.studyTime,
                              a.accessionNumber, a.studyDescription, instance.receivedAt.timeIntervalSince1970])
        let seriesRef = try Int64.fetchOne(db.cachedStatement(sql: """
            INSERT INTO series (series_instance_uid, study_ref, modality, series_number)
            VALUES (?, ?, ?, ?)
            ON CONFLICT (series_instance_uid) DO UPDATE SET study_ref = series.study_ref
            RETURNING id
            """), arguments: [a.seriesInstanceUID, studyRef, a.modality, a.seriesNumber])
        if let studyRef { try recordINS(a.ins, studyID: studyRef, db: db) }
        try db.cachedStatement(sql: """
            INSERT INTO instance (sop_instance_uid, sop_class_uid, transfer_syntax_uid, series_ref,
                                  instance_number, file_path, file_offset, size, sha256, dataset_offset,
                                  calling_ae_title, received_at, revision)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [instance.sopInstanceUID, instance.sopClassUID, instance.transferSyntaxUID,
                                     seriesRef, a.instanceNumber, instance.location.relativePath,
                                     instance.location.offset, instance.location.length, instance.sha256,
                                     instance.location.dataSetOffset, instance.callingAETitle,
                                     instance.receivedAt.timeIntervalSince1970, revision])
    }

    /// Every indexed instance, oldest first; superseded revisions only when asked.
    public func listInstances(includeSuperseded: Bool = false) throws -> [InstanceListing] {
        try writer.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT i.id, st.study_instance_uid, se.series_instance_uid, i.sop_instance_uid,
                       i.sop_class_uid, i.transfer_syntax_uid, p.patient_id, p.issuer_of_patient_id,
                       p.patient_name, i.file_path, i.size, i.sha256, i.revision_state, i.revision,
                       i.calling_ae_title, i.received_at, i.file_offset, i.dataset_offset
                FROM instance i
                JOIN series se ON se.id = i.series_ref
                JOIN study st ON st.id = se.study_ref
                JOIN patient p ON p.id = st.patient_ref
                WHERE ? OR i.revision_state = 'current'
                ORDER BY i.id
                """, arguments: [includeSuperseded])
            return rows.map { row in
                InstanceListing(
                    instanceID: row[0], studyInstanceUID: row[1], seriesInstanceUID: row[2], sopInstanceUID: row[3],
                    sopClassUID: row[4], transferSyntaxUID: row[5], patientID: row[6],
                    issuerOfPatientID: row[7], patientName: row[8],
                    location: StoredLocation(relativePath: row[9], offset: row[16], length: row[10], dataSetOffset: row[17]),
                    sha256: row[11], isSuperseded: (row[12] as String) == "superseded",
                    revision: row[13], callingAETitle: row[14],
                    receivedAt: Date(timeIntervalSince1970: row[15]))
            }
        }
    }

    /// All stored file paths the index references (for the start-up orphan sweep).
    public func referencedFilePaths() throws -> Set<String> {
        try writer.read { db in
            Set(try String.fetchAll(db, sql: "SELECT file_path FROM instance"))
        }
    }

    /// The writer connection's `PRAGMA synchronous` (2 = FULL).
    public func synchronousMode() throws -> Int {
        try writer.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    /// The studies of the spool with their current instances, most recently received first.
    public func studySummaries(limit: Int = 1000) throws -> [StudySummary] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT st.study_instance_uid, p.patient_id, p.issuer_of_patient_id, st.study_date,
                       st.accession_number, COUNT(i.id), COALESCE(SUM(i.size), 0),
                       MIN(i.received_at), MAX(i.received_at), GROUP_CONCAT(DISTINCT se.modality), st.urgent
                FROM study st
                JOIN patient p ON p.id = st.patient_ref
                JOIN series se ON se.study_ref = st.id
                JOIN instance i ON i.series_ref = se.id AND i.revision_state = 'current'
                GROUP BY st.id
                ORDER BY MAX(i.received_at) DESC
                LIMIT ?
                """, arguments: [limit]).map { row in
                StudySummary(
                    studyInstanceUID: row[0], patientID: row[1], issuerOfPatientID: row[2], studyDate: row[3],
                    accessionNumber: row[4], instances: row[5], bytes: row[6],
                    firstReceivedAt: Date(timeIntervalSince1970: row[7]),
                    lastReceivedAt: Date(timeIntervalSince1970: row[8]),
                    modalities: (row[9] as String?)?.split(separator: ",").map(String.init) ?? [],
                    urgent: row[10])
            }
        }
    }
}
