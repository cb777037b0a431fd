import Testing
@testable import Gateway

/// The pure query logic of the community search folders (docs/community.md): reading C-FIND,
/// C-MOVE and C-GET identifiers, translating them to QIDO-RS, re-matching the hub's results and
/// building the responses.
@Suite struct CommunityQueryTests {
    // MARK: Helpers

    func key(_ tag: UInt32, _ vr: String, _ values: String...) -> QueryAttribute {
        QueryAttribute(tag: tag, vr: vr, values: values)
    }

    func level(_ level: String) -> QueryAttribute { key(QueryTag.queryRetrieveLevel, "CS", level) }

    func find(_ level: String, _ keys: QueryAttribute..., model: QueryModel = .studyRoot) throws -> FindQuery {
        try FindQuery(identifier: [self.level(level)] + keys, model: model)
    }

    func result(_ attributes: QueryAttribute...) -> QIDOAttributes {
        Dictionary(attributes.map { ($0.tag, $0) }, uniquingKeysWith: { first, _ in first })
    }

    func findError(_ identifier: [QueryAttribute], model: QueryModel = .studyRoot) -> QueryError? {
        do {
            _ = try FindQuery(identifier: identifier, model: model)
            return nil
        } catch {
            return error
        }
    }

    func retrieveError(_ identifier: [QueryAttribute], model: QueryModel = .studyRoot) -> QueryError? {
        do {
            _ = try RetrieveQuery(identifier: identifier, model: model)
            return nil
        } catch {
            return error
        }
    }

    /// A study level query with one matching key, and whether it matches a result attribute.
    func matches(_ key: QueryAttribute, _ attribute: QueryAttribute?) throws -> Bool {
        try find("STUDY", key).matches(attribute.map { result($0) } ?? [:])
    }

    let tours = SiteDirectoryEntry(id: 401, emitter: "cstrs37000", name: "CHRU Tours", issuerOfPatientID: "CHRU-TOURS")
    let insNIR = "1.2.250.1.213.1.4.8"
    let otherPatientIDs = QueryTag.otherPatientIDsSequence

    func insKey(_ id: String, issuer: String) -> QueryAttribute {
        QueryAttribute(tag: QueryTag.otherPatientIDsSequence, vr: "SQ", items: [[
            key(QueryTag.patientID, "LO", id), key(QueryTag.issuerOfPatientID, "LO", issuer),
        ]])
    }

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

    /// The unique keys of the levels above (hierarchical queries, PS3.4 C.4.1.2.1).
    var upper: [QueryAttribute] {
        [key(QueryTag.patientID, "LO", "IPP1"), key(QueryTag.studyInstanceUID, "UI", "1.2.3"),
         key(QueryTag.seriesInstanceUID, "UI", "1.2.3.4")]
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
        #expect(findError([level("SERIES")])?.tag == QueryTag.studyInstanceUID)
        #expect(findError([level("IMAGE"), upper[1]])?.tag == QueryTag.seriesInstanceUID)
        #expect(findError([level("STUDY")], model: .patientRoot)?.tag == QueryTag.patientID)
        #expect(findError([level("SERIES"), key(QueryTag.studyInstanceUID, "UI", "1.2.*")])?.tag
                    == QueryTag.studyInstanceUID)
        #expect(QueryLevel.patient < .study && QueryLevel.series < .image)
    }

    @Test func queryRetrieveLevelIsRequiredAndValid() {
        let missing = findError([key(QueryTag.patientName, "PN", "DURAND")])
        #expect(missing?.tag == QueryTag.queryRetrieveLevel)
        #expect(missing?.message.contains("(0008,0052)") == true)
        #expect(findError([level("")])?.tag == QueryTag.queryRetrieveLevel)
        #expect(findError([level("WORKLIST")])?.tag == QueryTag.queryRetrieveLevel)
        #expect(findError([key(QueryTag.queryRetrieveLevel, "CS", "STUDY", "SERIES")]) != nil)
        let patientInStudyRoot = findError([level("PATIENT")], model: .studyRoot)
        #expect(patientInStudyRoot?.tag == QueryTag.queryRetrieveLevel)
        #expect(patientInStudyRoot?.message.contains("Study Root") == true)
        #expect(findError([level("PATIENT")], model: .patientRoot) == nil)
    }

    @Test func errorCommentsFitAnLO() {
        let errors = [
            findError([]), findError([level(String(repeating: "X", count: 80))]),
            findError([level("PATIENT")]), retrieveError([level("SERIES")]),
            retrieveError([level("STUDY"), key(QueryTag.studyInstanceUID, "UI", "1.2.*")]),
        ]
        for error in errors {
            #expect(error != nil)
            #expect((error?.message.count ?? 0) <= 64)
        }
        #expect(QueryError(String(repeating: "a", count: 100)).message.count == 64)
    }

    @Test func upperLevelUniqueKeysAreAcceptedAtLowerLevels() throws {
        let series = try find("SERIES", key(QueryTag.studyInstanceUID, "UI", "1.2.3"), key(QueryTag.modality, "CS", "CT"))
        #expect(series.level == .series)
        let image = try find("IMAGE", key(QueryTag.patientID, "LO", "123"), key(QueryTag.studyInstanceUID, "UI", "1.2.3"),
                             key(QueryTag.seriesInstanceUID, "UI", "1.2.3.4"), model: .patientRoot)
        #expect(image.matchingKeys.map(\.tag) == [QueryTag.patientID, QueryTag.studyInstanceUID, QueryTag.seriesInstanceUID])
    }

    // MARK: Requested and matching keys

    @Test func requestedKeysAreInTagOrderWithoutCharacterSetAndLevel() throws {
        let query = try FindQuery(identifier: [
            key(QueryTag.studyInstanceUID, "UI"),
            key(QueryTag.patientName, "PN", "DUR*"),
            key(QueryTag.specificCharacterSet, "CS", "ISO_IR 100"),
            level("STUDY"),
            key(QueryTag.studyDate, "DA"),
            key(0x0008_0000, "UL", "42"),  // group length: not a key
            key(QueryTag.patientName, "PN", "OTHER"),  // a repeated tag: the first one counts
        ], model: .studyRoot)
        #expect(query.requestedKeys.map(\.tag) == [QueryTag.studyDate, QueryTag.patientName, QueryTag.studyInstanceUID])
        #expect(query.matchingKeys == [key(QueryTag.patientName, "PN", "DUR*")])
    }

    @Test func universalKeysAreReturnedNotMatched() throws {
        let query = try find("STUDY",
                             key(QueryTag.patientName, "PN"),
                             key(QueryTag.patientID, "LO", "*"),
                             key(QueryTag.studyDate, "DA", "-"),
                             key(QueryTag.accessionNumber, "SH", "  "),
                             key(QueryTag.institutionName, "LO", "^"),  // not a name: a value
                             key(0x0010_1001, "PN", "^^"),  // Other Patient Names, all empty components
                             QueryAttribute(tag: otherPatientIDs, vr: "SQ"),
                             QueryAttribute(tag: 0x0008_1032, vr: "SQ", items: [[key(0x0008_0100, "SH")]]))
        #expect(query.requestedKeys.count == 8)
        #expect(query.matchingKeys.map(\.tag) == [QueryTag.institutionName])
    }

    @Test func sequenceKeyWithAValueIsMatching() throws {
        let query = try find("STUDY", insKey("1234567890123", issuer: insNIR))
        #expect(query.matchingKeys.map(\.tag) == [otherPatientIDs])
    }

    // MARK: QIDO-RS paths

    @Test func studyAndPatientLevelsSearchStudies() throws {
        #expect(try find("STUDY").qidoRequest(excludeOwnIssuer: nil).path == "studies")
        #expect(try find("PATIENT", model: .patientRoot).qidoRequest(excludeOwnIssuer: nil).path == "studies")
        // A study UID at STUDY level is a parameter, not a path.
        let request = try find("STUDY", key(QueryTag.studyInstanceUID, "UI", "1.2.3")).qidoRequest(excludeOwnIssuer: nil)
        #expect(request.path == "studies")
        #expect(request.values(of: "0020000D") == ["1.2.3"])
    }

    @Test func seriesLevelPaths() throws {
        let inStudy = try find("SERIES", key(QueryTag.studyInstanceUID, "UI", "1.2.3"), key(QueryTag.modality, "CS", "CT"))
            .qidoRequest(excludeOwnIssuer: nil)
        #expect(inStudy.path == "studies/1.2.3/series")
        #expect(inStudy.values(of: "0020000D").isEmpty)  // in the path, not repeated
        #expect(inStudy.values(of: "00080060") == ["CT"])
        #expect(inStudy.values(of: "includefield").contains("0020000D"))  // so results can say it

        let list = try find("SERIES", key(QueryTag.studyInstanceUID, "UI", "1.2.3", "1.2.4")).qidoRequest(excludeOwnIssuer: nil)
        #expect(list.path == "series")
        #expect(list.values(of: "0020000D") == ["1.2.3,1.2.4"])
    }

    @Test func imageLevelPaths() throws {
        let study = key(QueryTag.studyInstanceUID, "UI", "1.2.3")
        let series = key(QueryTag.seriesInstanceUID, "UI", "1.2.3.4")
        #expect(try find("IMAGE", study, series).qidoRequest(excludeOwnIssuer: nil).path
                    == "studies/1.2.3/series/1.2.3.4/instances")
        let seriesList = try find("IMAGE", study, key(QueryTag.seriesInstanceUID, "UI", "1.2.3.4", "1.2.3.5"))
            .qidoRequest(excludeOwnIssuer: nil)
        #expect(seriesList.path == "studies/1.2.3/instances")
        #expect(seriesList.values(of: "0020000E") == ["1.2.3.4,1.2.3.5"])
        let studies = try find("IMAGE", key(QueryTag.studyInstanceUID, "UI", "1.2.3", "1.2.4"), series)
            .qidoRequest(excludeOwnIssuer: nil)
        #expect(studies.path == "instances")
        #expect(studies.values(of: "0020000E") == ["1.2.3.4"])
    }

    // MARK: QIDO-RS parameters

    @Test func matchingKeysBecomeTagParametersAsInDICOM() throws {
        let request = try find("STUDY",
                               key(QueryTag.patientName, "PN", "DUR*"),
                               key(QueryTag.patientID, "LO", "12?4"),
                               key(QueryTag.studyDate, "DA", "20200101-20201231"),
                               key(0x0008_0030, "TM", "-1200"),
                               key(QueryTag.modalitiesInStudy, "CS", "CT", "MR"))
            .qidoRequest(excludeOwnIssuer: nil)
        let matching = request.parameters.filter { $0.name != "includefield" }
        #expect(matching.map(\.name) == ["00080020", "00080030", "00080061", "00100010", "00100020"])
        #expect(matching.map(\.value) == ["20200101-20201231", "-1200", "CT,MR", "D*", "12*"])  // `?`: prefix
    }

    @Test func includefieldForEveryRequestedKeyNotMatched() throws {
        let request = try find("STUDY",
                               key(QueryTag.patientName, "PN", "DURAND"),
                               key(QueryTag.patientBirthDate, "DA"),
                               key(0x0008_1030, "LO"),  // StudyDescription
                               key(QueryTag.studyInstanceUID, "UI"))
            .qidoRequest(excludeOwnIssuer: nil)
        #expect(request.values(of: "00100010").isEmpty)  // one word may be any name component: checked locally
        // Requested, plus what the site and report columns and PATIENT grouping need; sorted, once each.
        #expect(request.values(of: "includefield") == [
            "00080061", "00080080", "00081030", "00100010", "00100021", "00100030", "0020000D", "00201206", "00201208",
        ])
    }

    @Test func seriesLevelAsksForTheIssuerOnlyWhenNeeded() throws {
        let study = upper[1]
        let plain = try find("SERIES", study, key(QueryTag.modality, "CS")).qidoRequest(excludeOwnIssuer: nil)
        #expect(plain.values(of: "includefield") == ["00080060", "00080080", "0020000D"])
        let excluding = try find("SERIES", study, key(QueryTag.modality, "CS")).qidoRequest(excludeOwnIssuer: "CHU-X")
        #expect(excluding.values(of: "includefield") == ["00080060", "00080080", "00100021", "0020000D"])
        let site = try find("SERIES", study, key(QueryTag.producingSiteID, "IS")).qidoRequest(excludeOwnIssuer: nil)
        #expect(site.values(of: "includefield") == ["00080080", "00100021", "0020000D"])
    }

    @Test func computedKeysAreNotSentToTheHub() throws {
        let request = try find("STUDY",
                               key(QueryTag.institutionName, "LO", "CHRU Tours"),
                               key(QueryTag.privateCreator, "LO", "PASSERELLE"),
                               key(QueryTag.producingSiteID, "IS", "401"),
                               key(QueryTag.reportPresent, "CS", "YES"))
            .qidoRequest(excludeOwnIssuer: nil)
        #expect(request.parameters.allSatisfy { $0.name == "includefield" })
        #expect(!request.values(of: "includefield").contains { $0.hasPrefix("0009") })
        #expect(request.values(of: "includefield").contains("00080080"))

        let patient = try find("PATIENT", key(QueryTag.numberOfPatientRelatedStudies, "IS"), model: .patientRoot)
            .qidoRequest(excludeOwnIssuer: nil)
        #expect(!patient.values(of: "includefield").contains("00201200"))
    }

    @Test func namesAreSentAsAPrefixTheHubCannotMisreadForAccents() throws {
        func sent(_ name: String) throws -> [String] {
            try find("STUDY", key(QueryTag.patientName, "PN", name)).qidoRequest(excludeOwnIssuer: nil).values(of: "00100010")
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

    @Test func insIsSentAsNestedAttributeMatching() throws {
        let request = try find("STUDY", insKey("1234567890123", issuer: insNIR), key(QueryTag.patientName, "PN"))
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
                               QueryAttribute(tag: 0x0008_1032, vr: "SQ", items: [[key(0x0008_0100, "SH", "ABC")]]))
            .qidoRequest(excludeOwnIssuer: nil)
        #expect(request.parameters.allSatisfy { $0.name == "includefield" })
        #expect(request.values(of: "includefield").contains("00081032"))
    }

    @Test func paging() throws {
        let request = try find("STUDY", key(QueryTag.patientName, "PN", "DUR*")).qidoRequest(excludeOwnIssuer: nil)
        let page = request.withPaging(limit: 100, offset: 200)
        #expect(page.parameters.count == request.parameters.count + 2)
        #expect(page.values(of: "limit") == ["100"])
        #expect(page.values(of: "offset") == ["200"])
        let next = page.withPaging(limit: 100, offset: 300)
        #expect(next.values(of: "offset") == ["300"])
        #expect(next.parameters.count == page.parameters.count)
        #expect(next.path == request.path)
    }

    @Test func pathAndQueryIsPercentEncoded() {
        let request = QIDORequest(path: "studies", parameters: [
            (name: "00100010", value: "DUR*^H?"), (name: "0020000D", value: "1.2,1.3"), (name: "00080020", value: "2020-"),
        ])
        #expect(request.pathAndQuery == "studies?00100010=DUR*%5EH%3F&0020000D=1.2,1.3&00080020=2020-")
        #expect(QIDORequest(path: "series").pathAndQuery == "series")
        #expect(request == QIDORequest(path: "studies", parameters: request.parameters))
        #expect(request != QIDORequest(path: "studies", parameters: Array(request.parameters.reversed())))
    }

    // MARK: Local matching: single values and names

    @Test func namesMatchWithoutCaseNorAccents() throws {
        let helene = key(QueryTag.patientName, "PN", "Durand^Hélène")
        #expect(try matches(key(QueryTag.patientName, "PN", "DURAND^HELENE"), helene))
        #expect(try matches(key(QueryTag.patientName, "PN", "durand^hélène"), helene))
        #expect(try matches(key(QueryTag.patientName, "PN", "DURAND^HELENE^^"), helene))
        #expect(try matches(key(QueryTag.patientName, "PN", " DURAND^HELENE "), helene))
        #expect(try matches(key(QueryTag.patientName, "PN", "DURAND^HELENE"), key(QueryTag.patientName, "PN", "DURAND^HELENE^^^")))
        #expect(try !matches(key(QueryTag.patientName, "PN", "DURAND^HELENA"), helene))
        // One word is looked for among the components (fuzzy semantic matching of names).
        #expect(try matches(key(QueryTag.patientName, "PN", "DURAND"), helene))
        #expect(try matches(key(QueryTag.patientName, "PN", "HELENE"), helene))
        #expect(try !matches(key(QueryTag.patientName, "PN", "HELEN"), helene))
        #expect(try !matches(key(QueryTag.patientName, "PN", "DURANT"), helene))
    }

    @Test func nameWildcards() throws {
        let helene = key(QueryTag.patientName, "PN", "DURAND^HÉLÈNE")
        #expect(try matches(key(QueryTag.patientName, "PN", "DUR*"), helene))
        #expect(try matches(key(QueryTag.patientName, "PN", "dur*"), helene))
        #expect(try matches(key(QueryTag.patientName, "PN", "DURAND^HEL*"), helene))
        #expect(try matches(key(QueryTag.patientName, "PN", "*^HELENE"), helene))
        #expect(try matches(key(QueryTag.patientName, "PN", "DURAN?^HELENE"), helene))
        #expect(try !matches(key(QueryTag.patientName, "PN", "DURA?^HELENE"), helene))
        #expect(try !matches(key(QueryTag.patientName, "PN", "DUP*"), helene))
        #expect(try matches(key(QueryTag.patientName, "PN", "DURAND^*"), key(QueryTag.patientName, "PN", "DURAND")))
    }

    @Test func nameComponentGroups() throws {
        let yamada = key(QueryTag.patientName, "PN", "Yamada^Tarou=山田^太郎=やまだ^たろう")
        #expect(try matches(key(QueryTag.patientName, "PN", "YAMADA^TAROU"), yamada))
        #expect(try matches(key(QueryTag.patientName, "PN", "=山田^太郎"), yamada))
        #expect(try !matches(key(QueryTag.patientName, "PN", "=山田^花子"), yamada))
        // The result has no ideographic form: the alphabetic group decides.
        #expect(try matches(key(QueryTag.patientName, "PN", "Yamada^Tarou=山田^太郎"), key(QueryTag.patientName, "PN", "YAMADA^TAROU")))
        #expect(try !matches(key(QueryTag.patientName, "PN", "=山田^太郎"), key(QueryTag.patientName, "PN", "YAMADA^TAROU")))
    }

    @Test func otherTextIsCaseSensitiveWithWildcards() throws {
        let description = key(0x0008_1030, "LO", "Scanner thorax")
        #expect(try matches(key(0x0008_1030, "LO", "*thorax*"), description))
        #expect(try matches(key(0x0008_1030, "LO", "Scanner?thorax"), description))
        #expect(try !matches(key(0x0008_1030, "LO", "*THORAX*"), description))
        #expect(try matches(key(0x0008_1030, "LO", "Scanner thorax "), description))
        #expect(try !matches(key(0x0008_1030, "LO", "Scanner"), description))
        #expect(try matches(key(QueryTag.accessionNumber, "SH", "A12*"), key(QueryTag.accessionNumber, "SH", "A1234")))
    }

    @Test func uidsMatchExactlyAndByList() throws {
        let uid = key(QueryTag.studyInstanceUID, "UI", "1.2.3")
        #expect(try matches(key(QueryTag.studyInstanceUID, "UI", "1.2.3"), uid))
        #expect(try matches(key(QueryTag.studyInstanceUID, "UI", "1.2.3\0"), uid))
        #expect(try !matches(key(QueryTag.studyInstanceUID, "UI", "1.2.30"), uid))
        #expect(try !matches(key(QueryTag.studyInstanceUID, "UI", "1.2.*"), uid))  // no wildcard on UIDs
        #expect(try matches(key(QueryTag.studyInstanceUID, "UI", "1.2.4", "1.2.3"), uid))
        #expect(try !matches(key(QueryTag.studyInstanceUID, "UI", "1.2.4", "1.2.5"), uid))
    }

    @Test func multiValuedResultsMatchByAnyValue() throws {
        let modalities = key(QueryTag.modalitiesInStudy, "CS", "CT", "SR")
        #expect(try matches(key(QueryTag.modalitiesInStudy, "CS", "SR"), modalities))
        #expect(try matches(key(QueryTag.modalitiesInStudy, "CS", "MR", "CT"), modalities))
        #expect(try !matches(key(QueryTag.modalitiesInStudy, "CS", "MR"), modalities))
    }

    @Test func numbers() throws {
        #expect(try matches(key(QueryTag.numberOfStudyRelatedSeries, "IS", "3"), key(QueryTag.numberOfStudyRelatedSeries, "IS", "03")))
        #expect(try !matches(key(QueryTag.numberOfStudyRelatedSeries, "IS", "3"), key(QueryTag.numberOfStudyRelatedSeries, "IS", "4")))
        #expect(try matches(key(0x0028_0010, "US", "512"), key(0x0028_0010, "US", "512")))
        #expect(try !matches(key(0x0028_0010, "US", "5*"), key(0x0028_0010, "US", "512")))  // no wildcard on binary numbers
    }

    // MARK: Local matching: ranges

    @Test func dateRanges() throws {
        let date = key(QueryTag.studyDate, "DA", "20200615")
        #expect(try matches(key(QueryTag.studyDate, "DA", "20200615"), date))
        #expect(try !matches(key(QueryTag.studyDate, "DA", "20200616"), date))
        #expect(try matches(key(QueryTag.studyDate, "DA", "20200101-20201231"), date))
        #expect(try matches(key(QueryTag.studyDate, "DA", "20200615-20200615"), date))
        #expect(try !matches(key(QueryTag.studyDate, "DA", "20210101-20211231"), date))
        #expect(try matches(key(QueryTag.studyDate, "DA", "20200101-"), date))
        #expect(try !matches(key(QueryTag.studyDate, "DA", "20200616-"), date))
        #expect(try matches(key(QueryTag.studyDate, "DA", "-20201231"), date))
        #expect(try !matches(key(QueryTag.studyDate, "DA", "-20200614"), date))
        #expect(try !matches(key(QueryTag.studyDate, "DA", "2020*"), date))  // no wildcard on dates
        #expect(try !matches(key(QueryTag.studyDate, "DA", "20200101-"), key(QueryTag.studyDate, "DA", "junk")))
        #expect(try matches(key(QueryTag.studyDate, "DA", "20200101", "20200615"), date))
    }

    @Test func timeRangesCompareNormalizedTimes() throws {
        let time = key(0x0008_0030, "TM", "103015.5")
        #expect(try matches(key(0x0008_0030, "TM", "1000-1100"), time))
        #expect(try matches(key(0x0008_0030, "TM", "10-10"), time))  // the whole hour
        #expect(try matches(key(0x0008_0030, "TM", "103015-"), time))
        #expect(try !matches(key(0x0008_0030, "TM", "103016-"), time))
        #expect(try matches(key(0x0008_0030, "TM", "-1030"), time))  // up to the end of 10:30
        #expect(try !matches(key(0x0008_0030, "TM", "-1029"), time))
        #expect(try matches(key(0x0008_0030, "TM", "103015.500000"), time))
        #expect(try matches(key(0x0008_0030, "TM", "0900-1100"), key(0x0008_0030, "TM", "10:30:15")))
    }

    @Test func dateTimeRanges() throws {
        let dateTime = key(0x0008_002A, "DT", "20200615103000")
        #expect(try matches(key(0x0008_002A, "DT", "20200615-20200615"), dateTime))
        #expect(try matches(key(0x0008_002A, "DT", "2020-2021"), dateTime))
        #expect(try matches(key(0x0008_002A, "DT", "202006151030-"), dateTime))
        #expect(try !matches(key(0x0008_002A, "DT", "202006151031-"), dateTime))
        #expect(try matches(key(0x0008_002A, "DT", "-202006151030"), dateTime))
        #expect(try matches(key(0x0008_002A, "DT", "20200615103000-0500"), dateTime))  // an offset, not a range
    }

    // MARK: Local matching: missing attributes, sequences, computed keys

    @Test func missingAttributesMatchExceptIdentifyingOnes() throws {
        #expect(try matches(key(0x0008_1030, "LO", "*thorax*"), nil))
        #expect(try matches(key(QueryTag.patientBirthDate, "DA", "19800101"), nil))
        for tag in [QueryTag.patientName, QueryTag.patientID, QueryTag.studyInstanceUID, QueryTag.accessionNumber,
                    QueryTag.studyDate, QueryTag.modalitiesInStudy] {
            let vr = [QueryTag.patientName: "PN", QueryTag.studyInstanceUID: "UI", QueryTag.studyDate: "DA"][tag] ?? "LO"
            #expect(try !matches(key(tag, vr, "20200101"), nil))
        }
        // Present but empty: matched as an empty value.
        #expect(try !matches(key(0x0008_1030, "LO", "*thorax*"), key(0x0008_1030, "LO")))
    }

    @Test func seriesAndInstanceUIDsAreRequiredAtLowerLevels() throws {
        let studies = key(QueryTag.studyInstanceUID, "UI", "1.2.3", "1.2.4")  // a list: not in the path
        let series = try find("SERIES", studies, key(QueryTag.seriesInstanceUID, "UI", "1.2.3.4"))
        #expect(!series.matches(result(key(QueryTag.modality, "CS", "CT"), key(QueryTag.studyInstanceUID, "UI", "1.2.3"))))
        #expect(series.matches(result(key(QueryTag.seriesInstanceUID, "UI", "1.2.3.4"),
                                      key(QueryTag.studyInstanceUID, "UI", "1.2.3"))))
        let image = try find("IMAGE", upper[1], upper[2], key(QueryTag.sopInstanceUID, "UI", "1.2.3.4.5"))
        #expect(!image.matches([:]))
        let modality = try find("SERIES", studies, key(QueryTag.modality, "CS", "CT"))
        #expect(!modality.matches([:]))
    }

    @Test func aUIDInThePathMayBeAbsentFromResults() throws {
        let query = try find("SERIES", key(QueryTag.studyInstanceUID, "UI", "1.2.3"), key(QueryTag.modality, "CS", "CT"))
        #expect(query.matches(result(key(QueryTag.modality, "CS", "CT"))))
        #expect(!query.matches(result(key(QueryTag.modality, "CS", "CT"), key(QueryTag.studyInstanceUID, "UI", "1.2.4"))))
        // Not in the path (a list): required.
        let list = try find("SERIES", key(QueryTag.studyInstanceUID, "UI", "1.2.3", "1.2.4"))
        #expect(!list.matches([:]))
    }

    @Test func insSequenceMatching() throws {
        let query = try find("STUDY", insKey("1234567890123", issuer: insNIR))
        func other(_ id: String, _ issuer: String) -> QueryAttribute {
            QueryAttribute(tag: otherPatientIDs, vr: "SQ", items: [
                [key(QueryTag.patientID, "LO", "IPP42"), key(QueryTag.issuerOfPatientID, "LO", "CHU-X")],
                [key(QueryTag.patientID, "LO", id), key(QueryTag.issuerOfPatientID, "LO", issuer),
                 key(0x0010_0022, "CS", "TEXT")],
            ])
        }
        #expect(query.matches(result(other("1234567890123", insNIR))))
        #expect(!query.matches(result(other("1234567890123", "1.2.250.1.213.1.4.10"))))  // same number, test INS
        #expect(!query.matches(result(other("9999999999999", insNIR))))
        #expect(!query.matches(result(QueryAttribute(tag: otherPatientIDs, vr: "SQ"))))
        // Without the sequence the hub cannot vouch for the INS: matched on the other keys, flagged.
        let unverified = result(key(QueryTag.patientID, "LO", "IPP42"))
        #expect(query.matches(unverified))
        #expect(query.insUnverified(unverified))
        #expect(!query.insUnverified(result(other("1234567890123", insNIR))))
        #expect(query.searchesByINS && !query.hasKeysBesidesINS)
        #expect(try find("STUDY", insKey("1", issuer: insNIR), key(QueryTag.patientName, "PN", "DURAND^HELENE"))
                    .hasKeysBesidesINS)
    }

    @Test func computedKeysAreMatchedAgainstTheirValues() throws {
        let site = try find("STUDY", key(QueryTag.producingSiteID, "IS", "401"))
        #expect(site.matches([:], site: tours))
        #expect(!site.matches([:], site: SiteDirectoryEntry(id: 402, emitter: "e", name: "n", issuerOfPatientID: "I")))
        #expect(!site.matches([:], site: nil))
        let report = try find("STUDY", key(QueryTag.reportPresent, "CS", "YES"))
        #expect(report.matches(result(key(QueryTag.modalitiesInStudy, "CS", "CT", "SR"))))
        #expect(!report.matches(result(key(QueryTag.modalitiesInStudy, "CS", "CT"))))
        let institution = try find("STUDY", key(QueryTag.institutionName, "LO", "CHRU*"))
        #expect(institution.matches(result(key(QueryTag.institutionName, "LO", "Hôpital")), site: tours))
        #expect(!institution.matches(result(key(QueryTag.institutionName, "LO", "Hôpital")), site: nil))
    }

    @Test func everyMatchingKeyMustMatch() throws {
        let query = try find("STUDY", key(QueryTag.patientName, "PN", "DUR*"), key(QueryTag.studyDate, "DA", "2020-"),
                             key(QueryTag.studyDate, "DA"))
        let study = result(key(QueryTag.patientName, "PN", "DURAND^HELENE"), key(QueryTag.studyDate, "DA", "20200615"))
        #expect(try find("STUDY", key(QueryTag.patientName, "PN", "DUR*"), key(QueryTag.studyDate, "DA", "20200101-"))
                    .matches(study))
        #expect(try !find("STUDY", key(QueryTag.patientName, "PN", "DUR*"), key(QueryTag.studyDate, "DA", "20210101-"))
                    .matches(study))
        #expect(query.matchingKeys.count == 2)
    }

    // MARK: Responses

    @Test func responseHasExactlyTheRequestedKeysAndTheLevel() throws {
        let query = try FindQuery(identifier: [
            key(QueryTag.specificCharacterSet, "CS", "ISO_IR 100"), level("STUDY"),
            key(QueryTag.studyInstanceUID, "UI"), key(QueryTag.patientName, "PN", "DUR*"),
            key(0x0008_1030, "LO"), key(QueryTag.modalitiesInStudy, "CS"),
        ], model: .studyRoot)
        let response = query.response(for: result(
            key(QueryTag.patientName, "PN", "DURAND^HELENE"), key(QueryTag.studyInstanceUID, "UI", "1.2.3"),
            key(QueryTag.modalitiesInStudy, "CS", "CT", "SR"), key(QueryTag.patientID, "LO", "not requested"),
            key(QueryTag.studyDate, "DA", "20200615"),
        ), site: nil)
        #expect(response == [
            key(QueryTag.queryRetrieveLevel, "CS", "STUDY"),
            key(QueryTag.modalitiesInStudy, "CS", "CT", "SR"),
            key(0x0008_1030, "LO"),  // not returned by the hub: empty
            key(QueryTag.patientName, "PN", "DURAND^HELENE"),
            key(QueryTag.studyInstanceUID, "UI", "1.2.3"),
        ])
    }

    @Test func responseKeepsTheHubsVR() throws {
        let query = try find("STUDY", key(0x0011_1001, "UN"), key(0x0010_1010, "UN"))
        let response = query.response(for: result(key(0x0010_1010, "AS", "042Y")), site: nil)
        #expect(response.first { $0.tag == 0x0010_1010 } == key(0x0010_1010, "AS", "042Y"))
        #expect(response.first { $0.tag == 0x0011_1001 } == key(0x0011_1001, "UN"))
    }

    @Test func pathUIDsAreReturnedWhenTheHubLeavesThemOut() throws {
        let query = try find("IMAGE", key(QueryTag.studyInstanceUID, "UI", "1.2.3"),
                             key(QueryTag.seriesInstanceUID, "UI", "1.2.3.4"), key(QueryTag.sopInstanceUID, "UI"))
        let response = query.response(for: result(key(QueryTag.sopInstanceUID, "UI", "1.2.3.4.5")), site: nil)
        #expect(response.map(\.values) == [["1.2.3.4.5"], ["IMAGE"], ["1.2.3"], ["1.2.3.4"]])  // (0008,0018) first
    }

    @Test func siteColumnsInTheResponse() throws {
        let query = try find("STUDY", key(QueryTag.institutionName, "LO"), key(QueryTag.producingSiteID, "IS"),
                             key(QueryTag.producingSiteEmitter, "LO"), key(QueryTag.reportPresent, "CS"))
        let study = result(key(QueryTag.institutionName, "LO", "CHU DE TOURS"), key(QueryTag.modalitiesInStudy, "CS", "CT", "DOC"))
        #expect(query.response(for: study, site: tours) == [
            key(QueryTag.queryRetrieveLevel, "CS", "STUDY"),
            key(QueryTag.institutionName, "LO", "CHRU Tours"),
            key(QueryTag.privateCreator, "LO", "PASSERELLE"),  // added: the private keys need their creator
            key(QueryTag.producingSiteID, "IS", "401"),
            key(QueryTag.producingSiteEmitter, "LO", "cstrs37000"),
            key(QueryTag.reportPresent, "CS", "YES"),
        ])
        // Unknown site: the hub's institution, empty site columns.
        #expect(query.response(for: study, site: nil).map(\.values) == [
            ["STUDY"], ["CHU DE TOURS"], ["PASSERELLE"], [], [], ["YES"],
        ])
    }

    @Test func reportFlag() throws {
        let query = try find("STUDY", key(QueryTag.reportPresent, "CS"))
        func flag(_ attributes: QueryAttribute...) -> [String]? {
            query.response(for: result(attributes: attributes), site: nil).first { $0.tag == QueryTag.reportPresent }?.values
        }
        #expect(flag(key(QueryTag.modalitiesInStudy, "CS", "CT", "SR")) == ["YES"])
        #expect(flag(key(QueryTag.modalitiesInStudy, "CS", "DOC")) == ["YES"])
        #expect(flag(key(QueryTag.modalitiesInStudy, "CS", "CT", "MR")) == ["NO"])
        #expect(flag() == ["NO"])
        #expect(flag(key(QueryTag.modality, "CS", "SR")) == ["YES"])  // a series
    }

    func result(attributes: [QueryAttribute]) -> QIDOAttributes {
        Dictionary(attributes.map { ($0.tag, $0) }, uniquingKeysWith: { first, _ in first })
    }

    @Test func privateCreatorRequestedAlone() throws {
        let query = try find("STUDY", key(QueryTag.privateCreator, "LO"))
        #expect(query.response(for: [:], site: tours) == [
            key(QueryTag.queryRetrieveLevel, "CS", "STUDY"), key(QueryTag.privateCreator, "LO", "PASSERELLE"),
        ])
    }

    @Test func anotherPrivateCreatorsBlockIsNotOurs() throws {
        let query = try find("STUDY", key(QueryTag.privateCreator, "LO", "OTHER"), key(QueryTag.producingSiteID, "UN"))
        #expect(query.response(for: [:], site: tours) == [
            key(QueryTag.queryRetrieveLevel, "CS", "STUDY"), key(QueryTag.privateCreator, "LO"),
            key(QueryTag.producingSiteID, "UN"),
        ])
    }

    @Test func sequencesInTheResponse() throws {
        let items = [
            [key(QueryTag.patientID, "LO", "1234567890123"), key(QueryTag.issuerOfPatientID, "LO", insNIR),
             key(0x0010_0022, "CS", "TEXT")],
        ]
        let study = result(QueryAttribute(tag: otherPatientIDs, vr: "SQ", items: items))
        // A zero-length sequence key: the items whole.
        let whole = try find("STUDY", QueryAttribute(tag: otherPatientIDs, vr: "SQ"))
        #expect(whole.response(for: study, site: nil).last == QueryAttribute(tag: otherPatientIDs, vr: "SQ", items: items))
        // An item of keys: those keys of each item.
        let some = try find("STUDY", QueryAttribute(tag: otherPatientIDs, vr: "SQ", items: [[
            key(QueryTag.issuerOfPatientID, "LO"), key(QueryTag.patientID, "LO"), key(0x0010_1000, "LO"),
        ]]))
        #expect(some.response(for: study, site: nil).last == QueryAttribute(tag: otherPatientIDs, vr: "SQ", items: [[
            key(QueryTag.patientID, "LO", "1234567890123"), key(QueryTag.issuerOfPatientID, "LO", insNIR), key(0x0010_1000, "LO"),
        ]]))
        // Not returned by the hub: an empty sequence.
        #expect(some.response(for: [:], site: nil).last == QueryAttribute(tag: otherPatientIDs, vr: "SQ"))
    }

    @Test func retrieveAETitleIsOurs() throws {
        var query = try find("STUDY", key(QueryTag.retrieveAETitle, "AE"))
        let study = result(key(QueryTag.retrieveAETitle, "AE", "HUB"))
        #expect(query.response(for: study, site: nil).last?.values == ["HUB"])
        query.retrieveAETitle = "MIRC"
        #expect(query.response(for: study, site: nil).last == key(QueryTag.retrieveAETitle, "AE", "MIRC"))
    }

    // MARK: Sites

    @Test func siteByIssuerOfPatientID() {
        let directory = [tours, SiteDirectoryEntry(id: 402, emitter: "e402", name: "CH Blois", issuerOfPatientID: "CH-BLOIS")]
        #expect(FindQuery.site(for: result(key(QueryTag.issuerOfPatientID, "LO", "CH-BLOIS ")), in: directory)?.id == 402)
        #expect(FindQuery.site(for: result(key(QueryTag.issuerOfPatientID, "LO", "CHRU-TOURS")), in: directory) == tours)
        #expect(FindQuery.site(for: result(key(QueryTag.issuerOfPatientID, "LO", "chru-tours")), in: directory) == nil)
        #expect(FindQuery.site(for: result(key(QueryTag.issuerOfPatientID, "LO")), in: directory) == nil)
        #expect(FindQuery.site(for: [:], in: directory) == nil)
    }

    @Test func ownSite() {
        let own = result(key(QueryTag.issuerOfPatientID, "LO", "CHRU-TOURS "))
        #expect(FindQuery.isOwnSite(own, ownIssuer: "CHRU-TOURS"))
        #expect(!FindQuery.isOwnSite(own, ownIssuer: "CH-BLOIS"))
        #expect(!FindQuery.isOwnSite([:], ownIssuer: "CHRU-TOURS"))
        #expect(!FindQuery.isOwnSite(result(key(QueryTag.issuerOfPatientID, "LO")), ownIssuer: ""))
    }

    // MARK: PATIENT level

    func study(_ id: String, _ issuer: String, name: String = "DURAND^HELENE", series: String? = nil,
               instances: String? = nil, modalities: [String] = ["CT"]) -> QIDOAttributes {
        var attributes = result(key(QueryTag.patientID, "LO", id), key(QueryTag.issuerOfPatientID, "LO", issuer),
                                key(QueryTag.patientName, "PN", name), key(QueryTag.patientBirthDate, "DA", "19800101"),
                                key(QueryTag.studyInstanceUID, "UI", "1.2.\(id).\(issuer.count)"),
                                QueryAttribute(tag: QueryTag.modalitiesInStudy, vr: "CS", values: modalities))
        if let series { attributes[QueryTag.numberOfStudyRelatedSeries] = key(QueryTag.numberOfStudyRelatedSeries, "IS", series) }
        if let instances {
            attributes[QueryTag.numberOfStudyRelatedInstances] = key(QueryTag.numberOfStudyRelatedInstances, "IS", instances)
        }
        return attributes
    }

    @Test func patientsAreGroupedByIDAndIssuer() {
        let patients = FindQuery.patients(from: [
            study("123", "CHRU-TOURS", series: "2", instances: "100"),
            study("123", "CH-BLOIS", series: "5"),  // same ID and name, another issuer: another patient
            study("123", "CHRU-TOURS", name: "DURAND^HELENE^MARIE", series: "3", instances: "50", modalities: ["SR", "CT"]),
            study("456", "CHRU-TOURS"),
        ])
        #expect(patients.count == 3)
        #expect(patients.map { $0[QueryTag.issuerOfPatientID]?.values } == [["CHRU-TOURS"], ["CH-BLOIS"], ["CHRU-TOURS"]])
        #expect(patients.map { $0[QueryTag.patientID]?.values } == [["123"], ["123"], ["456"]])
        let tours = patients[0]
        #expect(tours[QueryTag.patientName]?.values == ["DURAND^HELENE"])  // the first study's
        #expect(tours[QueryTag.patientBirthDate]?.values == ["19800101"])
        #expect(tours[QueryTag.numberOfPatientRelatedStudies] == key(QueryTag.numberOfPatientRelatedStudies, "IS", "2"))
        #expect(tours[QueryTag.numberOfPatientRelatedSeries]?.values == ["5"])
        #expect(tours[QueryTag.numberOfPatientRelatedInstances]?.values == ["150"])
        #expect(tours[QueryTag.modalitiesInStudy]?.values == ["CT", "SR"])
        #expect(tours[QueryTag.studyInstanceUID] == nil)  // not a patient attribute
        #expect(patients[1][QueryTag.numberOfPatientRelatedInstances] == nil)  // the hub gave no count
        #expect(patients[2][QueryTag.numberOfPatientRelatedSeries] == nil)
        #expect(patients[2][QueryTag.numberOfPatientRelatedStudies]?.values == ["1"])
    }

    @Test func patientsWithoutIDAreNotMerged() {
        let patients = FindQuery.patients(from: [study("", "X", name: "A^B"), study("", "X", name: "C^D"), study("", "X", name: "A^B")])
        #expect(patients.map { $0[QueryTag.numberOfPatientRelatedStudies]?.values } == [["2"], ["1"]])
    }

    @Test func patientLevelResponse() throws {
        let query = try find("PATIENT", key(QueryTag.patientName, "PN", "dur*"), key(QueryTag.patientID, "LO"),
                             key(QueryTag.issuerOfPatientID, "LO"), key(QueryTag.numberOfPatientRelatedStudies, "IS"),
                             key(QueryTag.producingSiteID, "IS"), model: .patientRoot)
        let studies = [study("123", "CHRU-TOURS"), study("123", "CHRU-TOURS"), study("9", "CHRU-TOURS", name: "MARTIN")]
            .filter { query.matches($0) }
        let patients = FindQuery.patients(from: studies)
        #expect(patients.count == 1)
        let response = query.response(for: patients[0], site: FindQuery.site(for: patients[0], in: [tours]))
        #expect(response.map(\.tag) == [QueryTag.queryRetrieveLevel, QueryTag.privateCreator, QueryTag.producingSiteID,
                                        QueryTag.patientName, QueryTag.patientID, QueryTag.issuerOfPatientID,
                                        QueryTag.numberOfPatientRelatedStudies])
        #expect(response.map(\.values) == [["PATIENT"], ["PASSERELLE"], ["401"], ["DURAND^HELENE"], ["123"],
                                           ["CHRU-TOURS"], ["2"]])
    }

    // MARK: C-MOVE and C-GET identifiers

    @Test func retrieveStudies() throws {
        let query = try RetrieveQuery(identifier: [
            level("STUDY"), key(QueryTag.studyInstanceUID, "UI", "1.2.3", "1.2.4 "), key(QueryTag.patientID, "LO", "123"),
        ], model: .studyRoot)
        #expect(query.level == .study)
        #expect(query.studyUIDs == ["1.2.3", "1.2.4"])
        #expect(query.seriesUIDs.isEmpty && query.sopInstanceUIDs.isEmpty)
        #expect(query.patientID == "123")
    }

    @Test func retrieveSplitsBackslashLists() throws {
        let query = try RetrieveQuery(identifier: [level("SERIES"), key(QueryTag.seriesInstanceUID, "UI", "1.2\\1.3")],
                                      model: .studyRoot)
        #expect(query.seriesUIDs == ["1.2", "1.3"])
        #expect(query.studyUIDs.isEmpty)
    }

    @Test func retrieveSeriesAndInstances() throws {
        let series = try RetrieveQuery(identifier: [
            level("SERIES"), key(QueryTag.studyInstanceUID, "UI", "1.2.3"), key(QueryTag.seriesInstanceUID, "UI", "1.2.3.4"),
        ], model: .patientRoot)
        #expect(series.studyUIDs == ["1.2.3"] && series.seriesUIDs == ["1.2.3.4"])
        let image = try RetrieveQuery(identifier: [
            level("IMAGE"), key(QueryTag.studyInstanceUID, "UI", "1.2.3"), key(QueryTag.seriesInstanceUID, "UI", "1.2.3.4"),
            key(QueryTag.sopInstanceUID, "UI", "1.2.3.4.5", "1.2.3.4.6"),
        ], model: .studyRoot)
        #expect(image.level == .image)
        #expect(image.sopInstanceUIDs == ["1.2.3.4.5", "1.2.3.4.6"])
    }

    @Test func retrievePatient() throws {
        let query = try RetrieveQuery(identifier: [
            level("PATIENT"), key(QueryTag.patientID, "LO", "123 "), key(QueryTag.issuerOfPatientID, "LO", "CHRU-TOURS"),
        ], model: .patientRoot)
        #expect(query.level == .patient)
        #expect(query.patientID == "123")
        #expect(query.issuerOfPatientID == "CHRU-TOURS")
        let noIssuer = try RetrieveQuery(identifier: [level("PATIENT"), key(QueryTag.patientID, "LO", "123")], model: .patientRoot)
        #expect(noIssuer.issuerOfPatientID == nil)
    }

    @Test func retrieveNeedsTheLevelsUniqueKey() {
        #expect(retrieveError([level("STUDY")])?.tag == QueryTag.studyInstanceUID)
        #expect(retrieveError([level("STUDY"), key(QueryTag.studyInstanceUID, "UI")])?.tag == QueryTag.studyInstanceUID)
        #expect(retrieveError([level("SERIES"), key(QueryTag.studyInstanceUID, "UI", "1.2.3")])?.tag == QueryTag.seriesInstanceUID)
        #expect(retrieveError([level("IMAGE"), key(QueryTag.seriesInstanceUID, "UI", "1.2")])?.tag == QueryTag.sopInstanceUID)
        #expect(retrieveError([level("PATIENT"), key(QueryTag.patientName, "PN", "DURAND")], model: .patientRoot)?.tag
                    == QueryTag.patientID)
        #expect(retrieveError([level("STUDY")])?.message == "Study Instance UID (0020,000D) is missing")
    }

    @Test func retrieveRefusesBadIdentifiers() {
        #expect(retrieveError([key(QueryTag.studyInstanceUID, "UI", "1.2.3")])?.tag == QueryTag.queryRetrieveLevel)
        #expect(retrieveError([level("PATIENT"), key(QueryTag.patientID, "LO", "123")], model: .studyRoot)?.tag
                    == QueryTag.queryRetrieveLevel)
        #expect(retrieveError([level("STUDY"), key(QueryTag.studyInstanceUID, "UI", "*")])?.tag == QueryTag.studyInstanceUID)
        #expect(retrieveError([level("PATIENT"), key(QueryTag.patientID, "LO", "12*")], model: .patientRoot)?.tag
                    == QueryTag.patientID)
        #expect(retrieveError([level("PATIENT"), key(QueryTag.patientID, "LO", "1", "2")], model: .patientRoot)?.tag
                    == QueryTag.patientID)
    }
}
