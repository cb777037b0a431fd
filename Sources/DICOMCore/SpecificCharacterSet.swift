import Foundation

/// Specific Character Set (0008,0005): how the text VRs of a data set are encoded
/// (PS3.5 §6.1, PS3.3 §C.12.1.1.2 Tables C.12-2 to C.12-5).
///
/// Decoding never fails: bytes a repertoire cannot decode fall back to Latin-1, so a bad
/// value costs a wrong glyph, never a rejected instance.
public struct SpecificCharacterSet: Hashable, Sendable {
    /// The defined terms as found in the data set (trimmed); empty = default repertoire.
    public let values: [String]

    public static let `default` = SpecificCharacterSet(values: [])

    public init(values: [String]) {
        self.values = values.map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// Parses the raw (backslash-separated) value of (0008,0005).
    public init(rawValue: String) {
        self.init(values: rawValue.split(separator: "\\", omittingEmptySubsequences: false).map(String.init))
    }

    /// True when ISO 2022 code extension (escape sequences, PS3.5 §6.1.2.5) is in use.
    public var usesCodeExtensions: Bool {
        values.contains { $0.hasPrefix("ISO 2022") }
    }

    /// Decodes a value of `vr`. Non-text VRs (CS, DA, UI, …) use the default repertoire (PS3.5 §6.1.2.3).
    public func decode(_ bytes: some Collection<UInt8>, vr: VR) -> String {
        let bytes = Array(bytes)
        guard vr.usesSpecificCharacterSet else { return Self.latin1(bytes) }
        if usesCodeExtensions {
            return decodeISO2022(bytes, isPersonName: vr == .PN)
        }
        return Self.decodeSingle(bytes, term: values.first ?? "")
    }

    /// Encodes a value of `vr` in this character set, or nil when the repertoire cannot
    /// represent it (or uses ISO 2022 code extensions, which are only decoded).
    public func encode(_ text: String, vr: VR) -> [UInt8]? {
        let ascii = text.unicodeScalars.allSatisfy(\.isASCII)
        guard vr.usesSpecificCharacterSet, !ascii else { return ascii ? Array(text.utf8) : nil }
        guard !usesCodeExtensions, values.count <= 1 else { return nil }
        switch values.first ?? "" {
        case "", "ISO_IR 6": return nil
        case "ISO_IR 192": return Array(text.utf8)
        case let term:
            guard let encoding = Self.singleByteEncodings[term], let data = text.data(using: encoding) else { return nil }
            return Array(data)
        }
    }

    // MARK: - Without code extensions (PS3.3 Table C.12-2, C.12-5)

    private static func decodeSingle(_ bytes: [UInt8], term: String) -> String {
        switch term {
        case "", "ISO_IR 6":
            return latin1(bytes)  // ASCII; stray high bytes shown as Latin-1 rather than lost
        case "ISO_IR 192":
            return String(decoding: bytes, as: UTF8.self)
        case "GB18030", "GBK":
            return foundation(bytes, Self.gb18030)
        case "ISO_IR 13":
            return foundation(bytes, .shiftJIS)  // JIS X 0201 = the single-byte part of Shift_JIS
        default:
            if let encoding = singleByteEncodings[term.replacingOccurrences(of: "ISO 2022 ", with: "ISO_")] {
                return foundation(bytes, encoding)
            }
            return latin1(bytes)
        }
    }

    // MARK: - ISO 2022 code extensions (PS3.5 §6.1.2.5, PS3.3 Tables C.12-3, C.12-4)

    private enum G0: Equatable {
        case ascii            // ISO-IR 6, ESC ( B
        case romaji           // ISO-IR 14, ESC ( J
        case jisX0208         // ISO-IR 87, ESC $ B
        case jisX0212         // ISO-IR 159, ESC $ ( D
    }

    private enum G1: Equatable {
        case singleByte(String.Encoding)
        case katakana         // ISO-IR 13, ESC ) I
        case ksX1001          // ISO-IR 149, ESC $ ) C
        case gb2312           // ISO-IR 58, ESC $ ) A
    }

    private func initialState() -> (G0, G1?) {
        switch values.first ?? "" {
        case "ISO 2022 IR 13": return (.romaji, .katakana)
        case "ISO 2022 IR 149": return (.ascii, .ksX1001)
        case "ISO 2022 IR 58": return (.ascii, .gb2312)
        case let term:
            let key = term.replacingOccurrences(of: "ISO 2022 ", with: "ISO_")
            return (.ascii, Self.singleByteEncodings[key].map { .singleByte($0) })
        }
    }

    private func decodeISO2022(_ bytes: [UInt8], isPersonName: Bool) -> String {
        var (g0, g1) = initialState()
        var result = ""
        var run: [UInt8] = []
        var runIsG1 = false

        func flush() {
            guard !run.isEmpty else { return }
            result += runIsG1 ? Self.decodeG1(run, g1) : Self.decodeG0(run, g0)
            run.removeAll(keepingCapacity: true)
        }

        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x1B {
                flush()
                let (consumed, newG0, newG1) = Self.escape(bytes, at: index)
                if let newG0 { g0 = newG0 }
                if let newG1 { g1 = newG1 }
                if consumed == 0 {
                    result += "\u{1B}"  // unknown escape: keep the byte, do not crash
                    index += 1
                } else {
                    index += consumed
                }
                continue
            }
            let isSingleByteG0 = g0 == .ascii || g0 == .romaji
            let isControl = byte == 0x0A || byte == 0x0D || byte == 0x0C || byte == 0x09
            if isControl || (isPersonName && isSingleByteG0 && byte == UInt8(ascii: "=")) {
                // PS3.5 §6.1.2.5.3: the initial designations are back in force at line ends,
                // tabs and form feeds, and at each person-name component group.
                flush()
                result.unicodeScalars.append(Unicode.Scalar(byte))
                (g0, g1) = initialState()
                index += 1
                continue
            }
            let isG1 = byte >= 0x80
            if isG1 != runIsG1 { flush() }
            runIsG1 = isG1
            run.append(byte)
            index += 1
        }
        flush()
        return result
    }

    /// Recognises the escape sequence at `index`: (bytes consumed, new G0, new G1); 0 if unknown.
    private static func escape(_ bytes: [UInt8], at index: Int) -> (Int, G0?, G1?) {
        func at(_ offset: Int) -> UInt8? {
            index + offset < bytes.count ? bytes[index + offset] : nil
        }
        switch (at(1), at(2), at(3)) {
        case (0x28, 0x42, _): return (3, .ascii, nil)            // ESC ( B
        case (0x28, 0x4A, _): return (3, .romaji, nil)           // ESC ( J
        case (0x29, 0x49, _): return (3, nil, .katakana)         // ESC ) I
        case (0x24, 0x42, _): return (3, .jisX0208, nil)         // ESC $ B
        case (0x24, 0x28, 0x44): return (4, .jisX0212, nil)      // ESC $ ( D
        case (0x24, 0x29, 0x43): return (4, nil, .ksX1001)       // ESC $ ) C
        case (0x24, 0x29, 0x41): return (4, nil, .gb2312)        // ESC $ ) A
        case (0x2D, let final?, _):                              // ESC - F: 96-character G1 sets
            let term: String? = switch final {
            case 0x41: "ISO_IR 100"
            case 0x42: "ISO_IR 101"
            case 0x43: "ISO_IR 109"
            case 0x44: "ISO_IR 110"
            case 0x4C: "ISO_IR 144"
            case 0x47: "ISO_IR 127"
            case 0x46: "ISO_IR 126"
            case 0x48: "ISO_IR 138"
            case 0x4D: "ISO_IR 148"
            case 0x62: "ISO_IR 203"
            case 0x54: "ISO_IR 166"
            default: nil
            }
            guard let term, let encoding = singleByteEncodings[term] else { return (0, nil, nil) }
            return (3, nil, .singleByte(encoding))
        default:
            return (0, nil, nil)
        }
    }

    private static func decodeG0(_ run: [UInt8], _ g0: G0) -> String {
        switch g0 {
        case .ascii:
            return latin1(run)
        case .romaji:
            // JIS X 0201 Roman differs from ASCII only at 5C (yen) and 7E (overline).
            return String(String.UnicodeScalarView(run.map {
                $0 == 0x5C ? "\u{A5}" : $0 == 0x7E ? "\u{203E}" : Unicode.Scalar($0)
            }))
        case .jisX0208:
            return foundation([0x1B, 0x24, 0x42] + run + [0x1B, 0x28, 0x42], .iso2022JP)
        case .jisX0212:
            return foundation([0x1B, 0x24, 0x28, 0x44] + run + [0x1B, 0x28, 0x42], .iso2022JP)
        }
    }

    private static func decodeG1(_ run: [UInt8], _ g1: G1?) -> String {
        switch g1 {
        case .singleByte(let encoding): return foundation(run, encoding)
        case .katakana: return foundation(run, .shiftJIS)
        case .ksX1001: return foundation(run, eucKR)  // KS X 1001 in G1 is exactly EUC-KR's upper half
        case .gb2312: return foundation(run, gb18030)  // GB 2312 in G1 = EUC-CN, a subset of GB 18030
        case nil: return latin1(run)
        }
    }

    // MARK: - Encodings

    /// Foundation encodings beyond the named `String.Encoding` constants are CFStringEncoding
    /// values with the high bit set (what CFStringConvertEncodingToNSStringEncoding returns).
    private static func cf(_ value: UInt) -> String.Encoding { String.Encoding(rawValue: 0x8000_0000 | value) }
    private static let eucKR = cf(0x0940)
    private static let gb18030 = cf(0x0632)

    /// Single-byte repertoires of PS3.3 Table C.12-2, verified to decode on Linux Foundation.
    private static let singleByteEncodings: [String: String.Encoding] = [
        "ISO_IR 100": .isoLatin1,
        "ISO_IR 101": .isoLatin2,
        "ISO_IR 109": cf(0x0203),  // Latin-3
        "ISO_IR 110": cf(0x0204),  // Latin-4
        "ISO_IR 144": cf(0x0205),  // Cyrillic
        "ISO_IR 127": cf(0x0206),  // Arabic
        "ISO_IR 126": cf(0x0207),  // Greek
        "ISO_IR 138": cf(0x0208),  // Hebrew
        "ISO_IR 148": cf(0x0209),  // Latin-5
        "ISO_IR 203": cf(0x020F),  // Latin-9
        "ISO_IR 166": cf(0x020B),  // Thai (TIS 620)
        "ISO_IR 13": .shiftJIS,
        "ISO_IR 6": .ascii,
    ]

    private static func foundation(_ bytes: [UInt8], _ encoding: String.Encoding) -> String {
        String(bytes: bytes, encoding: encoding) ?? latin1(bytes)
    }

    static func latin1(_ bytes: [UInt8]) -> String {
        String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
    }
}
