import Testing
@testable import DICOMCore

@Suite struct VRTests {
    @Test func allPS35VRsExist() {
        #expect(VR.allCases.count == 34)
        for code in ["OV", "SV", "UV", "UC", "UR", "UT", "OL", "OD"] {
            #expect(VR(rawValue: code) != nil)
        }
    }

    @Test func longLengthVRs() {
        let long: Set<VR> = [.OB, .OD, .OF, .OL, .OV, .OW, .SQ, .SV, .UC, .UN, .UR, .UT, .UV]
        for vr in VR.allCases {
            #expect(vr.usesLongLength == long.contains(vr), "\(vr)")
        }
    }

    @Test func parsesHeaderBytes() {
        #expect(VR(code0: 0x50, code1: 0x4E) == .PN)
        #expect(VR(code0: 0x00, code1: 0x00) == nil)
        #expect(VR(code0: 0xFF, code1: 0x4E) == nil)
        #expect(VR(code0: 0x5A, code1: 0x5A) == nil)
    }

    @Test func padding() {
        #expect(VR.UI.paddingByte == 0)
        #expect(VR.OB.paddingByte == 0)
        #expect(VR.PN.paddingByte == 0x20)
    }
}
