/// One segment of a message: its name and fields, by the standard's numbering.
public struct HL7Segment: Sendable {
    public var name: String
    /// `fields[n]` is field n; `fields[0]` is the name. For MSH, `fields[1]` is the field
    /// separator itself and `fields[2]` the encoding characters, so MSH-9 is `fields[9]`.
    var fields: [Substring]
    let encoding: HL7EncodingCharacters
    let characterSet: HL7CharacterSet

    init(name: String, fields: [Substring], encoding: HL7EncodingCharacters, characterSet: HL7CharacterSet) {
        self.name = name
        self.fields = fields
        self.encoding = encoding
        self.characterSet = characterSet
    }

    /// The field by the standard's numbering (PID-3 is `field(3)`); an absent field is empty.
    public func field(_ number: Int) -> HL7Field {
        let raw = number >= 1 && number < fields.count ? fields[number] : ""
        return HL7Field(raw: raw, encoding: encoding, characterSet: characterSet,
                        isDelimiterField: name == "MSH" && (number == 1 || number == 2))
    }

    /// The number of the last field present (trailing empty fields that were written count).
    public var fieldCount: Int { fields.count - 1 }
}
