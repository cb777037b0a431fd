import Testing
@testable import DICOMCore

@Suite struct UIDRegistryTests {
    @Test func lookups() throws {
        let verification = try #require(UIDRegistry.entry(for: UIDRegistry.verificationSOPClassUID))
        #expect(verification.name == "Verification SOP Class")
        #expect(verification.type == "SOP Class")
        #expect(!verification.retired)
        #expect(UIDRegistry.entry(for: "1.2.840.10008.1.2.2")?.retired == true)
        #expect(UIDRegistry.entry(for: "1.2.3.4") == nil)
    }

    @Test func namedSOPClassesAreGenerated() {
        #expect(UIDRegistry.verificationSOPClassUID == "1.2.840.10008.1.1")
        #expect(UIDRegistry.patientRootQueryRetrieveInformationModelFindSOPClassUID == "1.2.840.10008.5.1.4.1.2.1.1")
        #expect(UIDRegistry.studyRootQueryRetrieveInformationModelGetSOPClassUID == "1.2.840.10008.5.1.4.1.2.2.3")
        let move = UIDRegistry.entry(for: UIDRegistry.studyRootQueryRetrieveInformationModelMoveSOPClassUID)
        #expect(move?.keyword == "StudyRootQueryRetrieveInformationModelMove")
    }

    @Test(arguments: [
        "1.2.840.10008.5.1.4.1.1.2",       // CT Image Storage
        "1.2.840.10008.5.1.4.1.1.2.1",     // Enhanced CT Image Storage
        "1.2.840.10008.5.1.4.1.1.1.1",     // Digital X-Ray Image Storage - For Presentation
        "1.2.840.10008.5.1.4.1.1.88.11",   // Basic Text SR Storage
        "1.2.840.10008.5.1.4.1.1.104.1",   // Encapsulated PDF Storage
        "1.2.840.10008.5.1.4.1.1.5",       // NM Image Storage (retired)
    ])
    func storageSOPClasses(uid: String) {
        #expect(UIDRegistry.storageSOPClassUIDs.contains(uid))
        #expect(UIDRegistry.isStorageSOPClass(uid))
    }

    @Test(arguments: [
        "1.2.840.10008.1.1",          // Verification
        "1.2.840.10008.1.20.1",       // Storage Commitment Push Model
        "1.2.840.10008.1.3.10",       // Media Storage Directory Storage
        "1.2.840.10008.5.1.4.1.2.2.1",// Study Root Q/R FIND
        "1.2.840.10008.1.2",          // a transfer syntax
    ])
    func notStorageSOPClasses(uid: String) {
        #expect(!UIDRegistry.storageSOPClassUIDs.contains(uid))
    }

    @Test func transferSyntaxSet() {
        #expect(UIDRegistry.transferSyntaxUIDs.contains("1.2.840.10008.1.2.4.201"))
        #expect(UIDRegistry.transferSyntaxUIDs.count > 50)
        #expect(UIDRegistry.storageSOPClassUIDs.count > 200)
    }
}
