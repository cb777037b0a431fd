/// One field of a segment, as received: split and unescaped on demand.
///
/// A field holds repetitions (`~`), each of components (`^`), each of subcomponents (`&`).
public struct HL7Field: Sendable {
    /// The raw (still escaped) text of the field.
    public var raw: Substring
    let encoding: HL7EncodingCharacters
    let characterSet: HL7CharacterSet
    /// MSH-1 and MSH-2 hold the delimiters themselves: never split, never unescaped.
    let isDelimiterField: Bool

    init(raw: Substring, encoding: HL7EncodingCharacters, characterSet: HL7CharacterSet,
         isDelimiterField: Bool = false) {
        self.raw = raw
        self.encoding = encoding
        self.characterSet = characterSet
        self.isDelimiterField = isDelimiterField
    }

    /// Whether the field has no value at all (absent, or present and empty).
    public var isEmpty: Bool { raw.isEmpty }

    /// Whether the field is the HL7 null `""`: the sender asks to delete the value it had.
    public var isNull: Bool { raw == "\"\"" }

    /// 0 for an empty field.
    public var repetitionCount: Int {
        if raw.isEmpty { return 0 }
        if isDelimiterField { return 1 }
        return raw.utf8.reduce(1) { $1 == encoding.repetitionByte ? $0 + 1 : $0 }
    }

    /// The number of components of a repetition (0 when it is empty or absent).
    public func componentCount(repetition: Int = 0) -> Int {
        guard let text = rawValue(repetition: repetition), !text.isEmpty else { return 0 }
        if isDelimiterField { return 1 }
        return text.utf8.reduce(1) { $1 == encoding.componentByte ? $0 + 1 : $0 }
    }

    /// The decoded (unescaped) value of one component or subcomponent, numbered from 1 as in
    /// the standard ("PID-3.4.2" is `field(3).value(component: 4, subcomponent: 2)`);
    /// repetitions from 0. "" when missing.
    public func value(repetition: Int = 0, component: Int = 1, subcomponent: Int = 1) -> String {
        guard let text = rawValue(repetition: repetition, component: component, subcomponent: subcomponent)
        else { return "" }
        if isDelimiterField { return String(text) }
        return HL7Escaping.decode(text, encoding: encoding, characterSet: characterSet)
    }

    /// The raw (still escaped) text of a repetition, component or subcomponent: pass nil for
    /// the whole of a level. nil when missing.
    public func rawValue(repetition: Int = 0, component: Int? = nil, subcomponent: Int? = nil) -> Substring? {
        if isDelimiterField {
            return repetition == 0 && (component ?? 1) == 1 && (subcomponent ?? 1) == 1 ? raw : nil
        }
        guard var text = Self.piece(of: raw, separatedBy: encoding.repetitionByte, at: repetition) else { return nil }
        if let component {
            guard component >= 1,
                  let piece = Self.piece(of: text, separatedBy: encoding.componentByte, at: component - 1)
            else { return nil }
            text = piece
        }
        if let subcomponent {
            guard subcomponent >= 1,
                  let piece = Self.piece(of: text, separatedBy: encoding.subcomponentByte, at: subcomponent - 1)
            else { return nil }
            text = piece
        }
        return text
    }

    /// The `position`th (from 0) piece of `text` between separators, without splitting it all.
    static func piece(of text: Substring, separatedBy separator: UInt8, at position: Int) -> Substring? {
        guard position >= 0 else { return nil }
        let utf8 = text.utf8
        var start = utf8.startIndex
        for _ in 0..<position {
            guard let found = utf8[start...].firstIndex(of: separator) else { return nil }
            start = utf8.index(after: found)
        }
        let end = utf8[start...].firstIndex(of: separator) ?? utf8.endIndex
        return text[start..<end]
    }

    /// All pieces of `text` between separators (an ASCII byte: the indices stay on characters).
    static func split(_ text: Substring, separator: UInt8) -> [Substring] {
        var pieces: [Substring] = []
        let utf8 = text.utf8
        var start = utf8.startIndex
        while let found = utf8[start...].firstIndex(of: separator) {
            pieces.append(text[start..<found])
            start = utf8.index(after: found)
        }
        pieces.append(text[start...])
        return pieces
    }
}
