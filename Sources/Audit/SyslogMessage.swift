import Foundation

/// An RFC 5424 syslog record carrying one DICOM audit message (IHE ITI-20, DICOM PS3.15 A.5):
///
/// ```
/// <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [passerelle@32473 seq="…" hash="…" head="…"] BOM XML
/// ```
/// PRI = facility 10 (authpriv) × 8 + a severity from the outcome; MSGID `IHE+RFC-3881`; the
/// structured data carries the row's place in the hash chain and the chain head when sent
/// (32473 is the documentation enterprise number of RFC 5612).
public struct SyslogMessage: Sendable, Equatable {
    public static let facility = 10
    public static let appName = "passerelle"
    public static let messageID = "IHE+RFC-3881"
    public static let structuredDataID = "passerelle@32473"

    public var severity: Int
    public var timestamp: Date
    public var hostName: String
    public var processID: String
    /// SD-PARAMs of the passerelle element, in order.
    public var parameters: [(String, String)]
    public var message: String

    public init(severity: Int, timestamp: Date, hostName: String, processID: String,
                parameters: [(String, String)], message: String) {
        self.severity = severity
        self.timestamp = timestamp
        self.hostName = hostName
        self.processID = processID
        self.parameters = parameters
        self.message = message
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.severity == b.severity && a.timestamp == b.timestamp && a.hostName == b.hostName
            && a.processID == b.processID && a.message == b.message
            && a.parameters.map(\.0) == b.parameters.map(\.0) && a.parameters.map(\.1) == b.parameters.map(\.1)
    }

    /// RFC 5424 §6.2.1 severities: success notice (5), minor failure warning (4), serious
    /// failure error (3), major failure critical (2).
    public static func severity(for outcome: AuditEvent.Outcome) -> Int {
        switch outcome {
        case .success: 5
        case .minorFailure: 4
        case .seriousFailure: 3
        case .majorFailure: 2
        }
    }

    /// The record's bytes (no framing): header, structured data, BOM, then the message.
    public var bytes: [UInt8] {
        let pri = Self.facility * 8 + severity
        var sd = "[\(Self.structuredDataID)"
        for (name, value) in parameters { sd += " \(name)=\"\(Self.escapeParameter(value))\"" }
        sd += "]"
        let header = "<\(pri)>1 \(AuditChain.timestamp(timestamp)) \(Self.field(hostName, max: 255)) "
            + "\(Self.appName) \(Self.field(processID, max: 128)) \(Self.messageID) \(sd) "
        return Array(header.utf8) + [0xEF, 0xBB, 0xBF] + Array(message.utf8)
    }

    /// RFC 5425 §4.3 / RFC 6587 §3.4.1 octet counting: `MSG-LEN SP SYSLOG-MSG`.
    public var octetCountedFrame: [UInt8] {
        let record = bytes
        return Array("\(record.count) ".utf8) + record
    }

    /// RFC 5424 §6.3.3: `"`, `\` and `]` are escaped with a backslash in PARAM-VALUE.
    static func escapeParameter(_ value: String) -> String {
        var out = ""
        for character in value {
            if character == "\"" || character == "\\" || character == "]" { out.append("\\") }
            out.append(character)
        }
        return out
    }

    /// Header fields are PRINTUSASCII (33–126) and bounded; empty is NILVALUE "-".
    static func field(_ value: String, max: Int) -> String {
        let printable = String(value.unicodeScalars.filter { (33...126).contains($0.value) }.prefix(max))
        return printable.isEmpty ? "-" : printable
    }
}
