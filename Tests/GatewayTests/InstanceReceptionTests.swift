import DICOMCore
import DICOMNetwork
import Foundation
import Logging
import NIOCore
import Spool
import Testing
@testable import Gateway

@Suite struct InstanceReceptionTests {
    let spool: Spool
    let ctImageStorage = "1.2.840.10008.5.1.4.1.1.2"
    let sopInstanceUID = "1.2.826.0.1.3680043.10.1.1"

    init() throws {
        spool = try Spool(root: NSTemporaryDirectory() + "reception-" + UUID().uuidString, minimumFree: .bytes(0))
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

    func receive(_ bytes: ByteBuffer, chunk: Int = 1000, transferSyntax: String = "1.2.840.10008.1.2.1") -> StoreOutcome {
        let request = CStoreRQ(messageID: 1, affectedSOPClassUID: ctImageStorage, affectedSOPInstanceUID: sopInstanceUID)
        let reception = InstanceReception(spool: spool, request: request, transferSyntaxUID: transferSyntax,
                                          callingAETitle: "CT1", logger: Logger(label: "test"))
        var bytes = bytes
        while let slice = bytes.readSlice(length: min(chunk, bytes.readableBytes)), slice.readableBytes > 0 {
            reception.write(slice)
        }
        return reception.finish()
    }

    @Test func storesAValidInstanceAsAPart10FileWithTheDataSetUnchanged() throws {
        let bytes = dataSet()
        #expect(receive(bytes).status == .success)
        let listing = try #require(try spool.database.listInstances().first)
        #expect(listing.patientName == "Dupré^Hélène")
        #expect(listing.patientID == "IPP42")
        #expect(listing.issuerOfPatientID == "CHR-ORLEANS")
        #expect(listing.callingAETitle == "CT1")
        let file = try #require(FileManager.default.contents(atPath: spool.files.absolutePath(listing.filePath)))
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
        #expect(spool.files.storedFiles().isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool.files.temporaryDirectory).isEmpty)
    }

    @Test func aDataSetForAnotherInstanceThanTheCommandIsRefused() throws {
        #expect(receive(dataSet(sopInstanceUID: "1.2.3.999")).status == .dataSetDoesNotMatchSOPClass)
        #expect(try spool.database.listInstances().isEmpty)
    }

    @Test func aDataSetWithoutStudyInstanceUIDIsRefused() throws {
        #expect(receive(dataSet(studyUID: nil)).status == .dataSetDoesNotMatchSOPClass)
        #expect(spool.files.storedFiles().isEmpty)
    }

    @Test func anEmptyDataSetIsRefused() throws {
        #expect(receive(ByteBuffer()).status == .cannotUnderstand)
    }

    @Test func aFullDiskAnswersOutOfResources() throws {
        let full = try Spool(root: spool.files.root + "-full", minimumFree: .percent(100))
        let request = CStoreRQ(messageID: 1, affectedSOPClassUID: ctImageStorage, affectedSOPInstanceUID: sopInstanceUID)
        let reception = InstanceReception(spool: full, request: request, transferSyntaxUID: "1.2.840.10008.1.2.1",
                                          callingAETitle: "CT1", logger: Logger(label: "test"))
        reception.write(dataSet())
        #expect(reception.finish().status == .outOfResources)
        #expect(full.files.storedFiles().isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: full.files.temporaryDirectory).isEmpty)
    }

    @Test func anAbandonedReceptionLeavesNoTemporaryFile() throws {
        let request = CStoreRQ(messageID: 1, affectedSOPClassUID: ctImageStorage, affectedSOPInstanceUID: sopInstanceUID)
        let reception = InstanceReception(spool: spool, request: request, transferSyntaxUID: "1.2.840.10008.1.2.1",
                                          callingAETitle: "CT1", logger: Logger(label: "test"))
        reception.write(dataSet().getSlice(at: 0, length: 100)!)
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool.files.temporaryDirectory).count == 1)
        reception.abandon()
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool.files.temporaryDirectory).isEmpty)
    }

    @Test func deflatedDataSetsAreStoredAsReceived() throws {
        let deflated = try DataSetWriter.deflated(dataSet())
        #expect(receive(deflated, transferSyntax: "1.2.840.10008.1.2.1.99").status == .success)
        let listing = try #require(try spool.database.listInstances().first)
        #expect(listing.transferSyntaxUID == "1.2.840.10008.1.2.1.99")
        #expect(listing.patientName == "Dupré^Hélène")
    }
}
