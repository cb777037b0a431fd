import Testing

@testable import HL7

@Suite struct HL7CharacterSetTests {
    @Test(arguments: [
        ("", HL7CharacterSet.ascii), ("ASCII", .ascii), (" 8859/1 ", .latin1), ("ISO-8859-1", .latin1),
        ("UNICODE UTF-8", .utf8), ("utf-8", .utf8),
    ])
    func namesFromMSH18(name: String, expected: HL7CharacterSet) {
        #expect(HL7CharacterSet(msh18: name) == expected)
    }

    @Test func refusesOtherSets() {
        for name in ["UNICODE", "UNICODE UTF-16", "ISO IR87", "8859/15", "GB 18030-2000"] {
            #expect(HL7CharacterSet(msh18: name) == nil)
        }
    }

    @Test func decodesAndEncodes() {
        #expect(HL7CharacterSet.ascii.decode([0x41, 0x80]) == nil)
        #expect(HL7CharacterSet.latin1.decode([0x52, 0xE9]) == "Ré")
        #expect(HL7CharacterSet.utf8.decode([0xC3, 0xA9]) == "é")
        #expect(HL7CharacterSet.utf8.decode([0xC3]) == nil)
        #expect(HL7CharacterSet.utf8.decode([0xEF, 0xBF, 0xBD]) == "\u{FFFD}")
        #expect(HL7CharacterSet.latin1.encode("Re\u{301}") == [0x52, 0xE9])
        #expect(HL7CharacterSet.latin1.encode("€") == nil)
        #expect(HL7CharacterSet.ascii.encode("é") == nil)
        #expect(HL7CharacterSet.ascii.encodeReplacingUnrepresentable("Ré") == [0x52, 0x3F])
    }

    @Test func readsTheDeclaredSetFromRawBytes() {
        #expect(HL7CharacterSet(declaredIn: Array(("MSH|^~\\&" + String(repeating: "|", count: 16) + "8859/1~ISO IR87\r").utf8)) == .latin1)
        #expect(HL7CharacterSet(declaredIn: Array("MSH|^~\\&|A\r".utf8)) == .ascii)
        #expect(HL7CharacterSet(declaredIn: Array("PID|1".utf8)) == nil)
    }
}
