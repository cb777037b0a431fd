/// Escape sequences in field text (HL7 v2.5 §2.7).
///
/// A delimiter inside data is written as an escape sequence between two escape characters:
/// `\F\` field, `\S\` component, `\T\` subcomponent, `\R\` repetition, `\E\` escape, plus
/// hexadecimal data (`\Xhh…\`) and formatting commands for formatted text (FT, TX).
public enum HL7Escaping {
    /// The text with its escape sequences resolved:
    /// - `\F\ \S\ \T\ \R\ \E\` become the encoding characters;
    /// - `\.br\` and `\.sp\` become "\n" (line breaks in formatted text);
    /// - `\Xhh…\` becomes the bytes' characters in the message's character set;
    /// - highlighting (`\H\ \N\`), the other formatting commands (`\.in\ \.ti\ \.sk\ \.ce\
    ///   \.fi\ \.nf\`) and character-set switches (`\Cxxyy\ \Mxxyyzz\`) are dropped;
    /// - an unknown or unterminated sequence stays as literal text: senders that never escape
    ///   (a Windows path in a comment) lose nothing.
    public static func decode(_ text: Substring, encoding: HL7EncodingCharacters,
                              characterSet: HL7CharacterSet) -> String {
        let escape = encoding.escapeByte
        let utf8 = text.utf8
        guard utf8.contains(escape) else { return String(text) }
        var result = ""
        var index = utf8.startIndex
        while let open = utf8[index...].firstIndex(of: escape) {
            result += text[index..<open]
            let contentStart = utf8.index(after: open)
            guard let close = utf8[contentStart...].firstIndex(of: escape) else {
                index = open
                break
            }
            let sequence = text[contentStart..<close]
            if let replacement = resolve(sequence, encoding: encoding, characterSet: characterSet) {
                result += replacement
            } else {
                result += text[open...close]
            }
            index = utf8.index(after: close)
        }
        result += text[index...]
        return result
    }

    /// What a sequence (without its escape characters) stands for; nil when unknown.
    private static func resolve(_ sequence: Substring, encoding: HL7EncodingCharacters,
                                characterSet: HL7CharacterSet) -> String? {
        switch sequence {
        case "F": return String(encoding.field)
        case "S": return String(encoding.component)
        case "T": return String(encoding.subcomponent)
        case "R": return String(encoding.repetition)
        case "E": return String(encoding.escape)
        case "H", "N", ".fi", ".nf": return ""
        case ".br": return "\n"
        default: break
        }
        if sequence.hasPrefix(".sp") {
            return "\n"  // ".sp <n>": end the line and skip n lines; one line break is enough for us
        }
        if [".in", ".ti", ".sk", ".ce"].contains(where: sequence.hasPrefix) {
            return ""
        }
        guard let kind = sequence.first, let bytes = hexadecimal(sequence.dropFirst()) else { return nil }
        switch kind {
        case "X":
            return characterSet.decode(bytes) ?? String(decoding: bytes, as: UTF8.self)
        case "C" where bytes.count == 2, "M" where bytes.count == 2 || bytes.count == 3:
            return ""
        default:
            return nil
        }
    }

    /// The bytes of an even-length run of hexadecimal digits; nil otherwise (or when empty).
    private static func hexadecimal(_ digits: Substring) -> [UInt8]? {
        let utf8 = Array(digits.utf8)
        guard !utf8.isEmpty, utf8.count.isMultiple(of: 2) else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = hexValue(utf8[index]), let low = hexValue(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        default: nil
        }
    }

    /// The text with the five encoding characters escaped, and line breaks (LF, CR, CR LF) as
    /// `\.br\`: a CR would otherwise end the segment.
    public static func encode(_ text: String, encoding: HL7EncodingCharacters) -> String {
        let e = String(encoding.escape)
        var result = ""
        var previousWasCR = false
        for scalar in text.unicodeScalars {
            defer { previousWasCR = scalar == "\r" }
            switch scalar {
            case "\n" where previousWasCR:
                continue  // CR LF: one break, already written
            case "\r", "\n":
                result += e + ".br" + e
            case _ where !scalar.isASCII:
                result.unicodeScalars.append(scalar)
            default:
                switch UInt8(scalar.value) {
                case encoding.escapeByte: result += e + "E" + e
                case encoding.fieldByte: result += e + "F" + e
                case encoding.componentByte: result += e + "S" + e
                case encoding.subcomponentByte: result += e + "T" + e
                case encoding.repetitionByte: result += e + "R" + e
                default: result.unicodeScalars.append(scalar)
                }
            }
        }
        return result
    }
}
