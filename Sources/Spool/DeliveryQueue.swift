import Foundation
import GRDB

/// The upload queue: one `delivery` row per (instance, destination), one `study_delivery` row
/// per (study, destination). Every transition is one transaction, so a crash leaves each
/// instance in a state the next start can act on (`in_flight` goes back to `queued`).
extension SpoolDatabase {
    static func migrateDelivery(_ db: Database) throws {
        try db.execute(sql: """
            ALTER TABLE study ADD COLUMN urgent INTEGER NOT NULL DEFAULT 0;
            -- 0 until the uploader has decided the instance's destinations.
            ALTER TABLE instance ADD COLUMN routed INTEGER NOT NULL DEFAULT 0;
            CREATE INDEX instance_unrouted ON instance(id) WHERE routed = 0;
            CREATE TABLE delivery (
                instance_ref INTEGER NOT NULL REFERENCES instance(id) ON DELETE CASCADE,
                destination TEXT NOT NULL,
                state TEXT NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'in_flight', 'stored', 'retry', 'rejected')),
                attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                next_at REAL,
                reason TEXT,
                sent_sha256 TEXT,
                updated_at REAL NOT NULL,
                PRIMARY KEY (instance_ref, destination)
            ) WITHOUT ROWID;
            CREATE INDEX delivery_state ON delivery(destination, state);
            CREATE TABLE study_delivery (
                study_ref INTEGER NOT NULL REFERENCES study(id) ON DELETE CASCADE,
                destination TEXT NOT NULL,
                generation INTEGER NOT NULL DEFAULT 0,
                verified_at REAL,
                next_verify_at REAL,
                PRIMARY KEY (study_ref, destination)
            ) WITHOUT ROWID;
            CREATE TABLE destination_control (
                name TEXT PRIMARY KEY,
                paused INTEGER NOT NULL DEFAULT 0
            );
            """)
    }

    /// Partial indexes over what is waiting (queued deliveries, urgent studies, superseded
    /// revisions, studies waiting for verification): the uploader's queries walk the backlog,
    /// not the spool.
    static func migrateDeliveryQueueIndexes(_ db: Database) throws {
        try db.execute(sql: """
            CREATE INDEX delivery_queued ON delivery(destination, instance_ref) WHERE state = 'queued';
            CREATE INDEX study_urgent ON study(id) WHERE urgent = 1;
            CREATE INDEX instance_superseded ON instance(id) WHERE revision_state = 'superseded';
            CREATE INDEX study_delivery_verifying ON study_delivery(destination)
                WHERE verified_at IS NULL AND withheld IS NULL AND unstored = 0;
            """)
    }

    /// One transaction for the upload's bookkeeping, committed without syncing the WAL
    /// (`synchronous=NORMAL` for this transaction only; the next FULL commit, e.g. of a
    /// received instance, syncs it too). A power cut may lose it: then an instance is routed,
    /// sent or verified once more, which the hub takes as a no-op. What must not be lost
    /// (received instances, purges before their files go) keeps `synchronous=FULL`.
    func writeBookkeeping<T>(_ updates: (Database) throws -> T) throws -> T {
        try writer.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            defer { try? db.execute(sql: "PRAGMA synchronous = FULL") }
            var result: T?
            try db.inTransaction {
                result = try updates(db)
                return .commit
            }
            return result!
        }
    }

    /// Start of a run: nothing is in flight any more.
    @discardableResult
    public func resetInFlight() throws -> Int {
        try writer.write { db in
            try db.execute(sql: "UPDATE delivery SET state = 'queued' WHERE state = 'in_flight'")
            return db.changesCount
        }
    }

    // MARK: Routing

    /// Current instances whose destinations are not decided yet, oldest first.
    public func unroutedInstances(limit: Int = 1000) throws -> [RoutingCandidate] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT i.id, i.calling_ae_title, se.modality, i.sop_class_uid
                FROM instance i JOIN series se ON se.id = i.series_ref
                WHERE i.routed = 0 AND i.revision_state = 'current'
                ORDER BY i.id LIMIT ?
                """, arguments: [limit]).map {
                RoutingCandidate(instanceID: $0[0], callingAETitle: $0[1], modality: $0[2], sopClassUID: $0[3])
            }
        }
    }

    /// Records routing decisions: a queued delivery per destination, and the study re-opened
    /// there (a late instance makes a verified study unverified). Pending deliveries of
    /// superseded revisions are dropped: their newer revision replaces them.
    /// Shared destinations get the study withheld when `sharing` blocks it (checked again
    /// before each chunk, so a study routed before an opposition is caught then).
    public func route(_ decisions: [(instanceID: Int64, destinations: [String])], sharing: SharingRules? = nil,
                      now: Date = Date()) throws {
        guard !decisions.isEmpty else { return }
        try writeBookkeeping { db in
            var studies: Set<Int64> = []
            for decision in decisions {
                for destination in decision.destinations {
                    try db.cachedStatement(sql: """
                        INSERT INTO delivery (instance_ref, destination, updated_at) VALUES (?, ?, ?)
                        ON CONFLICT DO NOTHING
                        """).execute(arguments: [decision.instanceID, destination, now.timeIntervalSince1970])
                    try db.cachedStatement(sql: """
                        INSERT INTO study_delivery (study_ref, destination)
                        SELECT se.study_ref, ? FROM instance i JOIN series se ON se.id = i.series_ref WHERE i.id = ?
                        ON CONFLICT DO UPDATE SET generation = generation + 1, verified_at = NULL, next_verify_at = NULL
                        """).execute(arguments: [destination, decision.instanceID])
                }
                try db.cachedStatement(sql: "UPDATE instance SET routed = 1 WHERE id = ?")
                    .execute(arguments: [decision.instanceID])
                if let sharing, !sharing.sharedDestinations.isDisjoint(with: decision.destinations),
                   let study = try Int64.fetchOne(db.cachedStatement(sql: """
                       SELECT se.study_ref FROM instance i JOIN series se ON se.id = i.series_ref WHERE i.id = ?
                       """), arguments: [decision.instanceID]) {
                    studies.insert(study)
                }
            }
            if let sharing { try applySharing(studies: studies, rules: sharing, db: db) }
            try db.execute(sql: """
                DELETE FROM delivery WHERE state IN ('queued', 'retry')
                AND instance_ref IN (SELECT id FROM instance WHERE revision_state = 'superseded')
                """)
        }
    }

    // MARK: Chunks

    /// Takes the next chunk for `destination` and marks it in flight: instances of one study,
    /// urgent studies first, then oldest; at most `maxInstances`, and at most `maxBytes` unless
    /// the first instance alone is larger. Empty when nothing is due.
    ///
    /// For a shared destination (`sharing` given) the study's sharing is checked first, in the
    /// same transaction: a study an opposition (or a consent hold) now blocks is withheld there
    /// and the next study is taken instead.
    public func takeChunk(destination: String, maxInstances: Int, maxBytes: Int, sharing: SharingRules? = nil,
                          now: Date = Date()) throws -> [ChunkInstance] {
        try writeBookkeeping { db in
            var chosen: Int64?
            while chosen == nil {
                guard let candidate = try nextDueStudy(destination: destination, now: now, db: db) else { return [] }
                if let sharing, sharing.sharedDestinations.contains(destination),
                   let block = try sharingBlock(studyID: candidate, rules: sharing, db: db) {
                    try db.cachedStatement(sql: """
                        UPDATE study_delivery SET withheld = ? WHERE study_ref = ? AND destination = ?
                        """).execute(arguments: [block.rawValue, candidate, destination])
                    continue
                }
                chosen = candidate
            }
            guard let studyID = chosen else { return [] }
            // From the study down (CROSS JOIN fixes the order), not from the destination's deliveries.
            let rows = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT i.id, st.study_instance_uid, i.sop_instance_uid, i.transfer_syntax_uid, i.file_path,
                       i.size, i.sha256, i.dataset_offset, p.issuer_of_patient_id, d.attempts, i.file_offset
                FROM study st CROSS JOIN series se CROSS JOIN instance i CROSS JOIN delivery d
                JOIN patient p ON p.id = st.patient_ref
                WHERE st.id = :study AND se.study_ref = st.id AND i.series_ref = se.id AND d.instance_ref = i.id
                  AND d.destination = :destination AND \(Self.due)
                ORDER BY d.instance_ref LIMIT :limit
                """), arguments: ["destination": destination, "study": studyID,
                                  "now": now.timeIntervalSince1970, "limit": maxInstances])
            var chunk: [ChunkInstance] = []
            var bytes = 0
            for row in rows {
                let size: Int = row[5]
                if !chunk.isEmpty && bytes + size > maxBytes { break }
                bytes += size
                chunk.append(ChunkInstance(
                    instanceID: row[0], studyInstanceUID: row[1], sopInstanceUID: row[2], transferSyntaxUID: row[3],
                    location: StoredLocation(relativePath: row[4], offset: row[10], length: size, dataSetOffset: row[7]),
                    sha256: row[6],
                    lacksIssuerOfPatientID: (row[8] as String).trimmingCharacters(in: .whitespaces).isEmpty,
                    attempts: (row[9] as Int) + 1))
            }
            for instance in chunk {
                try db.cachedStatement(sql: """
                    UPDATE delivery SET state = 'in_flight', attempts = attempts + 1, updated_at = ?
                    WHERE instance_ref = ? AND destination = ?
                    """).execute(arguments: [now.timeIntervalSince1970, instance.instanceID, destination])
            }
            return chunk
        }
    }

    /// A delivery that may be sent now.
    static let due = "(d.state = 'queued' OR (d.state = 'retry' AND d.next_at <= :now))"

    /// The study to send from next at `destination`, not withheld there: an urgent study with
    /// something due; else the study of the oldest queued instance or of the longest-due retry,
    /// whichever instance came first. Each is one step down a partial index (the backlog, not
    /// the spool): ordering all of a destination's deliveries made every chunk cost as much as
    /// the spool held.
    func nextDueStudy(destination: String, now: Date, db: Database) throws -> Int64? {
        let arguments: StatementArguments = ["destination": destination, "now": now.timeIntervalSince1970]
        if let urgent = try Int64.fetchOne(db.cachedStatement(sql: """
            SELECT st.id FROM study st INDEXED BY study_urgent CROSS JOIN study_delivery sd
            WHERE st.urgent = 1 AND sd.study_ref = st.id AND sd.destination = :destination
              AND sd.withheld IS NULL
              AND EXISTS (SELECT 1 FROM series se CROSS JOIN instance i CROSS JOIN delivery d
                          WHERE se.study_ref = st.id AND i.series_ref = se.id AND d.instance_ref = i.id
                            AND d.destination = :destination AND \(Self.due))
            ORDER BY st.id LIMIT 1
            """), arguments: arguments) {
            return urgent
        }
        func first(_ index: String, _ condition: String, orderedBy order: String) throws -> (instance: Int64, study: Int64)? {
            try Row.fetchOne(db.cachedStatement(sql: """
                SELECT d.instance_ref, se.study_ref FROM delivery d INDEXED BY \(index)
                CROSS JOIN instance i CROSS JOIN series se CROSS JOIN study_delivery sd
                WHERE d.destination = :destination AND \(condition) AND i.id = d.instance_ref AND se.id = i.series_ref
                  AND sd.study_ref = se.study_ref AND sd.destination = d.destination AND sd.withheld IS NULL
                ORDER BY \(order) LIMIT 1
                """), arguments: arguments).map { ($0[0], $0[1]) }
        }
        let queued = try first("delivery_queued", "d.state = 'queued'", orderedBy: "d.instance_ref")
        let retry = try first("delivery_retry", "d.state = 'retry' AND d.next_at <= :now", orderedBy: "d.next_at")
        switch (queued, retry) {
        case let (queued?, retry?): return queued.instance <= retry.instance ? queued.study : retry.study
        case let (queued?, nil): return queued.study
        case let (nil, retry?): return retry.study
        case (nil, nil): return nil
        }
    }

    /// Records what a send did to each instance.
    public func complete(destination: String, outcomes: [(instanceID: Int64, outcome: DeliveryOutcome)],
                         now: Date = Date()) throws {
        try writeBookkeeping { db in
            for (instanceID, outcome) in outcomes {
                let arguments: StatementArguments
                let sql: String
                switch outcome {
                case .stored(let sentSHA256):
                    sql = "state = 'stored', next_at = NULL, reason = NULL, sent_sha256 = ?"
                    arguments = [sentSHA256]
                case .retry(let at, let reason):
                    sql = "state = 'retry', next_at = ?, reason = ?"
                    arguments = [at.timeIntervalSince1970, reason]
                case .rejected(let reason):
                    sql = "state = 'rejected', next_at = NULL, reason = ?"
                    arguments = [reason]
                case .requeue:
                    sql = "state = 'queued', attempts = MAX(attempts - 1, 0)"
                    arguments = []
                }
                try db.cachedStatement(sql: """
                    UPDATE delivery SET \(sql), updated_at = ? WHERE instance_ref = ? AND destination = ?
                    """).execute(arguments: arguments + [now.timeIntervalSince1970, instanceID, destination])
            }
        }
    }

    /// A destination that failed answers again: its retries and postponed verifications are
    /// due now rather than at their backed-off times.
    public func expediteRetries(destination: String, now: Date = Date()) throws {
        try writeBookkeeping { db in
            try db.execute(sql: """
                UPDATE delivery SET next_at = ? WHERE destination = ? AND state = 'retry' AND next_at > ?
                """, arguments: [now.timeIntervalSince1970, destination, now.timeIntervalSince1970])
            try db.execute(sql: "UPDATE study_delivery SET next_verify_at = NULL WHERE destination = ?",
                           arguments: [destination])
        }
    }

    /// The earliest `next_at` of a retry at `destination`.
    public func nextRetry(destination: String) throws -> Date? {
        try writer.read { db in
            try Double.fetchOne(db, sql: """
                SELECT MIN(next_at) FROM delivery WHERE destination = ? AND state = 'retry'
                """, arguments: [destination]).map(Date.init(timeIntervalSince1970:))
        }
    }

    // MARK: Verification

    /// Studies complete before `stableBefore` whose current instances are all stored at
    /// `destination` and that are not verified there yet.
    public func verificationCandidates(destination: String, stableBefore: Date, now: Date = Date(),
                                       limit: Int = 16) throws -> [VerificationCandidate] {
        try writer.read { db in
            // `unstored = 0`: every current instance is stored there (kept by the status
            // triggers); the partial index holds only the studies waiting for verification.
            let studies = try Row.fetchAll(db, sql: """
                SELECT st.id, st.study_instance_uid, sd.generation FROM study_delivery sd INDEXED BY study_delivery_verifying
                JOIN study st ON st.id = sd.study_ref
                WHERE sd.destination = :destination AND sd.verified_at IS NULL AND sd.withheld IS NULL AND sd.unstored = 0
                  AND st.last_received_at <= :stable
                  AND (sd.next_verify_at IS NULL OR sd.next_verify_at <= :now)
                ORDER BY st.urgent DESC, st.last_received_at LIMIT :limit
                """, arguments: ["destination": destination, "stable": stableBefore.timeIntervalSince1970,
                                 "now": now.timeIntervalSince1970, "limit": limit])
            return try studies.map { row in
                let studyID: Int64 = row[0]
                var instances: [String: Int64] = [:]
                for instance in try Row.fetchAll(db, sql: """
                    SELECT i.sop_instance_uid, i.id FROM series se CROSS JOIN instance i CROSS JOIN delivery d
                    WHERE se.study_ref = ? AND i.series_ref = se.id AND i.revision_state = 'current'
                      AND d.instance_ref = i.id AND d.destination = ?
                    """, arguments: [studyID, destination]) {
                    instances[instance[0]] = instance[1]
                }
                return VerificationCandidate(studyID: studyID, studyInstanceUID: row[1], generation: row[2],
                                             instances: instances)
            }
        }
    }

    /// Records a verification: with nothing `missing` the study is verified (unless an
    /// instance was routed to it meanwhile); missing instances are queued again and the study
    /// is checked again once they are stored. Returns whether the study is now verified.
    @discardableResult
    public func recordVerification(_ candidate: VerificationCandidate, destination: String, missing: [Int64],
                                   now: Date = Date()) throws -> Bool {
        try writeBookkeeping { db in
            if missing.isEmpty {
                try db.execute(sql: """
                    UPDATE study_delivery SET verified_at = ? WHERE study_ref = ? AND destination = ? AND generation = ?
                    """, arguments: [now.timeIntervalSince1970, candidate.studyID, destination, candidate.generation])
                return db.changesCount == 1
            }
            for instanceID in missing {
                try db.execute(sql: """
                    UPDATE delivery SET state = 'queued', next_at = NULL,
                        reason = 'not listed by the hub at verification', updated_at = ?
                    WHERE instance_ref = ? AND destination = ? AND state = 'stored'
                    """, arguments: [now.timeIntervalSince1970, instanceID, destination])
            }
            return false
        }
    }

    /// A verification that could not run (hub unreachable): try again at `at`.
    public func postponeVerification(_ candidate: VerificationCandidate, destination: String, until at: Date) throws {
        try writeBookkeeping { db in
            try db.execute(sql: "UPDATE study_delivery SET next_verify_at = ? WHERE study_ref = ? AND destination = ?",
                           arguments: [at.timeIntervalSince1970, candidate.studyID, destination])
        }
    }

    // MARK: Control

    /// Queues again the retries and rejections of a study (or of every study). Returns how many.
    @discardableResult
    public func requeue(studyInstanceUID: String?, now: Date = Date()) throws -> Int {
        try writer.write { db in
            try db.execute(sql: """
                UPDATE delivery SET state = 'queued', next_at = NULL, updated_at = :now
                WHERE state IN ('retry', 'rejected')
                  AND (:study IS NULL OR instance_ref IN (
                    SELECT i.id FROM instance i JOIN series se ON se.id = i.series_ref
                    JOIN study st ON st.id = se.study_ref WHERE st.study_instance_uid = :study))
                """, arguments: ["now": now.timeIntervalSince1970, "study": studyInstanceUID])
            let changed = db.changesCount
            try db.execute(sql: """
                UPDATE study_delivery SET next_verify_at = NULL
                WHERE :study IS NULL OR study_ref IN (SELECT id FROM study WHERE study_instance_uid = :study)
                """, arguments: ["study": studyInstanceUID])
            return changed
        }
    }

    /// Marks a study urgent (it overtakes the queue). False when the spool has no such study.
    public func markUrgent(studyInstanceUID: String) throws -> Bool {
        try writer.write { db in
            try db.execute(sql: "UPDATE study SET urgent = 1 WHERE study_instance_uid = ?",
                           arguments: [studyInstanceUID])
            return db.changesCount == 1
        }
    }

    public func setPaused(_ paused: Bool, destination: String) throws {
        try writer.write { db in
            try db.execute(sql: """
                INSERT INTO destination_control (name, paused) VALUES (?, ?)
                ON CONFLICT (name) DO UPDATE SET paused = excluded.paused
                """, arguments: [destination, paused])
        }
    }

    public func pausedDestinations() throws -> Set<String> {
        try writer.read { db in
            Set(try String.fetchAll(db, sql: "SELECT name FROM destination_control WHERE paused = 1"))
        }
    }

    // MARK: Reports

    /// Study UID → destination → the study's delivery there; a study is `receiving` while its
    /// last instance is newer than `stableBefore`.
    public func studyDeliveries(stableBefore: Date) throws -> [String: [String: StudyDelivery]] {
        try writer.read { db in
            var result: [String: [String: StudyDelivery]] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT st.study_instance_uid, sd.destination, st.last_received_at, sd.verified_at, d.state, COUNT(d.state),
                       sd.withheld
                FROM study_delivery sd JOIN study st ON st.id = sd.study_ref
                LEFT JOIN series se ON se.study_ref = st.id
                LEFT JOIN instance i ON i.series_ref = se.id AND i.revision_state = 'current'
                LEFT JOIN delivery d ON d.instance_ref = i.id AND d.destination = sd.destination
                GROUP BY st.id, sd.destination, d.state
                """) {
                let study: String = row[0], destination: String = row[1]
                var entry = result[study]?[destination]
                    ?? StudyDelivery(state: .receiving, instances: [:],
                                     verifiedAt: (row[3] as Double?).map(Date.init(timeIntervalSince1970:)))
                if let state = row[4] as String? { entry.instances[state] = row[5] }
                let complete = (row[2] as Double) <= stableBefore.timeIntervalSince1970
                entry.withheld = (row[6] as String?).flatMap(SharingBlock.init(rawValue:))
                entry.state = entry.withheld != nil ? .withheld
                    : Self.studyState(instances: entry.instances, complete: complete, verified: entry.verifiedAt != nil)
                result[study, default: [:]][destination] = entry
            }
            return result
        }
    }

    static func studyState(instances: [String: Int], complete: Bool, verified: Bool) -> StudyDeliveryState {
        if !complete { return .receiving }
        if verified { return .verified }
        if instances[DeliveryState.rejected.rawValue, default: 0] > 0 { return .rejected }
        let pending = instances.filter { $0.key != DeliveryState.stored.rawValue }.values.reduce(0, +)
        return pending > 0 ? .uploading : .verifying
    }

    /// Instance row → destination → delivery, for `spool list`.
    public func deliveries() throws -> [Int64: [String: DeliveryInfo]] {
        try writer.read { db in
            var result: [Int64: [String: DeliveryInfo]] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT instance_ref, destination, state, attempts, next_at, reason, sent_sha256 FROM delivery
                """) {
                guard let state = DeliveryState(rawValue: row[2]) else { continue }
                result[row[0], default: [:]][row[1]] = DeliveryInfo(
                    state: state, attempts: row[3], nextAt: (row[4] as Double?).map(Date.init(timeIntervalSince1970:)),
                    reason: row[5], sentSha256: row[6])
            }
            return result
        }
    }
}
