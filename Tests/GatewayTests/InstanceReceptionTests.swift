import DICOMCore
import DICOMNetwork
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
@testable import Spool
import Testing
@testable import Gateway

@Suite struct InstanceReceptionTests {
    let spool: Spool
    let ctImageStorage = "1.2.840.10008.5.1.4.1.1.2"
    let sopInstanceUID = "1.2.826.0.1.3680043.10.1.1"

    init() throws {
        spool = try Spool(root: NSTemporaryDirectory() + "reception-" + UUID().uuidString, minimumFree: .bytes(0),
                          segmentSize: 1 << 20)
    }

    func dataSet(sopInstanceUID: String? = nil, studyUID: String? = "1.2.826.0.1.3680043.10.1",
                 name: [UInt8] = Array("Dupr\u{e9}^H\u{e9}l\u{e8}ne".unicodeScalars.map { UInt8($0.value) }),
                 pixels: Int = 4096) -> ByteBuffer {
        var writer = DataSetWriter(transferSyntax: .explicitVRLittleEndian)
        writer.write(.specificCharacterSet, .CS, string: "ISO_IR 100")
        writer.write(.sopClassUID, .UI, string: ctImageStorage)
        writer.write(.sopInstanceUID, .UI, string: sopInstanceUID ?? self.sopInstanceUID)
        writer.write(.modality, .CS, string: "CT")
        writer.write(.patientName, .PN, name)
        writer.write(.patientID, .LO, string: "IPP42")
        writer.write(.issuerOfPatientID, .LO, string: "CHR-ORLEANS")
        if let studyUID { writer.write(.studyInstanceUID, .UI, string: studyUID) }
        writer.write(.seriesInstanceUID, .UI, string: "1.2.826.0.1.3680043.10.1.2")
        writer.write(.pixelData, .OW, [UInt8](repeating: 7, count: pixels))
        return writer.buffer
    }

    func receive(_ bytes: ByteBuffer, chunk: Int = 1000, transferSyntax: String = "1.2.840.10008.1.2.1",
                 into spool: Spool? = nil, sop: String? = nil, sizeHint: ReceptionSizeHint = ReceptionSizeHint()) -> StoreOutcome {
        let request = CStoreRQ(messageID: 1, affectedSOPClassUID: ctImageStorage,
                               affectedSOPInstanceUID: sop ?? sopInstanceUID)
        let reception = InstanceReception(spool: spool ?? self.spool, request: request, transferSyntaxUID: transferSyntax,
                                          callingAETitle: "CT1", logger: Logger(label: "test"), sizeHint: sizeHint)
        var bytes = bytes
        // Batches of slices, as the association handler hands them over.
        var batch: [ByteBuffer] = []
        while let slice = bytes.readSlice(length: min(chunk, bytes.readableBytes)), slice.readableBytes > 0 {
            batch.append(slice)
            if batch.count == 7 {
                reception.write(batch)
                batch = []
            }
        }
        if !batch.isEmpty { reception.write(batch) }
        return reception.finish()
    }

    /// The instance's Part-10 bytes where the index says they are.
    func stored(_ listing: InstanceListing) throws -> [UInt8] {
        let handle = try #require(FileHandle(forReadingAtPath: spool.files.absolutePath(listing.location.relativePath)))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(listing.location.offset))
        return [UInt8](try handle.read(upToCount: listing.location.length) ?? Data())
    }

    var segments: [String] { spool.journal.segmentPaths() }

    /// Records replay would index: a refused reception's bytes at the journal's head are
    /// padding, never one of these.
    var replayable: [JournalRecord] {
        get throws { try spool.unindexedJournalRecords().records.filter { $0.header.type != .padding } }
    }

    @Test func storesAValidInstanceAsPart10BytesWithTheDataSetUnchanged() throws {
        let bytes = dataSet()
        #expect(receive(bytes).status == .success)
        let listing = try #require(try spool.database.listInstances().first)
        #expect(listing.patientName == "Dupré^Hélène")
        #expect(listing.patientID == "IPP42")
        #expect(listing.issuerOfPatientID == "CHR-ORLEANS")
        #expect(listing.callingAETitle == "CT1")
        let file = try stored(listing)
        var source = BufferByteSource(ByteBuffer(bytes: file))
        let meta = try Part10.readFileMetaInformation(from: &source)
        #expect(meta.sourceApplicationEntityTitle == "CT1")
        #expect(meta.transferSyntaxUID == "1.2.840.10008.1.2.1")
        #expect(Array(file[meta.dataSetOffset...]) == Array(bytes.readableBytesView))
    }

    @Test func aTruncatedDataSetIsRefusedAndLeavesNothing() throws {
        var bytes = dataSet()
        bytes.moveWriterIndex(to: bytes.writerIndex - 100)
        #expect(receive(bytes).status == .cannotUnderstand)
        #expect(try spool.database.listInstances().isEmpty)
        // A refused instance is never a record: what reached the journal's head is padding.
        #expect(try replayable.isEmpty)
        #expect(try spool.unindexedJournalRecords().records.map(\.header.type) == [.padding])
    }

    /// Above `Journal.inlineLimit` the data set streams into a segment of its own.
    @Test func aLargeInstanceIsStreamedIntoItsOwnSegmentUnchanged() throws {
        let bytes = dataSet(pixels: Journal.inlineLimit + 100_000)
        #expect(receive(bytes, chunk: 64 * 1024).status == .success)
        let listing = try #require(try spool.database.listInstances().first)
        let file = try stored(listing)
        #expect(Array(file[listing.location.dataSetOffset...]) == Array(bytes.readableBytesView))
        // Its own segment, beside the head segment where its first 4 MiB went (now padding).
        #expect(segments.count == 2 && segments.contains(listing.location.relativePath))
        #expect(listing.location.offset == 2 * 4096)
        #expect(try replayable.isEmpty)
    }

    /// After a large instance, the association's next one streams into a segment of its own
    /// from its first byte: nothing of it goes to the journal's head.
    @Test func aLargeInstanceAfterALargeOneStreamsFromItsFirstByte() throws {
        let hint = ReceptionSizeHint()
        let other = "1.2.826.0.1.3680043.10.1.78"
        #expect(receive(dataSet(pixels: Journal.inlineLimit + 100_000), chunk: 64 * 1024, sizeHint: hint).status == .success)
        #expect(hint.previous > Journal.inlineLimit)
        let second = dataSet(sopInstanceUID: other, pixels: Journal.inlineLimit + 100_000)
        #expect(receive(second, chunk: 64 * 1024, sop: other, sizeHint: hint).status == .success)
        #expect(try spool.database.listInstances().count == 2)
        try spool.database.writer.write { db in try db.execute(sql: "DELETE FROM journal_checkpoint") }
        // One padding record: the first instance's start at the head; none for the second.
        #expect(try spool.unindexedJournalRecords().records.filter { $0.header.type == .padding }.count == 1)
        let listing = try #require(try spool.database.listInstances().first { $0.sopInstanceUID == other })
        #expect(Array(try stored(listing)[listing.location.dataSetOffset...]) == Array(second.readableBytesView))
    }

    @Test func aLargeTruncatedInstanceIsRefusedAndItsSegmentRemoved() throws {
        var bytes = dataSet(pixels: Journal.inlineLimit + 100_000)
        bytes.moveWriterIndex(to: bytes.writerIndex - 100)
        #expect(receive(bytes, chunk: 64 * 1024).status == .cannotUnderstand)
        #expect(try spool.database.listInstances().isEmpty)
        #expect(segments.count == 1)  // its own segment removed, the head segment kept
        #expect(try replayable.isEmpty)
    }

    /// The index lost its rows (a power cut after the acknowledgement): replay restores them
    /// from the journal, with the same attributes, and a second replay changes nothing.
    @Test func replayIndexesAcknowledgedRecordsTheIndexLost() throws {
        #expect(receive(dataSet()).status == .success)
        #expect(receive(dataSet(sopInstanceUID: "1.2.826.0.1.3680043.10.1.9"), into: nil).status != .success)
        let before = try spool.database.listInstances()
        try spool.database.writer.write { db in
            try db.execute(sql: "DELETE FROM delivery; DELETE FROM instance; DELETE FROM journal_checkpoint")
        }
        let reopened = try Spool(root: spool.files.root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        let summary = try JournalReplay.run(spool: reopened, logger: Logger(label: "test"))
        #expect(summary.indexed == 1)
        #expect(summary.torn.isEmpty)
        let after = try reopened.database.listInstances()
        #expect(after.map(\.sopInstanceUID) == before.map(\.sopInstanceUID))
        #expect(after.map(\.location) == before.map(\.location))
        #expect(after.first?.patientName == "Dupré^Hélène")
        #expect(try JournalReplay.run(spool: reopened, logger: Logger(label: "test")).indexed == 0)
    }

    @Test func aDataSetForAnotherInstanceThanTheCommandIsRefused() throws {
        #expect(receive(dataSet(sopInstanceUID: "1.2.3.999")).status == .dataSetDoesNotMatchSOPClass)
        #expect(try spool.database.listInstances().isEmpty)
    }

    @Test func aDataSetWithoutStudyInstanceUIDIsRefused() throws {
        #expect(receive(dataSet(studyUID: nil)).status == .dataSetDoesNotMatchSOPClass)
        #expect(try replayable.isEmpty)
    }

    @Test func anEmptyDataSetIsRefused() throws {
        #expect(receive(ByteBuffer()).status == .cannotUnderstand)
    }

    @Test func aFullDiskAnswersOutOfResources() throws {
        let full = try Spool(root: spool.files.root + "-full", minimumFree: .percent(100), segmentSize: 1 << 20)
        let request = CStoreRQ(messageID: 1, affectedSOPClassUID: ctImageStorage, affectedSOPInstanceUID: sopInstanceUID)
        let reception = InstanceReception(spool: full, request: request, transferSyntaxUID: "1.2.840.10008.1.2.1",
                                          callingAETitle: "CT1", logger: Logger(label: "test"))
        reception.write([dataSet()])
        #expect(reception.finish().status == .outOfResources)
        #expect(full.journal.segmentPaths().isEmpty)
    }

    @Test func anAbandonedStreamedReceptionLeavesNoSegment() throws {
        let request = CStoreRQ(messageID: 1, affectedSOPClassUID: ctImageStorage, affectedSOPInstanceUID: sopInstanceUID)
        let reception = InstanceReception(spool: spool, request: request, transferSyntaxUID: "1.2.840.10008.1.2.1",
                                          callingAETitle: "CT1", logger: Logger(label: "test"))
        let bytes = dataSet(pixels: Journal.inlineLimit + 100_000)
        reception.write([bytes.getSlice(at: 0, length: Journal.inlineLimit + 50_000)!])
        #expect(segments.count == 2)  // the head segment and its own
        reception.abandon()
        #expect(segments.count == 1)
        #expect(try replayable.isEmpty)
    }

    /// Two receptions at once: the first writes at the journal's head, the second holds its
    /// bytes and appends them whole; both are stored and replay finds both.
    @Test func concurrentReceptionsShareTheHeadAndBothAreStored() throws {
        let other = "1.2.826.0.1.3680043.10.1.77"
        let request = { (uid: String) in
            CStoreRQ(messageID: 1, affectedSOPClassUID: ctImageStorage, affectedSOPInstanceUID: uid)
        }
        let first = InstanceReception(spool: spool, request: request(sopInstanceUID), transferSyntaxUID: "1.2.840.10008.1.2.1",
                                      callingAETitle: "CT1", logger: Logger(label: "test"))
        let second = InstanceReception(spool: spool, request: request(other), transferSyntaxUID: "1.2.840.10008.1.2.1",
                                       callingAETitle: "CT2", logger: Logger(label: "test"))
        let a = dataSet(), b = dataSet(sopInstanceUID: other)
        first.write([a.getSlice(at: 0, length: 100)!])
        second.write([b])
        #expect(second.finish().status == .success)
        first.write([a.getSlice(at: 100, length: a.readableBytes - 100)!])
        #expect(first.finish().status == .success)
        let listed = try spool.database.listInstances()
        #expect(Set(listed.map(\.sopInstanceUID)) == [sopInstanceUID, other])
        for listing in listed {
            let file = try stored(listing)
            let expected = listing.sopInstanceUID == other ? b : a
            #expect(Array(file[listing.location.dataSetOffset...]) == Array(expected.readableBytesView))
        }
        try spool.database.writer.write { db in
            try db.execute(sql: "DELETE FROM delivery; DELETE FROM instance; DELETE FROM journal_checkpoint")
        }
        #expect(try JournalReplay.run(spool: spool, logger: Logger(label: "test")).indexed == 2)
    }

    @Test func deflatedDataSetsAreStoredAsReceived() throws {
        let deflated = try DataSetWriter.deflated(dataSet())
        #expect(receive(deflated, transferSyntax: "1.2.840.10008.1.2.1.99").status == .success)
        let listing = try #require(try spool.database.listInstances().first)
        #expect(listing.transferSyntaxUID == "1.2.840.10008.1.2.1.99")
        #expect(listing.patientName == "Dupré^Hélène")
    }
}

extension InstanceReception {
    /// The status, once the reception is settled (its row committed), as the association
    /// handler sees it before a release.
    func finish() -> StoreOutcome {
        let done = DispatchSemaphore(value: 0)
        let outcome = NIOLockedValueBox<StoreOutcome?>(nil)
        finish(respond: { value in outcome.withLockedValue { $0 = value } }, settled: { done.signal() })
        done.wait()
        return outcome.withLockedValue { $0 }!
    }
}
