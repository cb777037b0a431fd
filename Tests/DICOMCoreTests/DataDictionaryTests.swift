import Testing
@testable import DICOMCore

@Suite struct DataDictionaryTests {
    @Test func patientNameIsPN() throws {
        let entry = try #require(DataDictionary.entry(for: .patientName))
        #expect(entry.vr == .PN)
        #expect(entry.keyword == "PatientName")
        #expect(entry.name == "Patient's Name")
        #expect(entry.vm == "1")
        #expect(!entry.retired)
    }

    @Test func sequencesAndMultiVR() throws {
        #expect(DataDictionary.entry(for: .otherPatientIDsSequence)?.vr == .SQ)
        let pixel = try #require(DataDictionary.entry(for: .pixelData))
        #expect(pixel.vrs == "OB or OW")
        #expect(pixel.vr == .OB)
    }

    @Test func keywordLookup() {
        #expect(DataDictionary.entry(forKeyword: "StudyInstanceUID")?.tag == .studyInstanceUID)
        #expect(DataDictionary.entry(forKeyword: "NoSuchKeyword") == nil)
    }

    @Test func repeatingGroupsAndGroupLength() {
        // Overlay Data (60xx,3000), PS3.5 §7.6.
        #expect(DataDictionary.entry(for: Tag(0x6002, 0x3000))?.keyword == "OverlayData")
        #expect(DataDictionary.entry(for: Tag(0x0009, 0x0000))?.vr == .UL)
        #expect(DataDictionary.entry(for: Tag(0x0011, 0x1010)) == nil)
    }

    @Test func retiredFlag() {
        #expect(DataDictionary.entry(for: Tag(0x0000, 0x0001))?.retired == true)
    }
}
