#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Builds the general acknowledgment (ACK) of original acknowledgment mode (HL7 v2.5 §2.9.2).
public enum HL7Acknowledgment: Sendable {
    public struct ErrorDetail: Sendable, Equatable {
        public var code: HL7ErrorCode
        /// For people: ERR-7 (diagnostic information) and MSA-3 (text message).
        public var text: String
        public var location: HL7ErrorLocation?

        public init(code: HL7ErrorCode, text: String, location: HL7ErrorLocation? = nil) {
            self.code = code
            self.text = text
            self.location = location
        }

        public init(_ error: HL7ParseError) {
            self.init(code: error.code, text: error.reason, location: error.location)
        }
    }

    /// Versions we echo in MSH-12; anything else is answered as 2.5.
    static let knownVersions: Set<String> = [
        "2.1", "2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2", "2.9",
    ]
    /// Versions whose ERR segment is the single ERR-1 (ELD) field; ERR-2…ERR-12 came with v2.5.
    static let elementErrorVersions: Set<String> = ["2.1", "2.2", "2.3", "2.3.1", "2.4"]

    /// The ACK for a message, without MLLP blocks:
    ///
    ///     MSH|^~\&|<MSH-5>|<MSH-6>|<MSH-3>|<MSH-4>|<now>||ACK^<event>^ACK|<controlID>|<MSH-11>|<MSH-12>|||||<MSH-18>
    ///     MSA|<code>|<received MSH-10>[|<error text>]
    ///     ERR||<SEG^seq^field^rep^comp>|<code>^<text>^HL70357|E|||<error text>     (v2.5 and later)
    ///     ERR|<SEG^seq^field^code&text&HL70357>                                      (v2.3, v2.4)
    ///
    /// - Our MSH-3/4 are the received MSH-5/6, or `application`/`facility` when those are empty.
    /// - MSH-7 is `timestamp` in UTC with its offset; MSH-11 the received one ("P" if empty);
    ///   MSH-12 the received version when known, else 2.5; MSH-18 is written when the message
    ///   had one (as the sender wrote it when it names `characterSet`) or `characterSet` is not ASCII.
    /// - MSA-3 repeats the error text for v2.3/2.4 receivers that ignore ERR.
    /// - Every value is escaped; the bytes are in `characterSet`, with `?` for what it cannot represent.
    public static func build(for header: HL7MessageHeader, encoding: HL7EncodingCharacters,
                             characterSet: HL7CharacterSet, code: HL7AcknowledgmentCode, controlID: String,
                             timestamp: Date, error: ErrorDetail?, application: String = "PASSERELLE",
                             facility: String = "") -> [UInt8] {
        let f = String(encoding.field)
        let c = String(encoding.component)
        let s = String(encoding.subcomponent)
        func escaped(_ text: String) -> String { HL7Escaping.encode(text, encoding: encoding) }

        let version = knownVersions.contains(header.versionID) ? header.versionID : "2.5"
        var msh = ["MSH", encoding.msh2,
                   escaped(header.receivingApplication.isEmpty ? application : header.receivingApplication),
                   escaped(header.receivingFacility.isEmpty ? facility : header.receivingFacility),
                   escaped(header.sendingApplication), escaped(header.sendingFacility),
                   timestampText(timestamp), "",
                   ["ACK", escaped(header.triggerEvent), "ACK"].joined(separator: c),
                   escaped(controlID), escaped(header.processingID.isEmpty ? "P" : header.processingID), version]
        if let msh18 = msh18(header.characterSet, characterSet: characterSet, encoding: encoding) {
            msh += ["", "", "", "", "", msh18]
        }
        var segments = [msh.joined(separator: f)]

        var msa = ["MSA", code.rawValue, escaped(header.controlID)]
        if let error { msa.append(escaped(error.text)) }
        segments.append(msa.joined(separator: f))

        if let error {
            let codeText = [String(error.code.rawValue), escaped(error.code.text), "HL70357"]
            if elementErrorVersions.contains(version) {
                let location = error.location
                let elementLocation = [location.map { escaped($0.segment) } ?? "",
                                       location.map { String($0.sequence) } ?? "",
                                       location?.field.map(String.init) ?? "",
                                       codeText.joined(separator: s)]
                segments.append(["ERR", elementLocation.joined(separator: c)].joined(separator: f))
            } else {
                let location = error.location.map { errorLocation($0, encoding: encoding) } ?? ""
                segments.append(["ERR", "", location, codeText.joined(separator: c), "E", "", "",
                                 escaped(error.text)].joined(separator: f))
            }
        }
        return characterSet.encodeReplacingUnrepresentable(segments.map { $0 + "\r" }.joined())
    }

    /// ERL (v2.5 ERR-2): segment ID ^ sequence ^ field position ^ field repetition ^ component.
    /// The repetition, which we never know, is written as 1 only when a component follows.
    private static func errorLocation(_ location: HL7ErrorLocation, encoding: HL7EncodingCharacters) -> String {
        var parts = [HL7Escaping.encode(location.segment, encoding: encoding), String(location.sequence)]
        if let field = location.field {
            parts.append(String(field))
            if let component = location.component { parts += ["1", String(component)] }
        }
        return parts.joined(separator: String(encoding.component))
    }

    /// The received MSH-18 when it names the set we answer in (it may repeat, for ISO 2022
    /// alternates, and the sender's own spelling is best echoed); the set's name otherwise,
    /// unless it is ASCII and the message had none.
    private static func msh18(_ received: String, characterSet: HL7CharacterSet,
                              encoding: HL7EncodingCharacters) -> String? {
        if !received.isEmpty,
           HL7CharacterSet(msh18: HL7CharacterSet.firstComponent(received, encoding: encoding)) == characterSet,
           !received.contains(where: { $0 == encoding.field || $0 == "\r" || $0 == "\n" }) {
            return received
        }
        if received.isEmpty, characterSet == .ascii { return nil }
        return characterSet.rawValue
    }

    /// YYYYMMDDHHMMSS+0000 (DTM with its offset: a bare time would be read as the receiver's local time).
    /// `gmtime_r`, not a Calendar: one is made per ACK, and Foundation's goes through ICU
    /// (~100 µs each on the listener's path).
    static func timestampText(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)" + two(parts.tm_mon + 1) + two(parts.tm_mday) + two(parts.tm_hour)
            + two(parts.tm_min) + two(parts.tm_sec) + "+0000"
    }
}
