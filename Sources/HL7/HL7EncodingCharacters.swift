/// The delimiters a message declares in MSH-1 and MSH-2 (HL7 v2.5 §2.5.4).
///
/// Kept as ASCII bytes: a message is split on its bytes (or on the UTF-8 of its text), which
/// is only sound for single-byte delimiters; an instance can only be made with five distinct
/// printable ASCII punctuation characters, so the `Character` views never fail.
public struct HL7EncodingCharacters: Sendable, Equatable {
    let fieldByte: UInt8
    let componentByte: UInt8
    let repetitionByte: UInt8
    let escapeByte: UInt8
    let subcomponentByte: UInt8

    /// `|^~\&`, the values HL7 recommends and nearly every sender uses.
    public static let standard = HL7EncodingCharacters(
        validatedField: UInt8(ascii: "|"), component: UInt8(ascii: "^"), repetition: UInt8(ascii: "~"),
        escape: UInt8(ascii: "\\"), subcomponent: UInt8(ascii: "&"))

    /// nil unless the five are distinct printable ASCII characters other than letters and digits
    /// (a letter or digit would be taken for data, and a space or control character for layout).
    public init?(field: Character, component: Character, repetition: Character, escape: Character,
                 subcomponent: Character) {
        guard let f = field.asciiValue, let c = component.asciiValue, let r = repetition.asciiValue,
              let e = escape.asciiValue, let s = subcomponent.asciiValue
        else { return nil }
        self.init(field: f, component: c, repetition: r, escape: e, subcomponent: s)
    }

    init?(field: UInt8, component: UInt8, repetition: UInt8, escape: UInt8, subcomponent: UInt8) {
        let all = [field, component, repetition, escape, subcomponent]
        guard all.allSatisfy(Self.isAllowed), Set(all).count == 5 else { return nil }
        self.init(validatedField: field, component: component, repetition: repetition, escape: escape,
                  subcomponent: subcomponent)
    }

    private init(validatedField field: UInt8, component: UInt8, repetition: UInt8, escape: UInt8,
                 subcomponent: UInt8) {
        fieldByte = field
        componentByte = component
        repetitionByte = repetition
        escapeByte = escape
        subcomponentByte = subcomponent
    }

    /// The separators a message declares (MSH-1, MSH-2); nil when it does not start with
    /// "MSH" or they are not five valid characters. For building a reject when parsing failed.
    public init?(declaredIn message: [UInt8]) {
        guard let declared = Self.read(message) else { return nil }
        self = declared
    }

    /// MSH-1 is the byte after "MSH"; MSH-2 runs to the next field separator: four
    /// characters, or five from v2.7 on (the truncation character, which we ignore).
    static func read(_ message: [UInt8]) -> HL7EncodingCharacters? {
        guard message.count >= 8, message.starts(with: Array("MSH".utf8)) else { return nil }
        let field = message[3]
        let msh2 = message[4...].prefix { $0 != field && $0 != 0x0D && $0 != 0x0A }
        guard msh2.count == 4 || (msh2.count == 5 && isAllowed(msh2.last ?? 0)) else { return nil }
        let c = Array(msh2)
        return HL7EncodingCharacters(field: field, component: c[0], repetition: c[1], escape: c[2], subcomponent: c[3])
    }

    static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "a")...UInt8(ascii: "z"):
            false
        default:
            byte > 0x20 && byte < 0x7F
        }
    }

    public var field: Character { Character(Unicode.Scalar(fieldByte)) }
    public var component: Character { Character(Unicode.Scalar(componentByte)) }
    public var repetition: Character { Character(Unicode.Scalar(repetitionByte)) }
    public var escape: Character { Character(Unicode.Scalar(escapeByte)) }
    public var subcomponent: Character { Character(Unicode.Scalar(subcomponentByte)) }

    /// MSH-2 as written in a message we send: component, repetition, escape, subcomponent.
    var msh2: String {
        String(decoding: [componentByte, repetitionByte, escapeByte, subcomponentByte], as: UTF8.self)
    }
}
