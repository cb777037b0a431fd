import Testing

@testable import HL7

@Suite struct HL7EscapingTests {
    static func decode(_ text: String, encoding: HL7EncodingCharacters = .standard,
                       characterSet: HL7CharacterSet = .ascii) -> String {
        HL7Escaping.decode(Substring(text), encoding: encoding, characterSet: characterSet)
    }

    @Test func decodesTheDelimiterSequences() {
        #expect(Self.decode(#"a\F\b\S\c\T\d\R\e\E\f"#) == #"a|b^c&d~e\f"#)
    }

    @Test func decodesFormattingAndHexadecimal() {
        #expect(Self.decode(#"line 1\.br\line 2\.sp2\end"#) == "line 1\nline 2\nend")
        #expect(Self.decode(#"\H\bold\N\ \.in+4\\.ti-2\\.ce\\.fi\\.nf\\.sk3\x"#) == "bold x")
        #expect(Self.decode(#"\X41\\X4243\"#) == "ABC")
        #expect(Self.decode(#"\XE9\"#, characterSet: .latin1) == "é")
        #expect(Self.decode(#"\XC3A9\"#, characterSet: .utf8) == "é")
        #expect(Self.decode(#"\C2842\\M2442\"#) == "")
    }

    @Test func leavesUnknownAndUnterminatedSequencesAsText() {
        #expect(Self.decode(#"C:\Program Files\App\x"#) == #"C:\Program Files\App\x"#)
        #expect(Self.decode(#"50\"#) == #"50\"#)
        #expect(Self.decode(#"\X4\ \XZZ\ \\"#) == #"\X4\ \XZZ\ \\"#)
    }

    @Test func usesTheMessageEncodingCharacters() throws {
        let custom = try #require(HL7EncodingCharacters(field: "*", component: "!", repetition: "@", escape: "#",
                                                        subcomponent: "$"))
        #expect(Self.decode("#F##S##T##R##E#", encoding: custom) == "*!$@#")
        #expect(HL7Escaping.encode("*!$@#|", encoding: custom) == "#F##S##T##R##E#|")
    }

    @Test func encodeEscapesDelimitersAndLineBreaks() {
        let text = "a|b^c&d~e\\f\r\ng\nh\ri é"
        let encoded = HL7Escaping.encode(text, encoding: .standard)
        #expect(encoded == #"a\F\b\S\c\T\d\R\e\E\f\.br\g\.br\h\.br\i é"#)
        #expect(Self.decode(encoded, characterSet: .utf8) == "a|b^c&d~e\\f\ng\nh\ni é")
    }

    @Test func rejectsInvalidEncodingCharacters() {
        #expect(HL7EncodingCharacters(field: "|", component: "^", repetition: "^", escape: "\\", subcomponent: "&") == nil)
        #expect(HL7EncodingCharacters(field: "|", component: "A", repetition: "~", escape: "\\", subcomponent: "&") == nil)
        #expect(HL7EncodingCharacters(field: "|", component: "é", repetition: "~", escape: "\\", subcomponent: "&") == nil)
        #expect(HL7EncodingCharacters(field: "|", component: "^", repetition: "~", escape: "\\", subcomponent: "&")
            == .standard)
    }
}
