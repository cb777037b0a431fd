import DICOMCore
import Foundation
import Testing

@testable import DICOMNetwork

struct PresentationContextsForFilesTests {
    static let implicitLE = TransferSyntax.implicitVRLittleEndian.uid
    static let explicitLE = TransferSyntax.explicitVRLittleEndian.uid
    static let explicitBE = TransferSyntax.explicitVRBigEndian.uid
    static let deflated = TransferSyntax.deflatedExplicitVRLittleEndian.uid

    @Test func verificationAloneForNoFiles() throws {
        #expect(try DICOMClient.presentationContexts(forFiles: []) == [
            PresentationContextProposal(id: 1, abstractSyntax: UIDRegistry.verificationSOPClassUID, transferSyntaxes: [Self.implicitLE]),
        ])
    }

    @Test func oneContextPerDistinctPairWithOddIDs() throws {
        let directory = try ClientTestSupport.temporaryDirectory("contexts")
        defer { try? FileManager.default.removeItem(at: directory) }
        let a = try ClientTestSupport.writePart10File(in: directory, sopInstanceUID: "2.25.1", pixelBytes: 100)
        let b = try ClientTestSupport.writePart10File(in: directory, sopInstanceUID: "2.25.2", pixelBytes: 100)
        let c = try ClientTestSupport.writePart10File(in: directory, sopInstanceUID: "2.25.3",
                                                      transferSyntax: .implicitVRLittleEndian, pixelBytes: 100)
        let contexts = try DICOMClient.presentationContexts(forFiles: [a.path, b.path, c.path])
        #expect(contexts == [
            PresentationContextProposal(id: 1, abstractSyntax: UIDRegistry.verificationSOPClassUID, transferSyntaxes: [Self.implicitLE]),
            PresentationContextProposal(id: 3, abstractSyntax: ClientTestSupport.secondaryCaptureImageStorage,
                                        transferSyntaxes: [Self.explicitLE, Self.implicitLE]),
            PresentationContextProposal(id: 5, abstractSyntax: ClientTestSupport.secondaryCaptureImageStorage,
                                        transferSyntaxes: [Self.implicitLE, Self.explicitLE]),
        ])
    }

    @Test func compressedSyntaxesAreProposedAlone() throws {
        let jpegLossless = "1.2.840.10008.1.2.4.70"
        let contexts = try DICOMClient.presentationContexts(for: [
            (Fixtures.ctImageStorage, jpegLossless), (Fixtures.ctImageStorage, Self.deflated),
            (Fixtures.ctImageStorage, Self.explicitBE),
        ])
        #expect(contexts.map(\.id) == [1, 3, 5, 7])
        #expect(contexts[1].transferSyntaxes == [jpegLossless])
        #expect(contexts[2].transferSyntaxes == [Self.deflated])
        #expect(contexts[3].transferSyntaxes == [Self.explicitBE, Self.explicitLE, Self.implicitLE])
    }

    @Test func atMost128Contexts() throws {
        let pairs = (0..<127).map { (sopClass: "1.2.3.\($0)", transferSyntax: Self.explicitLE) }
        let contexts = try DICOMClient.presentationContexts(for: pairs)
        #expect(contexts.count == 128)
        #expect(contexts.last?.id == 255)
        let error = #expect(throws: DICOMNetworkError.self) {
            _ = try DICOMClient.presentationContexts(for: pairs + [(sopClass: "1.2.3.999", transferSyntax: Self.explicitLE)])
        }
        #expect(error?.code == .tooManyPresentationContexts)
    }

    @Test func getProposalsOfferTheSCPRoleForEachStorageClass() throws {
        let get = UIDRegistry.studyRootQueryRetrieveInformationModelGetSOPClassUID
        let (contexts, roles) = try DICOMClient.proposals(
            forGetting: ["1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.2"],
            queryRetrieve: get)
        #expect(contexts == [
            PresentationContextProposal(id: 1, abstractSyntax: get, transferSyntaxes: [Self.explicitLE, Self.implicitLE]),
            PresentationContextProposal(id: 3, abstractSyntax: "1.2.840.10008.5.1.4.1.1.2",
                                        transferSyntaxes: [Self.explicitLE, Self.implicitLE]),
            PresentationContextProposal(id: 5, abstractSyntax: "1.2.840.10008.5.1.4.1.1.7",
                                        transferSyntaxes: [Self.explicitLE, Self.implicitLE]),
        ])
        #expect(roles == [
            RoleSelection(sopClassUID: "1.2.840.10008.5.1.4.1.1.2", scuRole: false, scpRole: true),
            RoleSelection(sopClassUID: "1.2.840.10008.5.1.4.1.1.7", scuRole: false, scpRole: true),
        ])

        // 127 storage classes and the C-GET context fill an association; one more does not fit.
        let classes = (0..<127).map { "1.2.3.\($0)" }
        #expect(try DICOMClient.proposals(forGetting: classes, queryRetrieve: get).contexts.last?.id == 255)
        let error = #expect(throws: DICOMNetworkError.self) {
            _ = try DICOMClient.proposals(forGetting: classes + ["1.2.3.999"], queryRetrieve: get)
        }
        #expect(error?.code == .tooManyPresentationContexts)
    }

    @Test func notAPart10File() throws {
        let directory = try ClientTestSupport.temporaryDirectory("contexts-bad")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("junk.dcm").path
        try Data(repeating: 0x41, count: 300).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: DICOMNetworkError.self) { _ = try DICOMClient.presentationContexts(forFiles: [path]) }
        #expect(error?.code == .invalidFile)
        #expect(error?.message.contains(path) == true)
    }
}
