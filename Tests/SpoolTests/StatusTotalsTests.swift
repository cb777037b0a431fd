import Foundation
import GRDB
import Testing
@testable import Spool

/// The counters `status` reads are kept by triggers: after any sequence of receptions,
/// revisions, routing, uploads, verifications, holds and purges they must equal what summing
/// over the rows gives (the queries `status` ran before, kept here as the oracle).
@Suite struct StatusTotalsTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    /// A deterministic generator (SplitMix64), so a failure can be replayed.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func countersMatchTheRowsAfterEveryStep(seed: UInt64) throws {
        let database = try SpoolDatabase()
        var random = Generator(state: seed)
        for step in 0..<400 {
            let action = try operate(on: database, step: step, using: &random)
            try expectCountersMatch(database, after: "step \(step) (\(action)), seed \(seed)")
            try expectQueueQueriesMatch(database, now: t0.addingTimeInterval(Double(step)),
                                        after: "step \(step) (\(action)), seed \(seed)")
        }
    }

    @Test func theMigrationCountsWhatASpoolAlreadyHolds() throws {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        let queue = try DatabaseQueue(configuration: configuration)
        try SpoolDatabase.migrator.migrate(queue, upTo: "v11-backfill")
        let database = SpoolDatabase(writer: queue)
        var random = Generator(state: 42)
        var actions: Set<String> = []
        // The uploader's queries of today need the counters: the v11 spool is built with the
        // queries it had then.
        for step in 0..<300 { actions.insert(try operate(on: database, step: step, using: &random, before12: true)) }
        #expect(actions.count >= 8, "the sequence exercised \(actions.sorted())")
        try SpoolDatabase.migrator.migrate(queue)
        try expectCountersMatch(database, after: "the migration")
        #expect(try database.counts().instances > 0)
    }

    @Test func receivingIsWorkedOutFromTheClock() throws {
        let database = try SpoolDatabase()
        try receive(database, study: "1.1", instances: 1...2, at: t0)
        try receive(database, study: "1.2", instances: 1...1, at: t0.addingTimeInterval(60))
        try database.route(try database.unroutedInstances().map { ($0.instanceID, ["archive"]) }, now: t0)
        #expect(try database.studyStateTotals(stableBefore: t0.addingTimeInterval(30)) == ["archive": [.uploading: 1, .receiving: 1]])
        #expect(try database.studyStateTotals(stableBefore: t0.addingTimeInterval(90)) == ["archive": [.uploading: 2]])
        #expect(try database.studyStateTotals(stableBefore: t0.addingTimeInterval(-1)) == ["archive": [.receiving: 2]])
    }

    // MARK: Random operations

    func receive(_ database: SpoolDatabase, study: String, instances: ClosedRange<Int>, at: Date, size: Int = 1000,
                 revision: Int = 0) throws {
        let new = instances.map { n in
            NewInstance(sopInstanceUID: "\(study).\(n)", sopClassUID: "1.2.840.10008.5.1.4.1.1.2",
                        transferSyntaxUID: "1.2.840.10008.1.2.1",
                        attributes: IndexedAttributes(studyInstanceUID: study, seriesInstanceUID: "\(study).\(n % 2)",
                                                      patientID: "P-\(study)", issuerOfPatientID: "CHR", modality: "CT"),
                        location: StoredLocation(relativePath: "store/\(study)/\(n).\(revision)", offset: 0,
                                                 length: size + n + revision, dataSetOffset: 132),
                        sha256: "h\(n).\(revision)", callingAETitle: "CT1", receivedAt: at)
        }
        // A revision has different bytes: the current one is superseded.
        for result in try database.record(new, sameDataSet: { _, _ in false }) { _ = try result.get() }
    }

    /// One random operation; returns its name.
    func operate(on database: SpoolDatabase, step: Int, using random: inout Generator, before12: Bool = false) throws -> String {
        let destinations = ["archive", "community"]
        let destination = destinations.randomElement(using: &random)!
        let now = t0.addingTimeInterval(Double(step))
        let study = "1.\(Int.random(in: 1...6, using: &random))"
        switch Int.random(in: 0..<100, using: &random) {
        case 0..<20:
            let first = Int.random(in: 1...8, using: &random)
            try receive(database, study: study, instances: first...first + Int.random(in: 0...3, using: &random), at: now,
                        revision: Int.random(in: 0...2, using: &random))
            return "receive"
        case 20..<32:
            let decisions = try database.unroutedInstances().map { candidate in
                (candidate.instanceID, Bool.random(using: &random) ? destinations : [destination])
            }
            try database.route(decisions, now: now)
            return "route"
        case 32..<55:
            let maxInstances = Int.random(in: 1...6, using: &random)
            let chunk = before12
                ? try legacyTakeChunk(database, destination: destination, maxInstances: maxInstances, now: now.addingTimeInterval(120))
                : try database.takeChunk(destination: destination, maxInstances: maxInstances, maxBytes: 1 << 20,
                                         now: now.addingTimeInterval(120)).map { ($0.instanceID, $0.sha256) }
            let outcomes: [(instanceID: Int64, outcome: DeliveryOutcome)] = chunk.map { instance in
                let outcome: DeliveryOutcome
                switch Int.random(in: 0..<10, using: &random) {
                case 0..<6: outcome = .stored(sentSHA256: instance.sha256)
                case 6: outcome = .rejected(reason: "0xA900")
                case 7: outcome = .retry(at: now.addingTimeInterval(30), reason: "503")
                case 8: outcome = .requeue
                default: outcome = .stored(sentSHA256: "other")
                }
                return (instance.instanceID, outcome)
            }
            // Sometimes left in flight, as a crash would.
            if Int.random(in: 0..<5, using: &random) > 0 {
                try database.complete(destination: destination, outcomes: outcomes, now: now)
            }
            return "upload"
        case 55..<58:
            try database.resetInFlight()
            return "reset in flight"
        case 58..<62:
            _ = try database.requeue(studyInstanceUID: Bool.random(using: &random) ? study : nil, now: now)
            if Bool.random(using: &random) {
                try database.writer.write { db in
                    try db.execute(sql: "UPDATE study SET urgent = 1 WHERE study_instance_uid = ?", arguments: [study])
                }
            }
            return "requeue"
        case 62..<75:
            let candidates = before12
                ? try legacyVerificationCandidates(database, destination: destination, stableBefore: now, now: now, limit: 16)
                : try database.verificationCandidates(destination: destination, stableBefore: now, now: now)
            for candidate in candidates {
                let missing = Bool.random(using: &random) ? [] : Array(candidate.instances.values.prefix(1))
                try database.recordVerification(candidate, destination: destination, missing: missing, now: now)
            }
            return "verify"
        case 75..<83:
            let value = ["opposition", "consent", nil].randomElement(using: &random)!
            try database.writer.write { db in
                try db.execute(sql: """
                    UPDATE study_delivery SET withheld = ? WHERE destination = ?
                    AND study_ref = (SELECT id FROM study WHERE study_instance_uid = ?)
                    """, arguments: [value, destination, study])
            }
            return "withhold"
        case 83..<90:
            for candidate in try database.purgeCandidates(verifiedBefore: nil) { _ = try database.purge(candidate, now: now) }
            return "purge"
        case 90..<95:
            // What a report withdrawal does: pending deliveries of one destination dropped.
            try database.writer.write { db in
                try db.execute(sql: """
                    DELETE FROM delivery WHERE destination = ? AND state IN ('queued', 'retry', 'rejected')
                    AND instance_ref IN (SELECT i.id FROM instance i JOIN series se ON se.id = i.series_ref
                                         JOIN study st ON st.id = se.study_ref WHERE st.study_instance_uid = ?)
                    """, arguments: [destination, study])
            }
            return "drop deliveries"
        default:
            // Deleting a study outright (as the retention does), whatever its state.
            try database.writer.write { db in
                let id = try Int64.fetchOne(db, sql: "SELECT id FROM study WHERE study_instance_uid = ?", arguments: [study])
                try db.execute(sql: """
                    DELETE FROM instance WHERE series_ref IN (SELECT id FROM series WHERE study_ref = :study);
                    DELETE FROM series WHERE study_ref = :study;
                    DELETE FROM study_ins WHERE study_ref = :study;
                    DELETE FROM study WHERE id = :study;
                    """, arguments: ["study": id])
            }
            return "delete study"
        }
    }

    // MARK: The uploader's queries before the counters (v11), as oracles

    /// The study takeChunk chose before v13: urgent first, then the oldest due instance.
    func legacyNextStudy(_ db: Database, destination: String, now: Date) throws -> Int64? {
        try Int64.fetchOne(db, sql: """
            SELECT se.study_ref FROM delivery d
            JOIN instance i ON i.id = d.instance_ref
            JOIN series se ON se.id = i.series_ref
            JOIN study st ON st.id = se.study_ref
            JOIN study_delivery sd ON sd.study_ref = st.id AND sd.destination = d.destination
            WHERE d.destination = ? AND (d.state = 'queued' OR (d.state = 'retry' AND d.next_at <= ?)) AND sd.withheld IS NULL
            ORDER BY st.urgent DESC, d.instance_ref LIMIT 1
            """, arguments: [destination, now.timeIntervalSince1970])
    }

    func legacyTakeChunk(_ database: SpoolDatabase, destination: String, maxInstances: Int,
                         now: Date) throws -> [(instanceID: Int64, sha256: String)] {
        try database.writer.write { db in
            guard let study = try legacyNextStudy(db, destination: destination, now: now) else { return [] }
            let rows = try Row.fetchAll(db, sql: """
                SELECT i.id, i.sha256 FROM delivery d JOIN instance i ON i.id = d.instance_ref
                JOIN series se ON se.id = i.series_ref
                WHERE d.destination = ? AND se.study_ref = ? AND (d.state = 'queued' OR (d.state = 'retry' AND d.next_at <= ?))
                ORDER BY d.instance_ref LIMIT ?
                """, arguments: [destination, study, now.timeIntervalSince1970, maxInstances])
            for row in rows {
                try db.execute(sql: """
                    UPDATE delivery SET state = 'in_flight', attempts = attempts + 1 WHERE instance_ref = ? AND destination = ?
                    """, arguments: [row[0], destination])
            }
            return rows.map { ($0[0], $0[1]) }
        }
    }

    func legacyVerificationCandidates(_ database: SpoolDatabase, destination: String, stableBefore: Date, now: Date,
                                      limit: Int) throws -> [VerificationCandidate] {
        try database.writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT st.id, st.study_instance_uid, sd.generation FROM study_delivery sd
                JOIN study st ON st.id = sd.study_ref
                WHERE sd.destination = :destination AND sd.verified_at IS NULL AND sd.withheld IS NULL
                  AND st.last_received_at <= :stable
                  AND (sd.next_verify_at IS NULL OR sd.next_verify_at <= :now)
                  AND NOT EXISTS (
                    SELECT 1 FROM delivery d JOIN instance i ON i.id = d.instance_ref
                    JOIN series se ON se.id = i.series_ref
                    WHERE se.study_ref = st.id AND d.destination = sd.destination
                      AND i.revision_state = 'current' AND d.state != 'stored')
                ORDER BY st.urgent DESC, st.last_received_at, st.id LIMIT :limit
                """, arguments: ["destination": destination, "stable": stableBefore.timeIntervalSince1970,
                                 "now": now.timeIntervalSince1970, "limit": limit]).map { row in
                let instances = try Row.fetchAll(db, sql: """
                    SELECT i.sop_instance_uid, i.id FROM delivery d JOIN instance i ON i.id = d.instance_ref
                    JOIN series se ON se.id = i.series_ref
                    WHERE se.study_ref = ? AND d.destination = ? AND i.revision_state = 'current'
                    """, arguments: [row[0], destination])
                return VerificationCandidate(studyID: row[0], studyInstanceUID: row[1], generation: row[2],
                                             instances: Dictionary(uniqueKeysWithValues: instances.map { ($0[0], $0[1]) }))
            }
        }
    }

    /// The uploader's queries, which walk partial indexes and the counters, against the
    /// queries that summed over the rows: the same studies to verify (with their instances),
    /// and a study to send from exactly when there was one — urgent when one was, due and not
    /// withheld.
    func expectQueueQueriesMatch(_ database: SpoolDatabase, now: Date, after context: String) throws {
        for destination in ["archive", "community"] {
            for at in [now, now.addingTimeInterval(120)] {
                let fast = try database.verificationCandidates(destination: destination, stableBefore: at, now: at, limit: 10_000)
                let slow = try legacyVerificationCandidates(database, destination: destination, stableBefore: at, now: at,
                                                            limit: 10_000)
                #expect(Set(fast.map(\.studyID)) == Set(slow.map(\.studyID)), "\(context), \(destination)")
                #expect(Dictionary(uniqueKeysWithValues: fast.map { ($0.studyID, $0.instances) })
                        == Dictionary(uniqueKeysWithValues: slow.map { ($0.studyID, $0.instances) }), "\(context)")
                try database.writer.read { db in
                    let chosen = try database.nextDueStudy(destination: destination, now: at, db: db)
                    let legacy = try legacyNextStudy(db, destination: destination, now: at)
                    #expect((chosen == nil) == (legacy == nil), "\(context), \(destination): \(String(describing: chosen)) vs \(String(describing: legacy))")
                    guard let chosen, let legacy else { return }
                    let urgent = try Bool.fetchOne(db, sql: "SELECT urgent FROM study WHERE id = ?", arguments: [chosen]) ?? false
                    let legacyUrgent = try Bool.fetchOne(db, sql: "SELECT urgent FROM study WHERE id = ?", arguments: [legacy]) ?? false
                    #expect(urgent == legacyUrgent, "\(context), \(destination)")
                    let due = try Bool.fetchOne(db, sql: """
                        SELECT EXISTS (SELECT 1 FROM delivery d JOIN instance i ON i.id = d.instance_ref
                                       JOIN series se ON se.id = i.series_ref
                                       JOIN study_delivery sd ON sd.study_ref = se.study_ref AND sd.destination = d.destination
                                       WHERE se.study_ref = ? AND d.destination = ? AND sd.withheld IS NULL
                                         AND (d.state = 'queued' OR (d.state = 'retry' AND d.next_at <= ?)))
                        """, arguments: [chosen, destination, at.timeIntervalSince1970]) ?? false
                    #expect(due, "\(context), \(destination): study \(chosen) has nothing due")
                }
            }
        }
    }

    // MARK: The oracle

    func expectCountersMatch(_ database: SpoolDatabase, after context: String) throws {
        let (instances, byState, deliveries, studies) = try database.writer.read { db in
            let instances = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM instance WHERE revision_state = 'current'") ?? 0
            var byState: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT revision_state, COUNT(*), SUM(size) FROM instance GROUP BY revision_state
                """) {
                byState["\(row[0] as String) instances"] = row[1]
                byState["\(row[0] as String) bytes"] = row[2]
            }
            var deliveries: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT d.destination, d.state, COUNT(*), SUM(i.size)
                FROM delivery d JOIN instance i ON i.id = d.instance_ref
                WHERE i.revision_state = 'current' GROUP BY d.destination, d.state
                """) {
                deliveries["\(row[0] as String) \(row[1] as String) instances"] = row[2]
                deliveries["\(row[0] as String) \(row[1] as String) bytes"] = row[3]
            }
            let studies = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM study") ?? 0
            return (instances, byState, deliveries, studies)
        }
        #expect(try database.counts() == (studies, instances), "\(context)")
        var fastByState: [String: Int] = [:]
        for (state, totals) in try database.totalsByRevisionState() {
            fastByState["\(state) instances"] = totals.instances
            fastByState["\(state) bytes"] = totals.bytes
        }
        #expect(fastByState == byState, "\(context)")
        var fastDeliveries: [String: Int] = [:]
        for (destination, states) in try database.deliveryTotals() {
            for (state, totals) in states {
                fastDeliveries["\(destination) \(state.rawValue) instances"] = totals.instances
                fastDeliveries["\(destination) \(state.rawValue) bytes"] = totals.bytes
            }
        }
        #expect(fastDeliveries == deliveries, "\(context)")
        for stable in [t0, t0.addingTimeInterval(200), t0.addingTimeInterval(1000)] {
            var slow: [String: [StudyDeliveryState: Int]] = [:]
            for (_, perDestination) in try database.studyDeliveries(stableBefore: stable) {
                for (destination, delivery) in perDestination { slow[destination, default: [:]][delivery.state, default: 0] += 1 }
            }
            #expect(try database.studyStateTotals(stableBefore: stable) == slow, "\(context), stable before \(stable)")
        }
    }
}
