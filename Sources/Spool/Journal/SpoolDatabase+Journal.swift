import Foundation
import GRDB

/// A live instance of a segment about to be compacted: where it is, and the header its copy
/// carries (rebuilt from its row; its checksum is computed as it is copied).
struct RelocatableInstance {
    var id: Int64
    var location: StoredLocation
    var header: JournalRecordHeader
}

extension SpoolDatabase {
    /// `instance.file_offset`: where the Part-10 bytes start in `file_path` (a journal segment;
    /// 0 for files of the former store). `journal_checkpoint`: per segment, the end of the last
    /// record the index holds; replay starts there.
    static func migrateJournal(_ db: Database) throws {
        try db.execute(sql: """
            ALTER TABLE instance ADD COLUMN file_offset INTEGER NOT NULL DEFAULT 0 CHECK (file_offset >= 0);
            CREATE TABLE journal_checkpoint (
                segment TEXT PRIMARY KEY,
                indexed_through INTEGER NOT NULL
            );
            """)
    }

    /// Indexes a group of durable journal records in one transaction and moves their segments'
    /// checkpoints, *without* syncing the WAL (`synchronous = NORMAL` for this transaction):
    /// the journal is the durable copy, and replay indexes again whatever a power cut undoes.
    /// Writes that are not derived from the journal keep `FULL`, whose sync covers these too.
    func recordJournaled(
        _ works: [GroupCommit.Work], checkpoints: [String: Int],
        sameDataSet: (_ current: StoredLocation, _ new: StoredLocation) -> Bool
    ) throws -> [Result<RecordOutcome, any Error>] {
        try writeBookkeeping { db in
            let results = works.map { work in
                Result<RecordOutcome, any Error> {
                    var outcome = RecordOutcome.stored
                    try db.inSavepoint {
                        switch work {
                        case .index(let instance):
                            outcome = try recordOne(instance, db: db) { sameDataSet($0, instance.location) }
                        case .relocate(let id, let from, let to):
                            outcome = try relocate(id, from: from, to: to, db: db)
                        case .hl7(let message, let location):
                            if try !insertHL7(message, at: location, db: db) {
                                outcome = .duplicate(existing: StoredLocation(location, dataSetOffset: 0))
                            }
                        }
                        return .commit
                    }
                    return outcome
                }
            }
            // Out of room is not one row's fault: nothing is committed, checkpoints included, so
            // that every record is indexed again, together, once room returns.
            for case .failure(let error) in results where GroupCommit.wantsRoom(error) { throw error }
            for (segment, end) in checkpoints {
                try db.cachedStatement(sql: """
                    INSERT INTO journal_checkpoint (segment, indexed_through) VALUES (?, ?)
                    ON CONFLICT (segment) DO UPDATE SET
                        indexed_through = MAX(indexed_through, excluded.indexed_through)
                    """).execute(arguments: [segment, end])
            }
            return results
        }
    }

    /// Moves a row to its copy if it is still where compaction read it (a purge may have won).
    private func relocate(_ id: Int64, from: StoredLocation, to: StoredLocation, db: Database) throws -> RecordOutcome {
        try db.cachedStatement(sql: """
            UPDATE instance SET file_path = ?, file_offset = ? WHERE id = ? AND file_path = ? AND file_offset = ?
            """).execute(arguments: [to.relativePath, to.offset, id, from.relativePath, from.offset])
        return db.changesCount == 1 ? .stored : .duplicate(existing: from)
    }

    /// Makes every commit so far durable, the unsynced ones included: a commit under `FULL`
    /// that writes a page syncs the WAL, and with it every frame before. Called before a
    /// segment whose rows just moved is deleted.
    func syncIndex() throws {
        try writer.write { db in
            try db.execute(sql: "UPDATE journal_checkpoint SET indexed_through = indexed_through")
        }
    }

    /// Where replay starts in each segment.
    public func journalCheckpoints() throws -> [String: Int] {
        try writer.read { db in
            var result: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT segment, indexed_through FROM journal_checkpoint") {
                result[row[0]] = row[1]
            }
            return result
        }
    }

    /// Deletes the checkpoints of segments not in `present`, except the newest, which keeps
    /// the high-water mark of segment numbers.
    func pruneJournalCheckpoints(keeping present: Set<String>) throws {
        try writer.write { db in
            let segments = try String.fetchAll(db, sql: "SELECT segment FROM journal_checkpoint")
            let newest = segments.max { (Journal.sequence(ofPath: $0) ?? 0) < (Journal.sequence(ofPath: $1) ?? 0) }
            for segment in segments where !present.contains(segment) && segment != newest {
                try db.execute(sql: "DELETE FROM journal_checkpoint WHERE segment = ?", arguments: [segment])
            }
        }
    }

    /// The rows (current or superseded) whose bytes are in `file`.
    func liveInstances(inFile file: String) throws -> [RelocatableInstance] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, file_offset, size, dataset_offset, sop_instance_uid, sop_class_uid,
                       transfer_syntax_uid, calling_ae_title, received_at
                FROM instance WHERE file_path = ? ORDER BY file_offset
                """, arguments: [file]).map { row in
                let dataSetOffset: Int = row[3]
                let receivedAt: Double = row[8]
                return RelocatableInstance(
                    id: row[0],
                    location: StoredLocation(relativePath: file, offset: row[1], length: row[2], dataSetOffset: dataSetOffset),
                    header: JournalRecordHeader(type: .dicomInstance, payloadLength: row[2], checksum: .crc32c(0), fields: [
                        JournalFields.sopInstanceUID: row[4], JournalFields.sopClassUID: row[5],
                        JournalFields.transferSyntaxUID: row[6], JournalFields.callingAETitle: row[7],
                        JournalFields.receivedAt: String(receivedAt), JournalFields.dataSetOffset: String(dataSetOffset),
                    ]))
            }
        }
    }
}
