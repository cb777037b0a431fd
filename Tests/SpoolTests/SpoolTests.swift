import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Testing
@testable import Spool

/// Reads an instance's bytes where the index says they are.
func storedBytes(_ spool: Spool, _ location: StoredLocation) throws -> [UInt8] {
    let handle = try #require(FileHandle(forReadingAtPath: spool.files.absolutePath(location.relativePath)))
    defer { try? handle.close() }
    try handle.seek(toOffset: UInt64(location.offset))
    return [UInt8](try handle.read(upToCount: location.length) ?? Data())
}

/// How a test reception hands its bytes to the journal.
enum ReceptionPath { case inline, head, streamed }

/// Journals `header + dataSet` as instance `sop`, as a reception would: held and appended
/// whole, written at the journal's head as it arrives, or streamed into a segment of its own.
func receive(_ spool: Spool, sop: String, header: String = "HEADER", dataSet: String, callingAE: String = "CT1",
             study: String = "1.2.3", streamed: Bool = false, path: ReceptionPath = .inline) throws -> SpooledInstance {
    let bytes = Array((header + dataSet).utf8)
    let fields = [JournalFields.sopInstanceUID: sop, JournalFields.dataSetOffset: String(header.utf8.count)]
    let record = JournalRecordHeader(type: .dicomInstance, payloadLength: bytes.count,
                                     checksum: .crc32c(CRC32C.checksum(bytes)), fields: fields)
    let payload: Spool.Payload
    switch streamed ? .streamed : path {
    case .streamed:
        let writer = try spool.journal.beginStreamedRecord()
        try writer.write([ByteBuffer(string: header), ByteBuffer(string: dataSet)])
        payload = .streamed(writer)
    case .head:
        let writer = try #require(spool.journal.beginHeadRecord(headerLength: try record.encoded().count))
        try writer.write([ByteBuffer(string: header)])
        try writer.write([ByteBuffer(string: dataSet)])
        payload = .head(writer)
    case .inline:
        payload = .inline([ByteBuffer(string: header), ByteBuffer(string: dataSet)])
    }
    return try spool.store(payload, header: record) { location in
        NewInstance(sopInstanceUID: sop, sopClassUID: "1.2.840.10008.5.1.4.1.1.2",
                    transferSyntaxUID: "1.2.840.10008.1.2",
                    attributes: IndexedAttributes(studyInstanceUID: study, seriesInstanceUID: study + ".4", patientID: "P1",
                                                  issuerOfPatientID: "CHR-ORLEANS", patientName: "Hélène^Dupré"),
                    location: location, sha256: "", callingAETitle: callingAE, receivedAt: Date())
    }
}

@Suite struct SpoolTests {
    let root = NSTemporaryDirectory() + "spool-tests-" + UUID().uuidString

    @Test func storedInstanceIsIndexedWithItsRangeAndHash() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        let result = try receive(spool, sop: "1.2.3.4.5", dataSet: "DATA")
        #expect(result.outcome == .stored)
        let listing = try #require(try spool.database.listInstances().first)
        #expect(listing.sopInstanceUID == "1.2.3.4.5")
        #expect(listing.patientName == "Hélène^Dupré")
        #expect(listing.location == result.location)
        #expect(listing.location.relativePath.hasPrefix("journal/"))
        #expect(String(decoding: try storedBytes(spool, listing.location), as: UTF8.self) == "HEADERDATA")
        #expect(listing.size == 10)
        // The SHA-256 is computed after the reception.
        #expect(listing.sha256 == "")
        #expect(try spool.database.undigestedCount() == 1)
        #expect(try spool.digestPending() == 1)
        // SHA-256("HEADERDATA")
        #expect(try spool.database.listInstances().first?.sha256
            == "b6ba09548d04a382f71fa08501bfce1387fae0fa2dd30eb657f4b4ac5b5f9163")
        #expect(try spool.database.undigestedCount() == 0)
        #expect(try spool.digestPending() == 0)
    }

    /// The acknowledgement's path: `store` returns once the record is durable; its row comes
    /// from the index queue, which reports the outcome (here a duplicate) afterwards.
    @Test func storeReturnsWhenDurableAndTheIndexQueueReportsTheOutcome() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        let first = try receive(spool, sop: "1.1", dataSet: "SAME")
        let outcomes = NIOLockedValueBox<[RecordOutcome]>([])
        let bytes = Array("HEADERSAME".utf8)
        let header = JournalRecordHeader(type: .dicomInstance, payloadLength: bytes.count,
                                         checksum: .crc32c(CRC32C.checksum(bytes)),
                                         fields: [JournalFields.sopInstanceUID: "1.1", JournalFields.dataSetOffset: "6"])
        let location = try spool.store(.inline([ByteBuffer(bytes: bytes)]), header: header, make: { location in
            NewInstance(sopInstanceUID: "1.1", sopClassUID: "1.2.840.10008.5.1.4.1.1.2", transferSyntaxUID: "1.2.840.10008.1.2",
                        attributes: IndexedAttributes(studyInstanceUID: "1.2.3", seriesInstanceUID: "1.2.3.4",
                                                      patientID: "P1", issuerOfPatientID: "CHR"),
                        location: location, sha256: "", callingAETitle: "CT1", receivedAt: Date())
        }, indexed: { result in outcomes.withLockedValue { $0.append(try! result.get()) } })
        #expect(location != first.location)
        spool.waitForIndex()
        #expect(outcomes.withLockedValue { $0 } == [.duplicate(existing: first.location)])
        #expect(try spool.database.listInstances().count == 1)
        #expect(try spool.unindexedJournalRecords().records.isEmpty)
    }

    /// Receptions written at the journal's head as their bytes arrive: one holder at a time,
    /// records back to back; an abandoned one leaves padding that replay skips.
    @Test func headRecordsFollowEachOtherAndAnAbandonedOneIsSkipped() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 8 << 20)
        let first = try receive(spool, sop: "1.1", dataSet: "AAAA", path: .head)
        // While one reception holds the head, another cannot.
        let holder = try #require(spool.journal.beginHeadRecord(headerLength: 200))
        #expect(spool.journal.beginHeadRecord(headerLength: 200) == nil)
        try holder.write([ByteBuffer(string: "PARTIAL DATA SET")])
        holder.discard()
        let second = try receive(spool, sop: "1.2", dataSet: "BBBB", path: .head)
        #expect(first.location.relativePath == second.location.relativePath)
        #expect(second.location.offset > first.location.offset + first.location.length + 200)
        #expect(String(decoding: try storedBytes(spool, second.location), as: UTF8.self) == "HEADERBBBB")
        // Replay finds both records and the padding between them, nothing torn.
        try spool.database.writer.write { db in try db.execute(sql: "DELETE FROM journal_checkpoint") }
        let pending = try spool.unindexedJournalRecords()
        #expect(pending.records.map(\.header.type) == [.dicomInstance, .padding, .dicomInstance])
        #expect(pending.records.map { $0.header.fields[JournalFields.sopInstanceUID] } == ["1.1", nil, "1.2"])
        #expect(pending.torn.isEmpty)
    }

    /// A head record whose header was never written (a crash while it arrived) is the end of
    /// the written part: nothing after it, nothing torn.
    @Test func aHeadRecordWithoutItsHeaderEndsTheSegment() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 8 << 20)
        _ = try receive(spool, sop: "1.1", dataSet: "AAAA", path: .head)
        let holder = try #require(spool.journal.beginHeadRecord(headerLength: 200))
        try holder.write([ByteBuffer(string: "ARRIVING")])
        try spool.database.writer.write { db in try db.execute(sql: "DELETE FROM journal_checkpoint") }
        let pending = try spool.unindexedJournalRecords()
        #expect(pending.records.count == 1)
        #expect(pending.torn.isEmpty)
        holder.discard()
    }

    @Test func recordsFollowEachOtherInOneSegmentAndAStreamedOneHasItsOwn() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        let a = try receive(spool, sop: "1.1", dataSet: "AAAA")
        let b = try receive(spool, sop: "1.2", dataSet: "BBBB")
        let big = try receive(spool, sop: "1.3", dataSet: "LARGE", streamed: true)
        #expect(a.location.relativePath == b.location.relativePath)
        #expect(b.location.offset > a.location.offset + a.location.length)
        #expect(big.location.relativePath != a.location.relativePath)
        #expect(String(decoding: try storedBytes(spool, big.location), as: UTF8.self) == "HEADERLARGE")
    }

    @Test func sameBytesTwiceAreADuplicateOfTheFirstCopy() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        let first = try receive(spool, sop: "1.2.3.4.5", dataSet: "DATA")
        // Sent again by another AE: another header, the same data set.
        let again = try receive(spool, sop: "1.2.3.4.5", header: "FROM-PACS-2", dataSet: "DATA", callingAE: "PACS")
        #expect(again.outcome == .duplicate(existing: first.location))
        #expect(again.location == first.location)
        #expect(try spool.database.listInstances(includeSuperseded: true).count == 1)
    }

    @Test func differentBytesSupersedeThePreviousRevision() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        let first = try receive(spool, sop: "1.2.3.4.5", dataSet: "DATA")
        let second = try receive(spool, sop: "1.2.3.4.5", dataSet: "OTHER")
        #expect(second.outcome == .revised(previous: first.location, revision: 2))
        #expect(try spool.database.listInstances().map(\.location) == [second.location])
        let all = try spool.database.listInstances(includeSuperseded: true)
        #expect(all.count == 2)
        #expect(all.first { $0.isSuperseded }?.location == first.location)
    }

    @Test func recoveryRemovesTemporaryFilesAndUnreferencedSegments() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        _ = try receive(spool, sop: "1.2.3.4.5", dataSet: "KEPT")
        FileManager.default.createFile(atPath: spool.files.temporaryDirectory + "/x.part", contents: Data("PART".utf8))
        // A streamed reception cut by a crash: its segment has no record header.
        let cut = try spool.journal.beginStreamedRecord()
        try cut.write([ByteBuffer(string: "HALF")])
        try spool.journal.prepareSpare()

        let reopened = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        #expect(try reopened.recover().temporary == 1)
        #expect(try reopened.unindexedJournalRecords().records.isEmpty)
        #expect(try reopened.reclaimSegments().segments == 2)  // the cut one and the unused spare
        #expect(reopened.journal.segmentPaths() == (try reopened.database.listInstances().map(\.location.relativePath)))
    }

    @Test func watermarkRefusesWhenFreeSpaceIsBelowIt() throws {
        let full = try Spool(root: root, minimumFree: .percent(100), segmentSize: 1 << 20)
        #expect(!full.hasRoom())
        let roomy = try Spool(root: root + "-2", minimumFree: .bytes(1), segmentSize: 1 << 20)
        #expect(roomy.hasRoom())
    }

    @Test func readOnlyDatabaseSeesCommittedRows() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        _ = try receive(spool, sop: "1.2.3.4.5", dataSet: "DATA")
        let reader = try SpoolDatabase(readOnlyPath: "\(root)/\(Spool.databaseFileName)")
        #expect(try reader.listInstances().map(\.sopInstanceUID) == ["1.2.3.4.5"])
        #expect(throws: SpoolError.self) { try SpoolDatabase(readOnlyPath: "\(root)/missing.sqlite") }
    }

    @Test func databaseRejectsTwoCurrentRevisionsOfOneInstance() throws {
        let database = try SpoolDatabase()
        let instance = NewInstance(sopInstanceUID: "1.2", sopClassUID: "1.2.840.10008.5.1.4.1.1.2",
                                   transferSyntaxUID: "1.2.840.10008.1.2",
                                   attributes: IndexedAttributes(studyInstanceUID: "1.2.3", seriesInstanceUID: "1.2.3.4",
                                                                 patientID: "P1", issuerOfPatientID: "CHR"),
                                   location: StoredLocation(relativePath: "store/aa/a.dcm", offset: 0, length: 1,
                                                            dataSetOffset: 0),
                                   sha256: "a", callingAETitle: "CT1", receivedAt: Date())
        #expect(try database.record(instance) { _ in false } == .stored)
        // Bypass the revision logic: SQLite itself must refuse a second current row.
        #expect(throws: (any Error).self) {
            try database.writer.write { db in
                try db.execute(sql: """
                    INSERT INTO instance (sop_instance_uid, sop_class_uid, transfer_syntax_uid, series_ref,
                        file_path, size, sha256, dataset_offset, calling_ae_title, received_at)
                    SELECT sop_instance_uid, sop_class_uid, transfer_syntax_uid, series_ref, 'x', 1, 'b', 0,
                        'CT1', 0 FROM instance
                    """)
            }
        }
    }
}

@Suite struct SpoolDurabilityTests {
    let root = NSTemporaryDirectory() + "spool-durability-" + UUID().uuidString

    /// Everything but the journaled index rows syncs at each commit.
    @Test func theWriterSyncsEveryCommitOutsideJournaledGroups() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        _ = try receive(spool, sop: "1.2.3", dataSet: "DATA")
        #expect(try spool.database.synchronousMode() == 2)  // FULL again after the group
    }

    /// The index lost (a power cut undid its rows): replay finds every record past the checkpoint.
    @Test func recordsPastTheCheckpointAreFoundAgain() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        let first = try receive(spool, sop: "1.1", dataSet: "ONE")
        _ = try receive(spool, sop: "1.2", dataSet: "TWO")
        #expect(try spool.unindexedJournalRecords().records.isEmpty)
        try spool.database.writer.write { db in
            try db.execute(sql: "UPDATE journal_checkpoint SET indexed_through = ?", arguments: [first.location.offset + first.location.length])
        }
        let pending = try spool.unindexedJournalRecords()
        #expect(pending.records.map { $0.header.fields[JournalFields.sopInstanceUID] } == ["1.2"])
        #expect(pending.torn.isEmpty)
    }

    /// A record whose payload was not all written (power cut before the sync) ends the scan.
    @Test func aTornRecordEndsTheScanAndIsReported() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        let record = try receive(spool, sop: "1.1", dataSet: "ONE")
        try spool.database.writer.write { db in try db.execute(sql: "DELETE FROM journal_checkpoint") }
        let handle = try #require(FileHandle(forWritingAtPath: spool.files.absolutePath(record.location.relativePath)))
        try handle.seek(toOffset: UInt64(record.location.offset + 7))
        try handle.write(contentsOf: Data("X".utf8))
        try handle.close()
        let pending = try spool.unindexedJournalRecords()
        #expect(pending.records.isEmpty)
        #expect(pending.torn.count == 1)
        #expect(pending.torn[0].contains("checksum"))
    }

    @Test func aPurgedSegmentIsDeletedAndSurvivorsOfAMostlyDeadOneMoveForward() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        let filler = String(repeating: "x", count: 100_000)
        var locations: [StoredLocation] = []
        for n in 0..<12 {
            locations.append(try receive(spool, sop: "1.\(n)", dataSet: "\(n)" + filler, study: n == 0 ? "9.9" : "1.2.3").location)
        }
        let firstSegment = locations[0].relativePath
        #expect(locations.filter { $0.relativePath == firstSegment }.count >= 9)
        // Everything but instance 1.0 goes away (as a purge would).
        try spool.database.writer.write { db in
            try db.execute(sql: "DELETE FROM instance WHERE sop_instance_uid != '1.0'")
        }
        // Rotate the active segment away so the first one is sealed.
        _ = try receive(spool, sop: "1.99", dataSet: String(repeating: "y", count: 1_000_000))
        #expect(try spool.compactSegments() == 1)
        let survivor = try #require(try spool.database.listInstances().first { $0.sopInstanceUID == "1.0" })
        #expect(survivor.location.relativePath != firstSegment)
        #expect(String(decoding: try storedBytes(spool, survivor.location), as: UTF8.self) == "HEADER0" + filler)
        #expect(!FileManager.default.fileExists(atPath: spool.files.absolutePath(firstSegment)))
    }
}

@Suite struct GroupCommitTests {
    /// Receptions finishing together are committed in groups; every one gets its own outcome.
    @Test func concurrentReceptionsAreAllDurableAndIndexed() throws {
        let root = NSTemporaryDirectory() + "spool-group-" + UUID().uuidString
        let spool = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        let threads = 8, perThread = 25
        let outcomes = LockedOutcomes()
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for index in 0..<perThread {
                // Thread 0 and 1 also race on the same SOP instances with identical bytes.
                let sop = thread < 2 ? "1.2.9.\(index)" : "1.2.\(thread).\(index)"
                do {
                    let result = try receive(spool, sop: sop, header: "H\(thread)", dataSet: "DATA \(sop)",
                                             study: "1.2.\(thread)", streamed: index % 10 == 0)
                    outcomes.append(result.outcome)
                } catch {
                    outcomes.append(nil)
                }
            }
        }
        let all = outcomes.values
        #expect(all.count == threads * perThread)
        #expect(!all.contains(nil))
        let stored = all.filter { $0 == .stored }.count
        let duplicates = all.filter { if case .duplicate = $0 { true } else { false } }.count
        #expect(stored == (threads - 1) * perThread)
        #expect(duplicates == perThread)
        let listed = try spool.database.listInstances(includeSuperseded: true)
        #expect(listed.count == (threads - 1) * perThread)
        while try spool.digestPending() > 0 {}
        for listing in try spool.database.listInstances(includeSuperseded: true) {
            let bytes = try storedBytes(spool, listing.location)
            #expect(SHA256Hex.of(bytes) == listing.sha256)
        }
        // Nothing is left to replay: every record's row is committed with its checkpoint.
        #expect(try spool.unindexedJournalRecords().records.isEmpty)
    }
}

/// Collects results from concurrent threads.
final class LockedOutcomes: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [RecordOutcome?] = []
    func append(_ outcome: RecordOutcome?) {
        lock.lock()
        storage.append(outcome)
        lock.unlock()
    }
    var values: [RecordOutcome?] {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }
}

/// SQLite out of room (here its page limit; on a full disk, ENOSPC under it): instances
/// already durable and acknowledged are kept and indexed once room returns, without a
/// restart; meanwhile the spool takes nothing more.
@Suite struct IndexOutOfRoomTests {
    let root = NSTemporaryDirectory() + "spool-tests-" + UUID().uuidString

    @Test func recordsAcknowledgedWhileTheIndexIsFullAreIndexedWhenRoomReturns() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        _ = try receive(spool, sop: "1.0", dataSet: "FIRST")
        let pages = try spool.database.writer.read { db in try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0 }
        let limit = try spool.database.writer.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA max_page_count = \(pages)")
            return try Int.fetchOne(db, sql: "PRAGMA max_page_count") ?? 0
        }
        #expect(limit == pages)
        let outcomes = NIOLockedValueBox<[String: Result<RecordOutcome, any Error>]>([:])
        for n in 1...3 {
            let sop = "1.\(n)"
            let bytes = Array("HEADER\(String(repeating: "D", count: 20_000))".utf8)
            let header = JournalRecordHeader(type: .dicomInstance, payloadLength: bytes.count,
                                             checksum: .crc32c(CRC32C.checksum(bytes)),
                                             fields: [JournalFields.sopInstanceUID: sop, JournalFields.dataSetOffset: "6"])
            _ = try spool.store(.inline([ByteBuffer(bytes: bytes)]), header: header, make: { location in
                NewInstance(sopInstanceUID: sop, sopClassUID: "1.2.840.10008.5.1.4.1.1.2",
                            transferSyntaxUID: "1.2.840.10008.1.2",
                            attributes: IndexedAttributes(studyInstanceUID: "1.2.3.\(n)", seriesInstanceUID: "1.2.3.\(n).4",
                                                          patientID: "P\(n)", issuerOfPatientID: "CHR",
                                                          studyDescription: String(repeating: "X", count: 3000)),
                            location: location, sha256: "", callingAETitle: "CT1", receivedAt: Date())
            }, indexed: { result in outcomes.withLockedValue { $0[sop] = result } })
        }
        // The index cannot grow: nothing reported yet, nothing more taken.
        let deadline = Date().addingTimeInterval(10)
        while !spool.indexWaitsForRoom && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(spool.indexWaitsForRoom)
        #expect(!spool.hasRoom())
        #expect(outcomes.withLockedValue { $0.isEmpty })
        #expect(try spool.database.listInstances().count == 1)

        try spool.database.writer.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA max_page_count = 1073741823") }
        while outcomes.withLockedValue({ $0.count }) < 3 && Date() < deadline.addingTimeInterval(10) {
            Thread.sleep(forTimeInterval: 0.05)
        }
        let reported = outcomes.withLockedValue { $0 }
        #expect(reported.count == 3)
        #expect(reported.values.allSatisfy { (try? $0.get()) == .stored })
        #expect(!spool.indexWaitsForRoom)
        #expect(spool.hasRoom())
        #expect(Set(try spool.database.listInstances().map(\.sopInstanceUID)) == ["1.0", "1.1", "1.2", "1.3"])
        #expect(try spool.unindexedJournalRecords().records.isEmpty)
    }
}
