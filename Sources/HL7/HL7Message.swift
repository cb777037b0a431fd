/// An HL7 v2 message, parsed for its structure only: segments, fields, delimiters and
/// character set. What the message means (its type, version, profile) is the caller's business.
public struct HL7Message: Sendable {
    public var encoding: HL7EncodingCharacters
    public var characterSet: HL7CharacterSet
    public var segments: [HL7Segment]
    /// What MSH says.
    public var header: HL7MessageHeader

    /// Parses the bytes between the MLLP blocks (HL7 v2.5 §2.5, §2.6).
    ///
    /// Segments end with CR; LF and CR LF are tolerated and empty lines ignored. Checked:
    /// - it starts with "MSH" and MSH-1/MSH-2 give five distinct encoding characters (MSH-2 has
    ///   four; a fifth, the v2.7 truncation character, is ignored);
    /// - MSH-18 names a supported ``HL7CharacterSet`` and every byte is valid in it. MSH-18 is
    ///   read from the raw bytes (MSH is ASCII), then the whole message is decoded;
    /// - segment names are three uppercase letters or digits;
    /// - MSH-9.1, MSH-9.2, MSH-10, MSH-11 and MSH-12 are present (the values are not judged).
    public static func parse(_ bytes: [UInt8]) throws(HL7ParseError) -> HL7Message {
        guard bytes.starts(with: Array("MSH".utf8)) else {
            throw HL7ParseError(code: .segmentSequenceError, reason: "the message does not start with an MSH segment")
        }
        let encoding = try readEncodingCharacters(bytes)
        let characterSet = try readCharacterSet(bytes, encoding: encoding)
        guard let text = characterSet.decode(bytes) else {
            throw invalidBytes(bytes, characterSet: characterSet)
        }
        var segments: [HL7Segment] = []
        for (index, line) in lines(Substring(text)).enumerated() {
            segments.append(try segment(line, number: index + 1, encoding: encoding, characterSet: characterSet))
        }
        guard let msh = segments.first else {
            throw HL7ParseError(code: .segmentSequenceError, reason: "the message does not start with an MSH segment")
        }
        let header = HL7MessageHeader(msh: msh)
        try checkRequiredFields(header)
        return HL7Message(encoding: encoding, characterSet: characterSet, segments: segments, header: header)
    }

    public func segments(named name: String) -> [HL7Segment] {
        segments.filter { $0.name == name }
    }

    public func segment(named name: String) -> HL7Segment? {
        segments.first { $0.name == name }
    }

    // MARK: Parsing steps

    private static func readEncodingCharacters(_ bytes: [UInt8]) throws(HL7ParseError) -> HL7EncodingCharacters {
        guard bytes.count > 3, HL7EncodingCharacters.isAllowed(bytes[3]) else {
            throw HL7ParseError(code: .dataTypeError,
                                reason: "MSH-1 (field separator) must be a printable ASCII punctuation character",
                                location: HL7ErrorLocation(segment: "MSH", field: 1))
        }
        guard let encoding = HL7EncodingCharacters.read(bytes) else {
            let msh2 = bytes[4...].prefix { $0 != bytes[3] && $0 != 0x0D && $0 != 0x0A }
            throw HL7ParseError(
                code: .dataTypeError,
                reason: "MSH-2 (encoding characters) must be four distinct punctuation characters, other than MSH-1; "
                    + "found \"\(MLLPFrameDecoder.printable(msh2.prefix(16)))\"",
                location: HL7ErrorLocation(segment: "MSH", field: 2))
        }
        return encoding
    }

    private static func readCharacterSet(_ bytes: [UInt8], encoding: HL7EncodingCharacters)
        throws(HL7ParseError) -> HL7CharacterSet
    {
        let location = HL7ErrorLocation(segment: "MSH", field: 18)
        guard let msh18 = HL7CharacterSet.rawMSH18(bytes, encoding: encoding) else {
            throw HL7ParseError(code: .dataTypeError, reason: "MSH-18 (character set) is not ASCII", location: location)
        }
        let name = HL7CharacterSet.firstComponent(msh18, encoding: encoding)
        guard let characterSet = HL7CharacterSet(msh18: name) else {
            let supported = HL7CharacterSet.allCases.map(\.rawValue).joined(separator: ", ")
            throw HL7ParseError(code: .tableValueNotFound,
                                reason: "MSH-18 (character set) \"\(name)\" is not supported (\(supported))",
                                location: location)
        }
        return characterSet
    }

    /// Names the first segment holding a byte invalid in the character set.
    private static func invalidBytes(_ bytes: [UInt8], characterSet: HL7CharacterSet) -> HL7ParseError {
        var occurrences: [String: Int] = [:]
        for line in bytes.split(whereSeparator: { $0 == 0x0D || $0 == 0x0A }) {
            let name = String(decoding: line.prefix(3), as: UTF8.self)
            occurrences[name, default: 0] += 1
            if characterSet.decode(line) == nil {
                return HL7ParseError(
                    code: .dataTypeError,
                    reason: "segment \(name) holds bytes that are not valid \(characterSet.rawValue) (MSH-18)",
                    location: HL7ErrorLocation(segment: name, sequence: occurrences[name] ?? 1))
            }
        }
        return HL7ParseError(code: .dataTypeError, reason: "the message is not valid \(characterSet.rawValue) (MSH-18)")
    }

    /// Segments: split on CR and on LF, so CR, LF and CR LF all end one; empty lines dropped.
    private static func lines(_ text: Substring) -> [Substring] {
        var lines: [Substring] = []
        let utf8 = text.utf8
        var start = utf8.startIndex
        while start < utf8.endIndex {
            let end = utf8[start...].firstIndex { $0 == 0x0D || $0 == 0x0A } ?? utf8.endIndex
            if end > start { lines.append(text[start..<end]) }
            start = end < utf8.endIndex ? utf8.index(after: end) : end
        }
        return lines
    }

    private static func segment(_ line: Substring, number: Int, encoding: HL7EncodingCharacters,
                                characterSet: HL7CharacterSet) throws(HL7ParseError) -> HL7Segment {
        var fields = HL7Field.split(line, separator: encoding.fieldByte)
        let name = String(fields[0])
        guard name.utf8.count == 3,
              name.utf8.allSatisfy({ (0x41...0x5A).contains($0) || (0x30...0x39).contains($0) })
        else {
            throw HL7ParseError(
                code: .segmentSequenceError,
                reason: "segment \(number) does not start with a segment name (three uppercase letters or digits): "
                    + "\"\(MLLPFrameDecoder.printable(name.utf8.prefix(16)))\"")
        }
        if name == "MSH" {
            // MSH-1 is the separator itself: counting it keeps the standard's numbering.
            fields.insert(Substring(String(encoding.field)), at: 1)
        }
        return HL7Segment(name: name, fields: fields, encoding: encoding, characterSet: characterSet)
    }

    private static func checkRequiredFields(_ header: HL7MessageHeader) throws(HL7ParseError) {
        if header.messageCode.isEmpty { throw .missing(9, "message code", component: 1) }
        if header.triggerEvent.isEmpty { throw .missing(9, "trigger event", component: 2) }
        if header.controlID.isEmpty { throw .missing(10, "message control ID") }
        if header.processingID.isEmpty { throw .missing(11, "processing ID") }
        if header.versionID.isEmpty { throw .missing(12, "version ID") }
    }
}
