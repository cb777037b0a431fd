import Testing
@testable import DICOMCore

@Suite struct TagTests {
    @Test func groupElementAndRawValue() {
        let tag = Tag(0x0010, 0x0010)
        #expect(tag.group == 0x0010)
        #expect(tag.element == 0x0010)
        #expect(tag.rawValue == 0x0010_0010)
        #expect(tag == .patientName)
        #expect(Tag(rawValue: 0x7FE0_0010) == .pixelData)
    }

    @Test func descriptionIsUppercaseHex() {
        #expect(Tag.patientName.description == "(0010,0010)")
        #expect(Tag.pixelData.description == "(7FE0,0010)")
        #expect(Tag.item.description == "(FFFE,E000)")
    }

    @Test func hexStringNamesAttributesAsDICOMwebDoes() {
        #expect(Tag.studyInstanceUID.hexString == "0020000D")
        #expect(Tag.patientName.hexString == "00100010")
        #expect(Tag.item.hexString == "FFFEE000")
    }

    @Test func orderingIsGroupThenElement() {
        #expect(Tag(0x0008, 0xFFFF) < Tag(0x0010, 0x0000))
        #expect(Tag.patientName < Tag.patientID)
        #expect([Tag.pixelData, .sopClassUID, .patientName].sorted() == [.sopClassUID, .patientName, .pixelData])
    }

    @Test func curatedKeywords() {
        #expect(Tag.sopClassUID == Tag(0x0008, 0x0016))
        #expect(Tag.studyInstanceUID == Tag(0x0020, 0x000D))
        #expect(Tag.issuerOfPatientIDQualifiersSequence == Tag(0x0010, 0x0024))
        #expect(Tag.queryRetrieveLevel == Tag(0x0008, 0x0052))
        #expect(Tag.transferSyntaxUID == Tag(0x0002, 0x0010))
        #expect(Tag.sequenceDelimitationItem == Tag(0xFFFE, 0xE0DD))
        #expect(Tag.numberOfPatientRelatedInstances == Tag(0x0020, 0x1204))
        #expect(Tag.failedSOPInstanceUIDList == Tag(0x0008, 0x0058))
        #expect(Tag(0x0011, 0x0010).isPrivate)
        #expect(!Tag.patientName.isPrivate)
    }
}
