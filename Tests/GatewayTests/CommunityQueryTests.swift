import DICOMCore
import DICOMQuery
import QueryTestSupport
import Testing
@testable import Gateway

/// The community search folders' side of a C-FIND (docs/community.md): the keys Passerelle
/// computes (site columns, report flag, its private block), the INS, what the hub is asked for,
/// and the own site. The query model itself is tested in DICOMQueryTests.
@Suite struct CommunityQueryTests: QueryFixtures {
    // MARK: Helpers

    let tours = SiteDirectoryEntry(id: 401, emitter: "cstrs37000", name: "CHRU Tours", issuerOfPatientID: "CHRU-TOURS")

    func result(attributes: [QueryAttribute]) -> QIDOAttributes {
        Dictionary(attributes.map { ($0.tag, $0) }, uniquingKeysWith: { first, _ in first })
    }

    // MARK: QIDO-RS parameters

    @Test func includefieldForEveryRequestedKeyNotMatched() throws {
        let request = try find("STUDY",
                               key(Tag.patientName, "PN", "DURAND"),
                               key(Tag.patientBirthDate, "DA"),
                               key(Tag(0x0008, 0x1030), "LO"),  // StudyDescription
                               key(Tag.studyInstanceUID, "UI"))
            .qidoRequest(excludeOwnIssuer: nil)
        #expect(request.values(of: "00100010").isEmpty)  // one word may be any name component: checked locally
        // Requested, plus what the site and report columns and PATIENT grouping need; sorted, once each.
        #expect(request.values(of: "includefield") == [
            "00080061", "00080080", "00081030", "00100010", "00100021", "00100030", "0020000D", "00201206", "00201208",
        ])
    }

    @Test func seriesLevelAsksForTheIssuerOnlyWhenNeeded() throws {
        let study = upper[1]
        let plain = try find("SERIES", study, key(Tag.modality, "CS")).qidoRequest(excludeOwnIssuer: nil)
        #expect(plain.values(of: "includefield") == ["00080060", "00080080", "0020000D"])
        let excluding = try find("SERIES", study, key(Tag.modality, "CS")).qidoRequest(excludeOwnIssuer: "CHU-X")
        #expect(excluding.values(of: "includefield") == ["00080060", "00080080", "00100021", "0020000D"])
        let site = try find("SERIES", study, key(PrivateBlock.producingSiteID, "IS")).qidoRequest(excludeOwnIssuer: nil)
        #expect(site.values(of: "includefield") == ["00080080", "00100021", "0020000D"])
    }

    @Test func computedKeysAreNotSentToTheHub() throws {
        let request = try find("STUDY",
                               key(Tag.institutionName, "LO", "CHRU Tours"),
                               key(PrivateBlock.creator, "LO", "PASSERELLE"),
                               key(PrivateBlock.producingSiteID, "IS", "401"),
                               key(PrivateBlock.reportPresent, "CS", "YES"))
            .qidoRequest(excludeOwnIssuer: nil)
        #expect(request.parameters.allSatisfy { $0.name == "includefield" })
        #expect(!request.values(of: "includefield").contains { $0.hasPrefix("0009") })
        #expect(request.values(of: "includefield").contains("00080080"))
        let patient = try find("PATIENT", key(Tag.numberOfPatientRelatedStudies, "IS"), model: .patientRoot)
            .qidoRequest(excludeOwnIssuer: nil)
        #expect(!patient.values(of: "includefield").contains("00201200"))
    }

    @Test func insIsSentAsNestedAttributeMatching() throws {
        let request = try find("STUDY", insKey("1234567890123", issuer: insNIR), key(Tag.patientName, "PN"))
            .qidoRequest(excludeOwnIssuer: nil)
        #expect(request.values(of: "00101002.00100020") == ["1234567890123"])
        #expect(request.values(of: "includefield").contains("00101002"))  // to check the issuer locally
        for oid in ["1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11"] {
            #expect(try find("STUDY", insKey("1", issuer: oid)).qidoRequest(excludeOwnIssuer: nil)
                        .values(of: "00101002.00100020") == ["1"])
        }
    }

    @Test func otherSequenceKeysAreNotSent() throws {
        let request = try find("STUDY", insKey("123", issuer: "CHU-X"),
                               QueryAttribute(tag: Tag(0x0008, 0x1032), vr: "SQ", items: [[key(Tag(0x0008, 0x0100), "SH", "ABC")]]))
            .qidoRequest(excludeOwnIssuer: nil)
        #expect(request.parameters.allSatisfy { $0.name == "includefield" })
        #expect(request.values(of: "includefield").contains("00081032"))
    }

    // MARK: Matching: INS and computed keys

    @Test func insSequenceMatching() throws {
        let query = try find("STUDY", insKey("1234567890123", issuer: insNIR))
        func other(_ id: String, _ issuer: String) -> QueryAttribute {
            QueryAttribute(tag: otherPatientIDs, vr: "SQ", items: [
                [key(Tag.patientID, "LO", "IPP42"), key(Tag.issuerOfPatientID, "LO", "CHU-X")],
                [key(Tag.patientID, "LO", id), key(Tag.issuerOfPatientID, "LO", issuer),
                 key(Tag(0x0010, 0x0022), "CS", "TEXT")],
            ])
        }
        #expect(query.matches(result(other("1234567890123", insNIR))))
        #expect(!query.matches(result(other("1234567890123", "1.2.250.1.213.1.4.10"))))  // same number, test INS
        #expect(!query.matches(result(other("9999999999999", insNIR))))
        #expect(!query.matches(result(QueryAttribute(tag: otherPatientIDs, vr: "SQ"))))
        // Without the sequence the hub cannot vouch for the INS: matched on the other keys, flagged.
        let unverified = result(key(Tag.patientID, "LO", "IPP42"))
        #expect(query.matches(unverified))
        #expect(query.insUnverified(unverified))
        #expect(!query.insUnverified(result(other("1234567890123", insNIR))))
        #expect(query.searchesByINS && !query.hasKeysBesidesINS)
        #expect(try find("STUDY", insKey("1", issuer: insNIR), key(Tag.patientName, "PN", "DURAND^HELENE"))
                    .hasKeysBesidesINS)
    }

    @Test func computedKeysAreMatchedAgainstTheirValues() throws {
        let site = try find("STUDY", key(PrivateBlock.producingSiteID, "IS", "401"))
        #expect(site.matches([:], site: tours))
        #expect(!site.matches([:], site: SiteDirectoryEntry(id: 402, emitter: "e", name: "n", issuerOfPatientID: "I")))
        #expect(!site.matches([:], site: nil))
        let report = try find("STUDY", key(PrivateBlock.reportPresent, "CS", "YES"))
        #expect(report.matches(result(key(Tag.modalitiesInStudy, "CS", "CT", "SR")), site: nil))
        #expect(!report.matches(result(key(Tag.modalitiesInStudy, "CS", "CT")), site: nil))
        let institution = try find("STUDY", key(Tag.institutionName, "LO", "CHRU*"))
        #expect(institution.matches(result(key(Tag.institutionName, "LO", "Hôpital")), site: tours))
        #expect(!institution.matches(result(key(Tag.institutionName, "LO", "Hôpital")), site: nil))
    }

    // MARK: Responses

    @Test func siteColumnsInTheResponse() throws {
        let query = try find("STUDY", key(Tag.institutionName, "LO"), key(PrivateBlock.producingSiteID, "IS"),
                             key(PrivateBlock.producingSiteEmitter, "LO"), key(PrivateBlock.reportPresent, "CS"))
        let study = result(key(Tag.institutionName, "LO", "CHU DE TOURS"), key(Tag.modalitiesInStudy, "CS", "CT", "DOC"))
        #expect(query.response(for: study, site: tours) == [
            key(Tag.queryRetrieveLevel, "CS", "STUDY"),
            key(Tag.institutionName, "LO", "CHRU Tours"),
            key(PrivateBlock.creator, "LO", "PASSERELLE"),  // added: the private keys need their creator
            key(PrivateBlock.producingSiteID, "IS", "401"),
            key(PrivateBlock.producingSiteEmitter, "LO", "cstrs37000"),
            key(PrivateBlock.reportPresent, "CS", "YES"),
        ])
        // Unknown site: the hub's institution, empty site columns.
        #expect(query.response(for: study, site: nil).map(\.values) == [
            ["STUDY"], ["CHU DE TOURS"], ["PASSERELLE"], [], [], ["YES"],
        ])
    }

    @Test func reportFlag() throws {
        let query = try find("STUDY", key(PrivateBlock.reportPresent, "CS"))
        func flag(_ attributes: QueryAttribute...) -> [String]? {
            query.response(for: result(attributes: attributes), site: nil).first { $0.tag == PrivateBlock.reportPresent }?.values
        }
        #expect(flag(key(Tag.modalitiesInStudy, "CS", "CT", "SR")) == ["YES"])
        #expect(flag(key(Tag.modalitiesInStudy, "CS", "DOC")) == ["YES"])
        #expect(flag(key(Tag.modalitiesInStudy, "CS", "CT", "MR")) == ["NO"])
        #expect(flag() == ["NO"])
        #expect(flag(key(Tag.modality, "CS", "SR")) == ["YES"])  // a series
    }

    @Test func privateCreatorRequestedAlone() throws {
        let query = try find("STUDY", key(PrivateBlock.creator, "LO"))
        #expect(query.response(for: [:], site: tours) == [
            key(Tag.queryRetrieveLevel, "CS", "STUDY"), key(PrivateBlock.creator, "LO", "PASSERELLE"),
        ])
    }

    @Test func anotherPrivateCreatorsBlockIsNotOurs() throws {
        let query = try find("STUDY", key(PrivateBlock.creator, "LO", "OTHER"), key(PrivateBlock.producingSiteID, "UN"))
        #expect(query.response(for: [:], site: tours) == [
            key(Tag.queryRetrieveLevel, "CS", "STUDY"), key(PrivateBlock.creator, "LO"),
            key(PrivateBlock.producingSiteID, "UN"),
        ])
    }

    @Test func patientLevelResponse() throws {
        let query = try find("PATIENT", key(Tag.patientName, "PN", "dur*"), key(Tag.patientID, "LO"),
                             key(Tag.issuerOfPatientID, "LO"), key(Tag.numberOfPatientRelatedStudies, "IS"),
                             key(PrivateBlock.producingSiteID, "IS"), model: .patientRoot)
        let studies = [study("123", "CHRU-TOURS"), study("123", "CHRU-TOURS"), study("9", "CHRU-TOURS", name: "MARTIN")]
            .filter { query.matches($0) }
        let patients = FindQuery.patients(from: studies)
        #expect(patients.count == 1)
        let response = query.response(for: patients[0], site: FindQuery.site(for: patients[0], in: [tours]))
        #expect(response.map(\.tag) == [Tag.queryRetrieveLevel, PrivateBlock.creator, PrivateBlock.producingSiteID,
                                        Tag.patientName, Tag.patientID, Tag.issuerOfPatientID,
                                        Tag.numberOfPatientRelatedStudies])
        #expect(response.map(\.values) == [["PATIENT"], ["PASSERELLE"], ["401"], ["DURAND^HELENE"], ["123"],
                                           ["CHRU-TOURS"], ["2"]])
    }

    // MARK: Sites

    @Test func siteByIssuerOfPatientID() {
        let directory = [tours, SiteDirectoryEntry(id: 402, emitter: "e402", name: "CH Blois", issuerOfPatientID: "CH-BLOIS")]
        #expect(FindQuery.site(for: result(key(Tag.issuerOfPatientID, "LO", "CH-BLOIS ")), in: directory)?.id == 402)
        #expect(FindQuery.site(for: result(key(Tag.issuerOfPatientID, "LO", "CHRU-TOURS")), in: directory) == tours)
        #expect(FindQuery.site(for: result(key(Tag.issuerOfPatientID, "LO", "chru-tours")), in: directory) == nil)
        #expect(FindQuery.site(for: result(key(Tag.issuerOfPatientID, "LO")), in: directory) == nil)
        #expect(FindQuery.site(for: [:], in: directory) == nil)
    }

    @Test func ownSite() {
        let own = result(key(Tag.issuerOfPatientID, "LO", "CHRU-TOURS "))
        #expect(FindQuery.isOwnSite(own, ownIssuer: "CHRU-TOURS"))
        #expect(!FindQuery.isOwnSite(own, ownIssuer: "CH-BLOIS"))
        #expect(!FindQuery.isOwnSite([:], ownIssuer: "CHRU-TOURS"))
        #expect(!FindQuery.isOwnSite(result(key(Tag.issuerOfPatientID, "LO")), ownIssuer: ""))
    }
}
