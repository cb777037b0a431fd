import DICOMCore
import QueryTestSupport
import Testing
@testable import DICOMQuery

/// C-MOVE and C-GET identifiers: unique keys only, lists split, levels checked.
@Suite struct RetrieveQueryTests: QueryFixtures {
    // MARK: C-MOVE and C-GET identifiers

    @Test func retrieveStudies() throws {
        let query = try RetrieveQuery(identifier: [
            level("STUDY"), key(Tag.studyInstanceUID, "UI", "1.2.3", "1.2.4 "), key(Tag.patientID, "LO", "123"),
        ], model: .studyRoot)
        #expect(query.level == .study)
        #expect(query.studyUIDs == ["1.2.3", "1.2.4"])
        #expect(query.seriesUIDs.isEmpty && query.sopInstanceUIDs.isEmpty)
        #expect(query.patientID == "123")
    }

    @Test func retrieveSplitsBackslashLists() throws {
        let query = try RetrieveQuery(identifier: [level("SERIES"), key(Tag.seriesInstanceUID, "UI", "1.2\\1.3")],
                                      model: .studyRoot)
        #expect(query.seriesUIDs == ["1.2", "1.3"])
        #expect(query.studyUIDs.isEmpty)
    }

    @Test func retrieveSeriesAndInstances() throws {
        let series = try RetrieveQuery(identifier: [
            level("SERIES"), key(Tag.studyInstanceUID, "UI", "1.2.3"), key(Tag.seriesInstanceUID, "UI", "1.2.3.4"),
        ], model: .patientRoot)
        #expect(series.studyUIDs == ["1.2.3"] && series.seriesUIDs == ["1.2.3.4"])
        let image = try RetrieveQuery(identifier: [
            level("IMAGE"), key(Tag.studyInstanceUID, "UI", "1.2.3"), key(Tag.seriesInstanceUID, "UI", "1.2.3.4"),
            key(Tag.sopInstanceUID, "UI", "1.2.3.4.5", "1.2.3.4.6"),
        ], model: .studyRoot)
        #expect(image.level == .image)
        #expect(image.sopInstanceUIDs == ["1.2.3.4.5", "1.2.3.4.6"])
    }

    @Test func retrievePatient() throws {
        let query = try RetrieveQuery(identifier: [
            level("PATIENT"), key(Tag.patientID, "LO", "123 "), key(Tag.issuerOfPatientID, "LO", "CHRU-TOURS"),
        ], model: .patientRoot)
        #expect(query.level == .patient)
        #expect(query.patientID == "123")
        #expect(query.issuerOfPatientID == "CHRU-TOURS")
        let noIssuer = try RetrieveQuery(identifier: [level("PATIENT"), key(Tag.patientID, "LO", "123")], model: .patientRoot)
        #expect(noIssuer.issuerOfPatientID == nil)
    }

    @Test func retrieveNeedsTheLevelsUniqueKey() {
        #expect(retrieveError([level("STUDY")])?.tag == Tag.studyInstanceUID)
        #expect(retrieveError([level("STUDY"), key(Tag.studyInstanceUID, "UI")])?.tag == Tag.studyInstanceUID)
        #expect(retrieveError([level("SERIES"), key(Tag.studyInstanceUID, "UI", "1.2.3")])?.tag == Tag.seriesInstanceUID)
        #expect(retrieveError([level("IMAGE"), key(Tag.seriesInstanceUID, "UI", "1.2")])?.tag == Tag.sopInstanceUID)
        #expect(retrieveError([level("PATIENT"), key(Tag.patientName, "PN", "DURAND")], model: .patientRoot)?.tag
                    == Tag.patientID)
        #expect(retrieveError([level("STUDY")])?.message == "Study Instance UID (0020,000D) is missing")
    }

    @Test func retrieveRefusesBadIdentifiers() {
        #expect(retrieveError([key(Tag.studyInstanceUID, "UI", "1.2.3")])?.tag == Tag.queryRetrieveLevel)
        #expect(retrieveError([level("PATIENT"), key(Tag.patientID, "LO", "123")], model: .studyRoot)?.tag
                    == Tag.queryRetrieveLevel)
        #expect(retrieveError([level("STUDY"), key(Tag.studyInstanceUID, "UI", "*")])?.tag == Tag.studyInstanceUID)
        #expect(retrieveError([level("PATIENT"), key(Tag.patientID, "LO", "12*")], model: .patientRoot)?.tag
                    == Tag.patientID)
        #expect(retrieveError([level("PATIENT"), key(Tag.patientID, "LO", "1", "2")], model: .patientRoot)?.tag
                    == Tag.patientID)
    }
}
