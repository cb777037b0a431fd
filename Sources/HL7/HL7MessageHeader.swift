/// What MSH says about a message: who sent it to whom, what it is, how to answer it.
/// Values are the first component, unescaped, "" when absent.
public struct HL7MessageHeader: Sendable, Equatable {
    /// MSH-3.1 (HD namespace ID).
    public var sendingApplication: String
    /// MSH-4.1.
    public var sendingFacility: String
    /// MSH-5.1.
    public var receivingApplication: String
    /// MSH-6.1.
    public var receivingFacility: String
    /// MSH-7.1, as written (TS/DTM: YYYYMMDDHHMMSS[.S…][+/-ZZZZ]).
    public var dateTime: String
    /// MSH-9.1, e.g. "ORU".
    public var messageCode: String
    /// MSH-9.2, e.g. "R01".
    public var triggerEvent: String
    /// MSH-9.3, e.g. "ORU_R01"; often "" before v2.5.
    public var messageStructure: String
    /// MSH-10.
    public var controlID: String
    /// MSH-11.1: P production, T training, D debugging.
    public var processingID: String
    /// MSH-12.1, e.g. "2.5.1".
    public var versionID: String
    /// MSH-18 as written ("" when absent), to echo in the acknowledgment.
    public var characterSet: String

    public init(sendingApplication: String = "", sendingFacility: String = "", receivingApplication: String = "",
                receivingFacility: String = "", dateTime: String = "", messageCode: String = "",
                triggerEvent: String = "", messageStructure: String = "", controlID: String = "",
                processingID: String = "", versionID: String = "", characterSet: String = "") {
        self.sendingApplication = sendingApplication
        self.sendingFacility = sendingFacility
        self.receivingApplication = receivingApplication
        self.receivingFacility = receivingFacility
        self.dateTime = dateTime
        self.messageCode = messageCode
        self.triggerEvent = triggerEvent
        self.messageStructure = messageStructure
        self.controlID = controlID
        self.processingID = processingID
        self.versionID = versionID
        self.characterSet = characterSet
    }

    init(msh: HL7Segment) {
        self.init(
            sendingApplication: msh.field(3).value(), sendingFacility: msh.field(4).value(),
            receivingApplication: msh.field(5).value(), receivingFacility: msh.field(6).value(),
            dateTime: msh.field(7).value(),
            messageCode: msh.field(9).value(component: 1), triggerEvent: msh.field(9).value(component: 2),
            messageStructure: msh.field(9).value(component: 3),
            controlID: msh.field(10).value(), processingID: msh.field(11).value(),
            versionID: msh.field(12).value(), characterSet: String(msh.field(18).raw))
    }

    /// Whatever MSH fields can be read from bytes that did not parse, so that a reject can
    /// still name the control ID and answer the sender; "" for what cannot be read. The
    /// separators are the declared ones when valid, else `|^~\&` (with the declared field
    /// separator when that one is usable); the text is decoded in the declared character set,
    /// else as UTF-8, else as Latin-1 (which never fails). nil when the bytes do not start with "MSH".
    public static func bestEffort(_ bytes: [UInt8]) -> HL7MessageHeader? {
        guard bytes.starts(with: Array("MSH".utf8)) else { return nil }
        let encoding = bestEffortEncoding(bytes)
        let line = bytes.prefix { $0 != 0x0D && $0 != 0x0A }
        let characterSet = [HL7CharacterSet(declaredIn: bytes), .utf8, .latin1].lazy
            .compactMap { $0 }
            .first { $0.decode(line) != nil } ?? .latin1
        let text = characterSet.decode(line) ?? ""
        var fields = HL7Field.split(Substring(text), separator: encoding.fieldByte)
        if fields.count > 1 { fields.insert(Substring(String(encoding.field)), at: 1) }
        return HL7MessageHeader(msh: HL7Segment(name: "MSH", fields: fields, encoding: encoding,
                                                characterSet: characterSet))
    }

    /// The separators to read (and answer) a message that may not have parsed with.
    static func bestEffortEncoding(_ bytes: [UInt8]) -> HL7EncodingCharacters {
        if let declared = HL7EncodingCharacters.read(bytes) { return declared }
        let standard = HL7EncodingCharacters.standard
        guard bytes.count > 3,
              let withDeclaredField = HL7EncodingCharacters(
                field: bytes[3], component: standard.componentByte, repetition: standard.repetitionByte,
                escape: standard.escapeByte, subcomponent: standard.subcomponentByte)
        else { return standard }
        return withDeclaredField
    }
}
