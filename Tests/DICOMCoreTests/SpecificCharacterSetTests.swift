import Testing
@testable import DICOMCore

@Suite struct SpecificCharacterSetTests {
    let heleneLatin1: [UInt8] = [0x48, 0xE9, 0x6C, 0xE8, 0x6E, 0x65]
    let heleneUTF8: [UInt8] = [0x48, 0xC3, 0xA9, 0x6C, 0xC3, 0xA8, 0x6E, 0x65]

    @Test func defaultRepertoire() {
        #expect(SpecificCharacterSet.default.decode(Array("Doe^John".utf8), vr: .PN) == "Doe^John")
        #expect(SpecificCharacterSet(values: ["ISO_IR 6"]).decode(Array("ABC".utf8), vr: .LO) == "ABC")
    }

    @Test func frenchLatin1AndUTF8() {
        #expect(SpecificCharacterSet(values: ["ISO_IR 100"]).decode(heleneLatin1, vr: .PN) == "Hélène")
        #expect(SpecificCharacterSet(values: ["ISO_IR 192"]).decode(heleneUTF8, vr: .PN) == "Hélène")
        #expect(SpecificCharacterSet(rawValue: "ISO_IR 100 ").values == ["ISO_IR 100"])
    }

    @Test func nonTextVRsIgnoreTheCharacterSet() {
        #expect(SpecificCharacterSet(values: ["ISO_IR 192"]).decode(Array("1.2.3".utf8), vr: .UI) == "1.2.3")
    }

    /// (term, bytes, expected)
    @Test(arguments: [
        ("ISO_IR 101", [0x50, 0xF8, 0xED, 0x6C, 0x69, 0xB9] as [UInt8], "Příliš"),
        ("ISO_IR 144", [0xBB, 0xEE, 0xDA, 0xE1, 0xE2, 0xD5, 0xE0], "Люкстер"),
        ("ISO_IR 126", [0xC4, 0xE9, 0xEF, 0xED, 0xF5, 0xF3, 0xE9, 0xEF, 0xF2], "Διονυσιος"),
        ("ISO_IR 148", [0xC7, 0xFD, 0xFE], "Çış"),
        ("ISO_IR 203", [0xA4], "€"),
        ("ISO_IR 138", [0xF9, 0xF8, 0xE5, 0xEF], "שרון"),
        ("ISO_IR 127", [0xE2, 0xC8, 0xC7, 0xE6, 0xEA], "قباني"),
        ("ISO_IR 166", [0xB9, 0xD2, 0xC1], "นาม"),
        ("ISO_IR 13", [0xD4, 0xCF, 0xC0, 0xDE], "ﾔﾏﾀﾞ"),
        ("GB18030", [0xCD, 0xF5, 0xD0, 0xA1, 0xB6, 0xAB], "王小东"),
    ])
    func singleAndMultiByteRepertoires(term: String, bytes: [UInt8], expected: String) {
        #expect(SpecificCharacterSet(values: [term]).decode(bytes, vr: .PN) == expected)
    }

    /// PS3.5 Annex H.3.1, Example 1: Japanese in ISO 2022 IR 87.
    @Test func japaneseISO2022IR87() {
        var bytes = Array("Yamada^Tarou=".utf8)
        bytes += [0x1B, 0x24, 0x42, 0x3B, 0x33, 0x45, 0x44, 0x1B, 0x28, 0x42, 0x5E]
        bytes += [0x1B, 0x24, 0x42, 0x42, 0x40, 0x4F, 0x3A, 0x1B, 0x28, 0x42, 0x3D]
        bytes += [0x1B, 0x24, 0x42, 0x24, 0x64, 0x24, 0x5E, 0x24, 0x40, 0x1B, 0x28, 0x42, 0x5E]
        bytes += [0x1B, 0x24, 0x42, 0x24, 0x3F, 0x24, 0x6D, 0x24, 0x26, 0x1B, 0x28, 0x42]
        let set = SpecificCharacterSet(rawValue: "\\ISO 2022 IR 87")
        #expect(set.usesCodeExtensions)
        #expect(set.decode(bytes, vr: .PN) == "Yamada^Tarou=山田^太郎=やまだ^たろう")
    }

    /// PS3.5 Annex H.3.2, Example 2: half-width katakana (IR 13) and kanji (IR 87).
    @Test func japaneseISO2022IR13() {
        var bytes: [UInt8] = [0xD4, 0xCF, 0xC0, 0xDE, 0x5E, 0xC0, 0xDB, 0xB3, 0x3D]
        bytes += [0x1B, 0x24, 0x42, 0x3B, 0x33, 0x45, 0x44, 0x1B, 0x28, 0x4A, 0x5E]
        bytes += [0x1B, 0x24, 0x42, 0x42, 0x40, 0x4F, 0x3A, 0x1B, 0x28, 0x4A, 0x3D]
        bytes += [0x1B, 0x24, 0x42, 0x24, 0x64, 0x24, 0x5E, 0x24, 0x40, 0x1B, 0x28, 0x4A, 0x5E]
        bytes += [0x1B, 0x24, 0x42, 0x24, 0x3F, 0x24, 0x6D, 0x24, 0x26, 0x1B, 0x28, 0x4A]
        let set = SpecificCharacterSet(values: ["ISO 2022 IR 13", "ISO 2022 IR 87"])
        #expect(set.decode(bytes, vr: .PN) == "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう")
    }

    /// PS3.5 Annex I.2: Korean in ISO 2022 IR 149.
    @Test func koreanISO2022IR149() {
        var bytes = Array("Hong^Gildong=".utf8)
        bytes += [0x1B, 0x24, 0x29, 0x43, 0xFB, 0xF3, 0x5E, 0x1B, 0x24, 0x29, 0x43, 0xD1, 0xCE, 0xD4, 0xD7, 0x3D]
        bytes += [0x1B, 0x24, 0x29, 0x43, 0xC8, 0xAB, 0x5E, 0x1B, 0x24, 0x29, 0x43, 0xB1, 0xE6, 0xB5, 0xBF]
        let set = SpecificCharacterSet(values: ["", "ISO 2022 IR 149"])
        #expect(set.decode(bytes, vr: .PN) == "Hong^Gildong=洪^吉洞=홍^길동")
    }

    /// PS3.5 Annex K: Chinese GB 2312 in ISO 2022 IR 58.
    @Test func chineseISO2022IR58() {
        var bytes = Array("Zhang^XiaoDong=".utf8)
        bytes += [0x1B, 0x24, 0x29, 0x41, 0xD5, 0xC5, 0x5E, 0x1B, 0x24, 0x29, 0x41, 0xD0, 0xA1, 0xB6, 0xAB, 0x3D]
        let set = SpecificCharacterSet(values: ["", "ISO 2022 IR 58"])
        #expect(set.decode(bytes, vr: .PN) == "Zhang^XiaoDong=张^小东=")
    }

    @Test func latin1ThroughISO2022() {
        let set = SpecificCharacterSet(values: ["ISO 2022 IR 100"])
        #expect(set.decode(heleneLatin1, vr: .PN) == "Hélène")
        // Explicit G1 designation ESC - A.
        let viaEscape: [UInt8] = [0x1B, 0x2D, 0x41] + heleneLatin1
        #expect(SpecificCharacterSet(values: ["", "ISO 2022 IR 100"]).decode(viaEscape, vr: .LO) == "Hélène")
    }

    @Test func unknownTermsAndBadEscapesDoNotCrash() {
        #expect(SpecificCharacterSet(values: ["ISO_IR 999"]).decode(heleneLatin1, vr: .PN) == "Hélène")
        let junk: [UInt8] = [0x1B, 0x1B, 0x24, 0x1B, 0x24, 0x42, 0x80, 0xFF, 0x1B]
        _ = SpecificCharacterSet(values: ["", "ISO 2022 IR 87"]).decode(junk, vr: .PN)
        _ = SpecificCharacterSet(values: ["", "ISO 2022 IR 149"]).decode([0xFF, 0xFF, 0x80], vr: .LO)
        _ = SpecificCharacterSet(values: ["ISO_IR 192"]).decode([0xFF, 0xC3], vr: .LO)
    }
}
