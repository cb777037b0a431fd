import DICOMCore
import QueryTestSupport
import Testing
@testable import DICOMQuery

/// Reading C-FIND identifiers, translating them to QIDO-RS, re-matching the hub's results and
/// building the responses.
@Suite struct FindQueryTests: QueryFixtures {
    // MARK: Models and levels

    @Test func sopClassUIDsOfBothModels() {
        #expect(QueryModel.patientRoot.findSOPClassUID == "1.2.840.10008.5.1.4.1.2.1.1")
        #expect(QueryModel.patientRoot.moveSOPClassUID == "1.2.840.10008.5.1.4.1.2.1.2")
        #expect(QueryModel.patientRoot.getSOPClassUID == "1.2.840.10008.5.1.4.1.2.1.3")
        #expect(QueryModel.studyRoot.findSOPClassUID == "1.2.840.10008.5.1.4.1.2.2.1")
        #expect(QueryModel.studyRoot.moveSOPClassUID == "1.2.840.10008.5.1.4.1.2.2.2")
        #expect(QueryModel.studyRoot.getSOPClassUID == "1.2.840.10008.5.1.4.1.2.2.3")
    }

    @Test func modelAndOperationFromSOPClassUID() {
        #expect(QueryModel(sopClassUID: "1.2.840.10008.5.1.4.1.2.1.2") == .patientRoot)
        #expect(QueryModel(sopClassUID: "1.2.840.10008.5.1.4.1.2.2.3") == .studyRoot)
        #expect(QueryModel(sopClassUID: "1.2.840.10008.5.1.4.1.2.2.1\0") == .studyRoot)
        #expect(QueryModel(sopClassUID: "1.2.840.10008.1.1") == nil)
        #expect(QueryModel(sopClassUID: "1.2.840.10008.5.1.4.1.2.3.1") == nil)  // retired Patient/Study Only
        #expect(QueryModel.operation(forSOPClassUID: "1.2.840.10008.5.1.4.1.2.1.1") == .find)
        #expect(QueryModel.operation(forSOPClassUID: "1.2.840.10008.5.1.4.1.2.2.2") == .move)
        #expect(QueryModel.operation(forSOPClassUID: "1.2.840.10008.5.1.4.1.2.1.3") == .get)
        #expect(QueryModel.operation(forSOPClassUID: "1.2.3") == nil)
    }

    @Test func levelsOfEachModel() throws {
        for (depth, name) in ["PATIENT", "STUDY", "SERIES", "IMAGE"].enumerated() {
            let keys = [level(name)] + upper.prefix(depth)
            #expect(try FindQuery(identifier: keys, model: .patientRoot).level.rawValue == name)
        }
        for (depth, name) in ["STUDY", "SERIES", "IMAGE"].enumerated() {
            let keys = [level(name)] + upper.dropFirst().prefix(depth)
            #expect(try FindQuery(identifier: keys, model: .studyRoot).level.rawValue == name)
        }
        #expect(try find(" study ").level == .study)  // padding and case, read loosely
        // Upper levels' unique keys are required, single values or lists, no wildcard.
        #expect(findError([level("SERIES")])?.tag == Tag.studyInstanceUID)
        #expect(findError([level("IMAGE"), upper[1]])?.tag == Tag.seriesInstanceUID)
        #expect(findError([level("STUDY")], model: .patientRoot)?.tag == Tag.patientID)
        #expect(findError([level("SERIES"), key(Tag.studyInstanceUID, "UI", "1.2.*")])?.tag
                    == Tag.studyInstanceUID)
        #expect(QueryLevel.patient < .study && QueryLevel.series < .image)
    }

    @Test func queryRetrieveLevelIsRequiredAndValid() {
        let missing = findError([key(Tag.patientName, "PN", "DURAND")])
        #expect(missing?.tag == Tag.queryRetrieveLevel)
        #expect(missing?.message.contains("(0008,0052)") == true)
        #expect(findError([level("")])?.tag == Tag.queryRetrieveLevel)
        #expect(findError([level("WORKLIST")])?.tag == Tag.queryRetrieveLevel)
        #expect(findError([key(Tag.queryRetrieveLevel, "CS", "STUDY", "SERIES")]) != nil)
        let patientInStudyRoot = findError([level("PATIENT")], model: .studyRoot)
        #expect(patientInStudyRoot?.tag == Tag.queryRetrieveLevel)
        #expect(patientInStudyRoot?.message.contains("Study Root") == true)
        #expect(findError([level("PATIENT")], model: .patientRoot) == nil)
    }

    @Test func errorCommentsFitAnLO() {
        let errors = [
            findError([]), findError([level(String(repeating: "X", count: 80))]),
            findError([level("PATIENT")]), retrieveError([level("SERIES")]),
            retrieveError([level("STUDY"), key(Tag.studyInstanceUID, "UI", "1.2.*")]),
        ]
        for error in errors {
            #expect(error != nil)
            #expect((error?.message.count ?? 0) <= 64)
        }
        #expect(QueryError(String(repeating: "a", count: 100)).message.count == 64)
    }

    @Test func upperLevelUniqueKeysAreAcceptedAtLowerLevels() throws {
        let series = try find("SERIES", key(Tag.studyInstanceUID, "UI", "1.2.3"), key(Tag.modality, "CS", "CT"))
        #expect(series.level == .series)
        let image = try find("IMAGE", key(Tag.patientID, "LO", "123"), key(Tag.studyInstanceUID, "UI", "1.2.3"),
                             key(Tag.seriesInstanceUID, "UI", "1.2.3.4"), model: .patientRoot)
        #expect(image.matchingKeys.map(\.tag) == [Tag.patientID, Tag.studyInstanceUID, Tag.seriesInstanceUID])
    }

    // MARK: Requested and matching keys

    @Test func requestedKeysAreInTagOrderWithoutCharacterSetAndLevel() throws {
        let query = try FindQuery(identifier: [
            key(Tag.studyInstanceUID, "UI"),
            key(Tag.patientName, "PN", "DUR*"),
            key(Tag.specificCharacterSet, "CS", "ISO_IR 100"),
            level("STUDY"),
            key(Tag.studyDate, "DA"),
            key(Tag(0x0008, 0x0000), "UL", "42"),  // group length: not a key
            key(Tag.patientName, "PN", "OTHER"),  // a repeated tag: the first one counts
        ], model: .studyRoot)
        #expect(query.requestedKeys.map(\.tag) == [Tag.studyDate, Tag.patientName, Tag.studyInstanceUID])
        #expect(query.matchingKeys == [key(Tag.patientName, "PN", "DUR*")])
    }

    @Test func universalKeysAreReturnedNotMatched() throws {
        let query = try find("STUDY",
                             key(Tag.patientName, "PN"),
                             key(Tag.patientID, "LO", "*"),
                             key(Tag.studyDate, "DA", "-"),
                             key(Tag.accessionNumber, "SH", "  "),
                             key(Tag.institutionName, "LO", "^"),  // not a name: a value
                             key(Tag(0x0010, 0x1001), "PN", "^^"),  // Other Patient Names, all empty components
                             QueryAttribute(tag: otherPatientIDs, vr: "SQ"),
                             QueryAttribute(tag: Tag(0x0008, 0x1032), vr: "SQ", items: [[key(Tag(0x0008, 0x0100), "SH")]]))
        #expect(query.requestedKeys.count == 8)
        #expect(query.matchingKeys.map(\.tag) == [Tag.institutionName])
    }

    @Test func sequenceKeyWithAValueIsMatching() throws {
        let query = try find("STUDY", insKey("1234567890123", issuer: insNIR))
        #expect(query.matchingKeys.map(\.tag) == [otherPatientIDs])
    }

    // MARK: QIDO-RS paths

    @Test func studyAndPatientLevelsSearchStudies() throws {
        #expect(try find("STUDY").qidoRequest().path == "studies")
        #expect(try find("PATIENT", model: .patientRoot).qidoRequest().path == "studies")
        // A study UID at STUDY level is a parameter, not a path.
        let request = try find("STUDY", key(Tag.studyInstanceUID, "UI", "1.2.3")).qidoRequest()
        #expect(request.path == "studies")
        #expect(request.values(of: "0020000D") == ["1.2.3"])
    }

    @Test func seriesLevelPaths() throws {
        let inStudy = try find("SERIES", key(Tag.studyInstanceUID, "UI", "1.2.3"), key(Tag.modality, "CS", "CT"))
            .qidoRequest()
        #expect(inStudy.path == "studies/1.2.3/series")
        #expect(inStudy.values(of: "0020000D").isEmpty)  // in the path, not repeated
        #expect(inStudy.values(of: "00080060") == ["CT"])
        #expect(inStudy.values(of: "includefield").contains("0020000D"))  // so results can say it
        let list = try find("SERIES", key(Tag.studyInstanceUID, "UI", "1.2.3", "1.2.4")).qidoRequest()
        #expect(list.path == "series")
        #expect(list.values(of: "0020000D") == ["1.2.3,1.2.4"])
    }

    @Test func imageLevelPaths() throws {
        let study = key(Tag.studyInstanceUID, "UI", "1.2.3")
        let series = key(Tag.seriesInstanceUID, "UI", "1.2.3.4")
        #expect(try find("IMAGE", study, series).qidoRequest().path
                    == "studies/1.2.3/series/1.2.3.4/instances")
        let seriesList = try find("IMAGE", study, key(Tag.seriesInstanceUID, "UI", "1.2.3.4", "1.2.3.5"))
            .qidoRequest()
        #expect(seriesList.path == "studies/1.2.3/instances")
        #expect(seriesList.values(of: "0020000E") == ["1.2.3.4,1.2.3.5"])
        let studies = try find("IMAGE", key(Tag.studyInstanceUID, "UI", "1.2.3", "1.2.4"), series)
            .qidoRequest()
        #expect(studies.path == "instances")
        #expect(studies.values(of: "0020000E") == ["1.2.3.4"])
    }

    // MARK: QIDO-RS parameters

    @Test func matchingKeysBecomeTagParametersAsInDICOM() throws {
        let request = try find("STUDY",
                               key(Tag.patientName, "PN", "DUR*"),
                               key(Tag.patientID, "LO", "12?4"),
                               key(Tag.studyDate, "DA", "20200101-20201231"),
                               key(Tag(0x0008, 0x0030), "TM", "-1200"),
                               key(Tag.modalitiesInStudy, "CS", "CT", "MR"))
            .qidoRequest()
        let matching = request.parameters.filter { $0.name != "includefield" }
        #expect(matching.map(\.name) == ["00080020", "00080030", "00080061", "00100010", "00100020"])
        #expect(matching.map(\.value) == ["20200101-20201231", "-1200", "CT,MR", "D*", "12*"])  // `?`: prefix
    }

    @Test func namesAreSentAsAPrefixTheHubCannotMisreadForAccents() throws {
        func sent(_ name: String) throws -> [String] {
            try find("STUDY", key(Tag.patientName, "PN", name)).qidoRequest().values(of: "00100010")
        }
        #expect(try sent("dur*") == ["D*"])
        #expect(try sent("DURAND^HELENE^^") == ["D*"])
        #expect(try sent("THOMAS^Anne") == ["TH*"])
        #expect(try sent("Hélène*") == ["H*"])
        #expect(try sent("MÜLLER^Zoë") == ["M*"])
        #expect(try sent("HELENE").isEmpty)  // one word: any component, checked locally
        #expect(try sent("ØRSTED^Hans").isEmpty)
        #expect(try sent("*^HELENE").isEmpty)
        #expect(try sent("Yamada^Tarou=山田^太郎=やまだ^たろう").isEmpty)  // Y may be Ý
        #expect(try sent("=山田^太郎").isEmpty)
    }

    // MARK: Results: missing attributes, every key

    @Test func seriesAndInstanceUIDsAreRequiredAtLowerLevels() throws {
        let studies = key(Tag.studyInstanceUID, "UI", "1.2.3", "1.2.4")  // a list: not in the path
        let series = try find("SERIES", studies, key(Tag.seriesInstanceUID, "UI", "1.2.3.4"))
        #expect(!series.matches(result(key(Tag.modality, "CS", "CT"), key(Tag.studyInstanceUID, "UI", "1.2.3"))))
        #expect(series.matches(result(key(Tag.seriesInstanceUID, "UI", "1.2.3.4"),
                                      key(Tag.studyInstanceUID, "UI", "1.2.3"))))
        let image = try find("IMAGE", upper[1], upper[2], key(Tag.sopInstanceUID, "UI", "1.2.3.4.5"))
        #expect(!image.matches([:]))
        let modality = try find("SERIES", studies, key(Tag.modality, "CS", "CT"))
        #expect(!modality.matches([:]))
    }

    @Test func aUIDInThePathMayBeAbsentFromResults() throws {
        let query = try find("SERIES", key(Tag.studyInstanceUID, "UI", "1.2.3"), key(Tag.modality, "CS", "CT"))
        #expect(query.matches(result(key(Tag.modality, "CS", "CT"))))
        #expect(!query.matches(result(key(Tag.modality, "CS", "CT"), key(Tag.studyInstanceUID, "UI", "1.2.4"))))
        // Not in the path (a list): required.
        let list = try find("SERIES", key(Tag.studyInstanceUID, "UI", "1.2.3", "1.2.4"))
        #expect(!list.matches([:]))
    }

    @Test func everyMatchingKeyMustMatch() throws {
        let query = try find("STUDY", key(Tag.patientName, "PN", "DUR*"), key(Tag.studyDate, "DA", "2020-"),
                             key(Tag.studyDate, "DA"))
        let study = result(key(Tag.patientName, "PN", "DURAND^HELENE"), key(Tag.studyDate, "DA", "20200615"))
        #expect(try find("STUDY", key(Tag.patientName, "PN", "DUR*"), key(Tag.studyDate, "DA", "20200101-"))
                    .matches(study))
        #expect(try !find("STUDY", key(Tag.patientName, "PN", "DUR*"), key(Tag.studyDate, "DA", "20210101-"))
                    .matches(study))
        #expect(query.matchingKeys.count == 2)
    }

    // MARK: Responses

    @Test func responseHasExactlyTheRequestedKeysAndTheLevel() throws {
        let query = try FindQuery(identifier: [
            key(Tag.specificCharacterSet, "CS", "ISO_IR 100"), level("STUDY"),
            key(Tag.studyInstanceUID, "UI"), key(Tag.patientName, "PN", "DUR*"),
            key(Tag(0x0008, 0x1030), "LO"), key(Tag.modalitiesInStudy, "CS"),
        ], model: .studyRoot)
        let response = query.response(for: result(
            key(Tag.patientName, "PN", "DURAND^HELENE"), key(Tag.studyInstanceUID, "UI", "1.2.3"),
            key(Tag.modalitiesInStudy, "CS", "CT", "SR"), key(Tag.patientID, "LO", "not requested"),
            key(Tag.studyDate, "DA", "20200615"),
        ))
        #expect(response == [
            key(Tag.queryRetrieveLevel, "CS", "STUDY"),
            key(Tag.modalitiesInStudy, "CS", "CT", "SR"),
            key(Tag(0x0008, 0x1030), "LO"),  // not returned by the hub: empty
            key(Tag.patientName, "PN", "DURAND^HELENE"),
            key(Tag.studyInstanceUID, "UI", "1.2.3"),
        ])
    }

    @Test func responseKeepsTheHubsVR() throws {
        let query = try find("STUDY", key(Tag(0x0011, 0x1001), "UN"), key(Tag(0x0010, 0x1010), "UN"))
        let response = query.response(for: result(key(Tag(0x0010, 0x1010), "AS", "042Y")))
        #expect(response.first { $0.tag == Tag(0x0010, 0x1010) } == key(Tag(0x0010, 0x1010), "AS", "042Y"))
        #expect(response.first { $0.tag == Tag(0x0011, 0x1001) } == key(Tag(0x0011, 0x1001), "UN"))
    }

    @Test func pathUIDsAreReturnedWhenTheHubLeavesThemOut() throws {
        let query = try find("IMAGE", key(Tag.studyInstanceUID, "UI", "1.2.3"),
                             key(Tag.seriesInstanceUID, "UI", "1.2.3.4"), key(Tag.sopInstanceUID, "UI"))
        let response = query.response(for: result(key(Tag.sopInstanceUID, "UI", "1.2.3.4.5")))
        #expect(response.map(\.values) == [["1.2.3.4.5"], ["IMAGE"], ["1.2.3"], ["1.2.3.4"]])  // (0008,0018) first
    }

    @Test func sequencesInTheResponse() throws {
        let items = [
            [key(Tag.patientID, "LO", "1234567890123"), key(Tag.issuerOfPatientID, "LO", insNIR),
             key(Tag(0x0010, 0x0022), "CS", "TEXT")],
        ]
        let study = result(QueryAttribute(tag: otherPatientIDs, vr: "SQ", items: items))
        // A zero-length sequence key: the items whole.
        let whole = try find("STUDY", QueryAttribute(tag: otherPatientIDs, vr: "SQ"))
        #expect(whole.response(for: study).last == QueryAttribute(tag: otherPatientIDs, vr: "SQ", items: items))
        // An item of keys: those keys of each item.
        let some = try find("STUDY", QueryAttribute(tag: otherPatientIDs, vr: "SQ", items: [[
            key(Tag.issuerOfPatientID, "LO"), key(Tag.patientID, "LO"), key(Tag(0x0010, 0x1000), "LO"),
        ]]))
        #expect(some.response(for: study).last == QueryAttribute(tag: otherPatientIDs, vr: "SQ", items: [[
            key(Tag.patientID, "LO", "1234567890123"), key(Tag.issuerOfPatientID, "LO", insNIR), key(Tag(0x0010, 0x1000), "LO"),
        ]]))
        // Not returned by the hub: an empty sequence.
        #expect(some.response(for: [:]).last == QueryAttribute(tag: otherPatientIDs, vr: "SQ"))
    }

    @Test func retrieveAETitleIsOurs() throws {
        var query = try find("STUDY", key(Tag.retrieveAETitle, "AE"))
        let study = result(key(Tag.retrieveAETitle, "AE", "HUB"))
        #expect(query.response(for: study).last?.values == ["HUB"])
        query.retrieveAETitle = "MIRC"
        #expect(query.response(for: study).last == key(Tag.retrieveAETitle, "AE", "MIRC"))
    }

    // MARK: PATIENT level

    @Test func patientsAreGroupedByIDAndIssuer() {
        let patients = FindQuery.patients(from: [
            study("123", "CHRU-TOURS", series: "2", instances: "100"),
            study("123", "CH-BLOIS", series: "5"),  // same ID and name, another issuer: another patient
            study("123", "CHRU-TOURS", name: "DURAND^HELENE^MARIE", series: "3", instances: "50", modalities: ["SR", "CT"]),
            study("456", "CHRU-TOURS"),
        ])
        #expect(patients.count == 3)
        #expect(patients.map { $0[Tag.issuerOfPatientID]?.values } == [["CHRU-TOURS"], ["CH-BLOIS"], ["CHRU-TOURS"]])
        #expect(patients.map { $0[Tag.patientID]?.values } == [["123"], ["123"], ["456"]])
        let tours = patients[0]
        #expect(tours[Tag.patientName]?.values == ["DURAND^HELENE"])  // the first study's
        #expect(tours[Tag.patientBirthDate]?.values == ["19800101"])
        #expect(tours[Tag.numberOfPatientRelatedStudies] == key(Tag.numberOfPatientRelatedStudies, "IS", "2"))
        #expect(tours[Tag.numberOfPatientRelatedSeries]?.values == ["5"])
        #expect(tours[Tag.numberOfPatientRelatedInstances]?.values == ["150"])
        #expect(tours[Tag.modalitiesInStudy]?.values == ["CT", "SR"])
        #expect(tours[Tag.studyInstanceUID] == nil)  // not a patient attribute
        #expect(patients[1][Tag.numberOfPatientRelatedInstances] == nil)  // the hub gave no count
        #expect(patients[2][Tag.numberOfPatientRelatedSeries] == nil)
        #expect(patients[2][Tag.numberOfPatientRelatedStudies]?.values == ["1"])
    }

    @Test func patientsWithoutIDAreNotMerged() {
        let patients = FindQuery.patients(from: [study("", "X", name: "A^B"), study("", "X", name: "C^D"), study("", "X", name: "A^B")])
        #expect(patients.map { $0[Tag.numberOfPatientRelatedStudies]?.values } == [["2"], ["1"]])
    }
}
