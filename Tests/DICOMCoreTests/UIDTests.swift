import Testing
@testable import DICOMCore

@Suite struct UIDTests {
    @Test(arguments: ["1.2.840.10008.1.1", "0", "2.25.0", "1.2.3.10", Implementation.classUID])
    func valid(uid: String) {
        #expect(UID.isValid(uid))
    }

    @Test(arguments: ["", ".1", "1.", "1..2", "1.02", "1.2a", "1.2 ", "00",
                      String(repeating: "1", count: 65)])
    func invalid(uid: String) {
        #expect(!UID.isValid(uid))
    }

    @Test func implementationIdentity() {
        #expect(Implementation.classUID.hasPrefix("2.25."))
        #expect(Implementation.classUID.utf8.count <= 64)
        #expect(Implementation.versionName.utf8.count <= 16)
    }

    @Test func trimming() {
        #expect(UID.trimmed("1.2.3\0") == "1.2.3")
    }
}
