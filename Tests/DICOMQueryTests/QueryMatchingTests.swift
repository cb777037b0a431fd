import DICOMCore
import QueryTestSupport
import Testing
@testable import DICOMQuery

/// Attribute matching of PS3.4 C.2.2.2 on a STUDY level query: names without case nor accents,
/// wildcards, ranges, lists, missing attributes.
@Suite struct QueryMatchingTests: QueryFixtures {
    // MARK: Single values and names

    @Test func namesMatchWithoutCaseNorAccents() throws {
        let helene = key(Tag.patientName, "PN", "Durand^Hélène")
        #expect(try matches(key(Tag.patientName, "PN", "DURAND^HELENE"), helene))
        #expect(try matches(key(Tag.patientName, "PN", "durand^hélène"), helene))
        #expect(try matches(key(Tag.patientName, "PN", "DURAND^HELENE^^"), helene))
        #expect(try matches(key(Tag.patientName, "PN", " DURAND^HELENE "), helene))
        #expect(try matches(key(Tag.patientName, "PN", "DURAND^HELENE"), key(Tag.patientName, "PN", "DURAND^HELENE^^^")))
        #expect(try !matches(key(Tag.patientName, "PN", "DURAND^HELENA"), helene))
        // One word is looked for among the components (fuzzy semantic matching of names).
        #expect(try matches(key(Tag.patientName, "PN", "DURAND"), helene))
        #expect(try matches(key(Tag.patientName, "PN", "HELENE"), helene))
        #expect(try !matches(key(Tag.patientName, "PN", "HELEN"), helene))
        #expect(try !matches(key(Tag.patientName, "PN", "DURANT"), helene))
    }

    @Test func nameWildcards() throws {
        let helene = key(Tag.patientName, "PN", "DURAND^HÉLÈNE")
        #expect(try matches(key(Tag.patientName, "PN", "DUR*"), helene))
        #expect(try matches(key(Tag.patientName, "PN", "dur*"), helene))
        #expect(try matches(key(Tag.patientName, "PN", "DURAND^HEL*"), helene))
        #expect(try matches(key(Tag.patientName, "PN", "*^HELENE"), helene))
        #expect(try matches(key(Tag.patientName, "PN", "DURAN?^HELENE"), helene))
        #expect(try !matches(key(Tag.patientName, "PN", "DURA?^HELENE"), helene))
        #expect(try !matches(key(Tag.patientName, "PN", "DUP*"), helene))
        #expect(try matches(key(Tag.patientName, "PN", "DURAND^*"), key(Tag.patientName, "PN", "DURAND")))
    }

    @Test func nameComponentGroups() throws {
        let yamada = key(Tag.patientName, "PN", "Yamada^Tarou=山田^太郎=やまだ^たろう")
        #expect(try matches(key(Tag.patientName, "PN", "YAMADA^TAROU"), yamada))
        #expect(try matches(key(Tag.patientName, "PN", "=山田^太郎"), yamada))
        #expect(try !matches(key(Tag.patientName, "PN", "=山田^花子"), yamada))
        // The result has no ideographic form: the alphabetic group decides.
        #expect(try matches(key(Tag.patientName, "PN", "Yamada^Tarou=山田^太郎"), key(Tag.patientName, "PN", "YAMADA^TAROU")))
        #expect(try !matches(key(Tag.patientName, "PN", "=山田^太郎"), key(Tag.patientName, "PN", "YAMADA^TAROU")))
    }

    @Test func otherTextIsCaseSensitiveWithWildcards() throws {
        let description = key(Tag(0x0008, 0x1030), "LO", "Scanner thorax")
        #expect(try matches(key(Tag(0x0008, 0x1030), "LO", "*thorax*"), description))
        #expect(try matches(key(Tag(0x0008, 0x1030), "LO", "Scanner?thorax"), description))
        #expect(try !matches(key(Tag(0x0008, 0x1030), "LO", "*THORAX*"), description))
        #expect(try matches(key(Tag(0x0008, 0x1030), "LO", "Scanner thorax "), description))
        #expect(try !matches(key(Tag(0x0008, 0x1030), "LO", "Scanner"), description))
        #expect(try matches(key(Tag.accessionNumber, "SH", "A12*"), key(Tag.accessionNumber, "SH", "A1234")))
    }

    @Test func uidsMatchExactlyAndByList() throws {
        let uid = key(Tag.studyInstanceUID, "UI", "1.2.3")
        #expect(try matches(key(Tag.studyInstanceUID, "UI", "1.2.3"), uid))
        #expect(try matches(key(Tag.studyInstanceUID, "UI", "1.2.3\0"), uid))
        #expect(try !matches(key(Tag.studyInstanceUID, "UI", "1.2.30"), uid))
        #expect(try !matches(key(Tag.studyInstanceUID, "UI", "1.2.*"), uid))  // no wildcard on UIDs
        #expect(try matches(key(Tag.studyInstanceUID, "UI", "1.2.4", "1.2.3"), uid))
        #expect(try !matches(key(Tag.studyInstanceUID, "UI", "1.2.4", "1.2.5"), uid))
    }

    @Test func multiValuedResultsMatchByAnyValue() throws {
        let modalities = key(Tag.modalitiesInStudy, "CS", "CT", "SR")
        #expect(try matches(key(Tag.modalitiesInStudy, "CS", "SR"), modalities))
        #expect(try matches(key(Tag.modalitiesInStudy, "CS", "MR", "CT"), modalities))
        #expect(try !matches(key(Tag.modalitiesInStudy, "CS", "MR"), modalities))
    }

    @Test func numbers() throws {
        #expect(try matches(key(Tag.numberOfStudyRelatedSeries, "IS", "3"), key(Tag.numberOfStudyRelatedSeries, "IS", "03")))
        #expect(try !matches(key(Tag.numberOfStudyRelatedSeries, "IS", "3"), key(Tag.numberOfStudyRelatedSeries, "IS", "4")))
        #expect(try matches(key(Tag(0x0028, 0x0010), "US", "512"), key(Tag(0x0028, 0x0010), "US", "512")))
        #expect(try !matches(key(Tag(0x0028, 0x0010), "US", "5*"), key(Tag(0x0028, 0x0010), "US", "512")))  // no wildcard on binary numbers
    }

    // MARK: Ranges

    @Test func dateRanges() throws {
        let date = key(Tag.studyDate, "DA", "20200615")
        #expect(try matches(key(Tag.studyDate, "DA", "20200615"), date))
        #expect(try !matches(key(Tag.studyDate, "DA", "20200616"), date))
        #expect(try matches(key(Tag.studyDate, "DA", "20200101-20201231"), date))
        #expect(try matches(key(Tag.studyDate, "DA", "20200615-20200615"), date))
        #expect(try !matches(key(Tag.studyDate, "DA", "20210101-20211231"), date))
        #expect(try matches(key(Tag.studyDate, "DA", "20200101-"), date))
        #expect(try !matches(key(Tag.studyDate, "DA", "20200616-"), date))
        #expect(try matches(key(Tag.studyDate, "DA", "-20201231"), date))
        #expect(try !matches(key(Tag.studyDate, "DA", "-20200614"), date))
        #expect(try !matches(key(Tag.studyDate, "DA", "2020*"), date))  // no wildcard on dates
        #expect(try !matches(key(Tag.studyDate, "DA", "20200101-"), key(Tag.studyDate, "DA", "junk")))
        #expect(try matches(key(Tag.studyDate, "DA", "20200101", "20200615"), date))
    }

    @Test func timeRangesCompareNormalizedTimes() throws {
        let time = key(Tag(0x0008, 0x0030), "TM", "103015.5")
        #expect(try matches(key(Tag(0x0008, 0x0030), "TM", "1000-1100"), time))
        #expect(try matches(key(Tag(0x0008, 0x0030), "TM", "10-10"), time))  // the whole hour
        #expect(try matches(key(Tag(0x0008, 0x0030), "TM", "103015-"), time))
        #expect(try !matches(key(Tag(0x0008, 0x0030), "TM", "103016-"), time))
        #expect(try matches(key(Tag(0x0008, 0x0030), "TM", "-1030"), time))  // up to the end of 10:30
        #expect(try !matches(key(Tag(0x0008, 0x0030), "TM", "-1029"), time))
        #expect(try matches(key(Tag(0x0008, 0x0030), "TM", "103015.500000"), time))
        #expect(try matches(key(Tag(0x0008, 0x0030), "TM", "0900-1100"), key(Tag(0x0008, 0x0030), "TM", "10:30:15")))
    }

    @Test func dateTimeRanges() throws {
        let dateTime = key(Tag(0x0008, 0x002A), "DT", "20200615103000")
        #expect(try matches(key(Tag(0x0008, 0x002A), "DT", "20200615-20200615"), dateTime))
        #expect(try matches(key(Tag(0x0008, 0x002A), "DT", "2020-2021"), dateTime))
        #expect(try matches(key(Tag(0x0008, 0x002A), "DT", "202006151030-"), dateTime))
        #expect(try !matches(key(Tag(0x0008, 0x002A), "DT", "202006151031-"), dateTime))
        #expect(try matches(key(Tag(0x0008, 0x002A), "DT", "-202006151030"), dateTime))
        #expect(try matches(key(Tag(0x0008, 0x002A), "DT", "20200615103000-0500"), dateTime))  // an offset, not a range
    }

    // MARK: Missing attributes

    @Test func missingAttributesMatchExceptIdentifyingOnes() throws {
        #expect(try matches(key(Tag(0x0008, 0x1030), "LO", "*thorax*"), nil))
        #expect(try matches(key(Tag.patientBirthDate, "DA", "19800101"), nil))
        for tag in [Tag.patientName, Tag.patientID, Tag.studyInstanceUID, Tag.accessionNumber,
                    Tag.studyDate, Tag.modalitiesInStudy] {
            let vr = [Tag.patientName: "PN", Tag.studyInstanceUID: "UI", Tag.studyDate: "DA"][tag] ?? "LO"
            #expect(try !matches(key(tag, vr, "20200101"), nil))
        }
        // Present but empty: matched as an empty value.
        #expect(try !matches(key(Tag(0x0008, 0x1030), "LO", "*thorax*"), key(Tag(0x0008, 0x1030), "LO")))
    }
}
