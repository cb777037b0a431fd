import Foundation

/// The character sets we read and write, by their MSH-18 names (HL7 table 0211).
///
/// Only single-byte-delimiter sets that cover Western European text: the other entries of
/// table 0211 (ISO 2022 sets, UTF-16/32, GB 18030…) are refused, so a message we cannot
/// decode faithfully is rejected rather than stored garbled.
public enum HL7CharacterSet: String, Sendable, CaseIterable {
    /// Also the meaning of an empty MSH-18.
    case ascii = "ASCII"
    case latin1 = "8859/1"
    case utf8 = "UNICODE UTF-8"

    /// Accepts, ignoring case and surrounding spaces: "" and "ASCII"; "8859/1" and the IANA name
    /// "ISO-8859-1"; "UNICODE UTF-8" and the bare "UTF-8" some senders write. Nothing else.
    public init?(msh18: String) {
        switch msh18.trimmingCharacters(in: .whitespaces).uppercased() {
        case "", "ASCII": self = .ascii
        case "8859/1", "ISO-8859-1": self = .latin1
        case "UNICODE UTF-8", "UTF-8": self = .utf8
        default: return nil
        }
    }

    /// The set a message declares in MSH-18 (first repetition, first component, read from the
    /// raw bytes: MSH is ASCII); nil when MSH-1/MSH-2 are unreadable or the set is unsupported.
    public init?(declaredIn message: [UInt8]) {
        guard let encoding = HL7EncodingCharacters.read(message),
              let msh18 = Self.rawMSH18(message, encoding: encoding),
              let set = HL7CharacterSet(msh18: Self.firstComponent(msh18, encoding: encoding))
        else { return nil }
        self = set
    }

    /// The bytes as text; nil when one is not valid in this set.
    public func decode(_ bytes: some Collection<UInt8>) -> String? {
        switch self {
        case .ascii:
            guard bytes.allSatisfy({ $0 < 0x80 }) else { return nil }
            return String(decoding: bytes, as: UTF8.self)
        case .latin1:
            var text = String.UnicodeScalarView()
            for byte in bytes { text.append(Unicode.Scalar(byte)) }
            return String(text)
        case .utf8:
            // Decoding replaces invalid sequences with U+FFFD: the bytes come back unchanged only
            // if there were none (`String(validating:)` would need macOS 15).
            let text = String(decoding: bytes, as: UTF8.self)
            return text.utf8.elementsEqual(bytes) ? text : nil
        }
    }

    /// The text's bytes; nil when a character is not representable in this set.
    public func encode(_ string: String) -> [UInt8]? {
        if self == .utf8 { return Array(string.utf8) }
        var bytes: [UInt8] = []
        for scalar in Self.composed(string).unicodeScalars {
            guard let byte = byte(for: scalar) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }

    /// The text's bytes, with `?` for what this set cannot represent.
    func encodeReplacingUnrepresentable(_ string: String) -> [UInt8] {
        if self == .utf8 { return Array(string.utf8) }
        return Self.composed(string).unicodeScalars.map { byte(for: $0) ?? UInt8(ascii: "?") }
    }

    private func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let limit: UInt32 = self == .ascii ? 0x80 : 0x100
        return scalar.value < limit ? UInt8(scalar.value) : nil
    }

    /// NFC, so that an "e" followed by a combining acute becomes the one Latin-1 "é".
    private static func composed(_ string: String) -> String {
        string.unicodeScalars.allSatisfy(\.isASCII) ? string : string.precomposedStringWithCanonicalMapping
    }

    /// MSH-18 read from the raw bytes: "" when absent, nil when not ASCII.
    static func rawMSH18(_ message: [UInt8], encoding: HL7EncodingCharacters) -> String? {
        let msh = message.prefix { $0 != 0x0D && $0 != 0x0A }
        // Split on the field separator: element 0 is "MSH", element n is MSH-(n+1).
        let elements = msh.split(separator: encoding.fieldByte, omittingEmptySubsequences: false)
        guard elements.count > 17 else { return "" }
        return HL7CharacterSet.ascii.decode(elements[17])
    }

    static func firstComponent(_ raw: String, encoding: HL7EncodingCharacters) -> String {
        let firstRepetition = raw.utf8.split(separator: encoding.repetitionByte, omittingEmptySubsequences: false).first
        let component = firstRepetition?.split(separator: encoding.componentByte, omittingEmptySubsequences: false).first
        return component.map { String(decoding: $0, as: UTF8.self) } ?? ""
    }
}
