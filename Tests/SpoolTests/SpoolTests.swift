import Foundation
import NIOCore
import Testing
@testable import Spool

@Suite struct SpoolTests {
    let root: String

    init() throws {
        root = NSTemporaryDirectory() + "spool-tests-" + UUID().uuidString
    }

    func attributes(study: String = "1.2.3", series: String = "1.2.3.4") -> IndexedAttributes {
        IndexedAttributes(studyInstanceUID: study, seriesInstanceUID: series, patientID: "P1",
                          issuerOfPatientID: "CHR-ORLEANS", patientName: "Hélène^Dupré")
    }

    /// Receives `dataSet` as an instance `sop` through a temporary file, as an association would.
    func receive(_ spool: Spool, sop: String, dataSet: String) throws -> SpooledInstance {
        let file = try spool.files.makeTemporaryFile()
        try file.writeHeader(ByteBuffer(string: "HEADER"))
        try file.writeDataSet(ByteBuffer(string: dataSet))
        let finished = try file.finish()
        return try spool.store(finished) { path in
            NewInstance(sopInstanceUID: sop, sopClassUID: "1.2.840.10008.5.1.4.1.1.2",
                        transferSyntaxUID: "1.2.840.10008.1.2", attributes: attributes(), filePath: path,
                        size: finished.size, sha256: finished.sha256, dataSetOffset: finished.dataSetOffset,
                        callingAETitle: "CT1", receivedAt: Date())
        }
    }

    @Test func storedInstanceIsIndexedWithItsFileAndHash() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0))
        let result = try receive(spool, sop: "1.2.3.4.5", dataSet: "DATA")
        #expect(result.outcome == .stored)
        let listing = try #require(try spool.database.listInstances().first)
        #expect(listing.sopInstanceUID == "1.2.3.4.5")
        #expect(listing.patientName == "Hélène^Dupré")
        #expect(listing.issuerOfPatientID == "CHR-ORLEANS")
        let contents = try #require(FileManager.default.contents(atPath: spool.files.absolutePath(listing.filePath)))
        #expect(String(decoding: contents, as: UTF8.self) == "HEADERDATA")
        #expect(listing.size == 10)
        // SHA-256("HEADERDATA")
        #expect(listing.sha256 == "b6ba09548d04a382f71fa08501bfce1387fae0fa2dd30eb657f4b4ac5b5f9163")
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool.files.temporaryDirectory).isEmpty)
    }

    @Test func sameBytesTwiceKeepOneCopy() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0))
        _ = try receive(spool, sop: "1.2.3.4.5", dataSet: "DATA")
        let again = try receive(spool, sop: "1.2.3.4.5", dataSet: "DATA")
        guard case .duplicate = again.outcome else {
            Issue.record("expected a duplicate, got \(again.outcome)")
            return
        }
        #expect(try spool.database.listInstances(includeSuperseded: true).count == 1)
        #expect(spool.files.storedFiles().count == 1)
    }

    @Test func differentBytesSupersedeThePreviousRevision() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0))
        let first = try receive(spool, sop: "1.2.3.4.5", dataSet: "DATA")
        let second = try receive(spool, sop: "1.2.3.4.5", dataSet: "OTHER")
        #expect(second.outcome == .revised(previousPath: first.relativePath, revision: 2))
        let current = try spool.database.listInstances()
        #expect(current.count == 1)
        #expect(current.first?.filePath == second.relativePath)
        let all = try spool.database.listInstances(includeSuperseded: true)
        #expect(all.count == 2)
        #expect(all.first { $0.isSuperseded }?.filePath == first.relativePath)
        #expect(spool.files.storedFiles().count == 2)
    }

    @Test func recoveryRemovesTemporaryAndUnindexedFiles() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0))
        _ = try receive(spool, sop: "1.2.3.4.5", dataSet: "KEPT")
        // A crash mid-reception leaves a temporary file…
        let partial = try spool.files.makeTemporaryFile()
        try partial.writeDataSet(ByteBuffer(string: "PART"))
        // …and a crash between rename and commit leaves an unindexed file in the store.
        let orphan = try spool.files.makeTemporaryFile()
        try orphan.writeDataSet(ByteBuffer(string: "ORPHAN"))
        _ = try spool.files.moveIntoStore(try orphan.finish())
        #expect(spool.files.storedFiles().count == 2)

        let reopened = try Spool(root: root, minimumFree: .bytes(0))
        let recovered = try reopened.recover()
        #expect(recovered.temporary == 1)
        #expect(recovered.orphans == 1)
        #expect(reopened.files.storedFiles().count == 1)
        #expect(try reopened.database.listInstances().count == 1)
    }

    @Test func watermarkRefusesWhenFreeSpaceIsBelowIt() throws {
        let full = try Spool(root: root, minimumFree: .percent(100))
        #expect(!full.hasRoom())
        let roomy = try Spool(root: root + "-2", minimumFree: .bytes(1))
        #expect(roomy.hasRoom())
    }

    @Test func readOnlyDatabaseSeesCommittedRows() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0))
        _ = try receive(spool, sop: "1.2.3.4.5", dataSet: "DATA")
        let reader = try SpoolDatabase(readOnlyPath: "\(root)/\(Spool.databaseFileName)")
        #expect(try reader.listInstances().map(\.sopInstanceUID) == ["1.2.3.4.5"])
        #expect(throws: SpoolError.self) { try SpoolDatabase(readOnlyPath: "\(root)/missing.sqlite") }
    }

    @Test func databaseRejectsTwoCurrentRevisionsOfOneInstance() throws {
        let database = try SpoolDatabase()
        let instance = NewInstance(sopInstanceUID: "1.2", sopClassUID: "1.2.840.10008.5.1.4.1.1.2",
                                   transferSyntaxUID: "1.2.840.10008.1.2", attributes: attributes(),
                                   filePath: "store/aa/a.dcm", size: 1, sha256: "a", dataSetOffset: 0,
                                   callingAETitle: "CT1", receivedAt: Date())
        #expect(try database.record(instance) { _, _ in false } == .stored)
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
    @Test func theWriterSyncsEveryCommit() throws {
        let root = NSTemporaryDirectory() + "spool-sync-" + UUID().uuidString
        let spool = try Spool(root: root, minimumFree: .bytes(0))
        #expect(try spool.database.synchronousMode() == 2)  // FULL
    }

    @Test func sameDataSetUnderAnotherHeaderIsADuplicate() throws {
        let root = NSTemporaryDirectory() + "spool-dup-" + UUID().uuidString
        let spool = try Spool(root: root, minimumFree: .bytes(0))
        func receive(header: String, dataSet: String) throws -> RecordOutcome {
            let file = try spool.files.makeTemporaryFile()
            try file.writeHeader(ByteBuffer(string: header))
            try file.writeDataSet(ByteBuffer(string: dataSet))
            let finished = try file.finish()
            return try spool.store(finished) { path in
                NewInstance(sopInstanceUID: "1.2.3", sopClassUID: "1.2.840.10008.5.1.4.1.1.2",
                            transferSyntaxUID: "1.2.840.10008.1.2",
                            attributes: IndexedAttributes(studyInstanceUID: "1.2", seriesInstanceUID: "1.2.1",
                                                          patientID: "P", issuerOfPatientID: ""),
                            filePath: path, size: finished.size, sha256: finished.sha256,
                            dataSetOffset: finished.dataSetOffset, callingAETitle: header, receivedAt: Date())
            }.outcome
        }
        #expect(try receive(header: "FROM-CT1", dataSet: "SAME") == .stored)
        // Sent again by another AE: another header, the same data set.
        guard case .duplicate = try receive(header: "FROM-PACS-2", dataSet: "SAME") else {
            Issue.record("expected a duplicate")
            return
        }
        #expect(spool.files.storedFiles().count == 1)
        guard case .revised = try receive(header: "FROM-CT1", dataSet: "DIFF") else {
            Issue.record("expected a revision")
            return
        }
    }
}

@Suite struct GroupCommitTests {
    /// Receptions finishing together are committed in groups; every one gets its own outcome.
    @Test func concurrentReceptionsAreAllDurableAndIndexed() throws {
        let root = NSTemporaryDirectory() + "spool-group-" + UUID().uuidString
        let spool = try Spool(root: root, minimumFree: .bytes(0))
        let threads = 8, perThread = 25
        let outcomes = LockedOutcomes()
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for index in 0..<perThread {
                // Thread 0 and 1 also race on the same SOP instances with identical bytes.
                let sop = thread < 2 ? "1.2.9.\(index)" : "1.2.\(thread).\(index)"
                do {
                    let file = try spool.files.makeTemporaryFile()
                    try file.writeHeader(ByteBuffer(string: "H\(thread)"))
                    try file.writeDataSet(ByteBuffer(string: "DATA \(sop)"))
                    let finished = try file.finish()
                    let result = try spool.store(finished) { path in
                        NewInstance(sopInstanceUID: sop, sopClassUID: "1.2.840.10008.5.1.4.1.1.2",
                                    transferSyntaxUID: "1.2.840.10008.1.2",
                                    attributes: IndexedAttributes(studyInstanceUID: "1.2.\(thread)",
                                                                  seriesInstanceUID: "1.2.\(thread).0",
                                                                  patientID: "P\(thread)", issuerOfPatientID: ""),
                                    filePath: path, size: finished.size, sha256: finished.sha256,
                                    dataSetOffset: finished.dataSetOffset, callingAETitle: "T\(thread)", receivedAt: Date())
                    }
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
        // Every listed file exists with its hash; nothing unreferenced is left in the store.
        #expect(Set(listed.map(\.filePath)) == Set(spool.files.storedFiles()))
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
