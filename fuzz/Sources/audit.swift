// Target `audit`: the audit encoders. An AuditEvent and source made of the input's bytes are
// told as a DICOM audit message (PS3.15 A.5 XML), framed as RFC 5424 syslog, and linked in
// the hash chain. Invariants: the XML is well formed (only XML 1.0 characters, read back by
// MiniXML, a participant's UserID intact); the syslog header and structured data end where
// RFC 5424 says; the canonical content reads back to the event; a chain made of it verifies.
import Audit
@testable import DICOMweb
import Foundation

let detailKeys = ["count", "level", "keys", "sop_class_uid", "reason", "destination", "x"]

func event(_ input: inout FuzzInput) -> AuditEvent {
    func optional(_ input: inout FuzzInput) -> String? { input.bool() ? input.string() : nil }
    let action = input.pick(AuditEvent.Action.allCases)
    let outcome = input.pick([AuditEvent.Outcome.success, .minorFailure, .seriousFailure, .majorFailure])
    // Whole milliseconds from 1970 to about 2109: what the chain's timestamps carry.
    let milliseconds = (UInt64(input.uint16()) << 26 | UInt64(input.uint16()) << 10 | UInt64(input.byte())) % (1 << 42)
    var event = AuditEvent(action: action, at: Date(timeIntervalSince1970: Double(milliseconds) / 1000), outcome: outcome,
                           outcomeDescription: optional(&input),
                           actor: .init(aeTitle: optional(&input), address: optional(&input), userName: optional(&input)),
                           destination: optional(&input))
    for _ in 0..<input.byte() % 4 { event.patients.append(.init(id: input.string(), issuer: input.string())) }
    for _ in 0..<input.byte() % 4 { event.studies.append(input.string()) }
    for _ in 0..<input.byte() % 4 { event.details[input.pick(detailKeys)] = input.string() }
    return event
}

/// XML 1.0 Char production (§2.2).
func isXMLCharacter(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x9, 0xA, 0xD, 0x20...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF: true
    default: false
    }
}

func checkXML(_ xml: String, destination: String?) {
    check(xml.unicodeScalars.allSatisfy(isXMLCharacter), "the audit message has a character XML forbids")
    let root: MiniXML.Node
    do {
        root = try MiniXML.parse(Array(xml.utf8))
    } catch {
        return check(false, "the audit message is not well formed: \(error)")
    }
    check(root.name == "AuditMessage", "root <\(root.name)>")
    guard let destination else { return }
    let kept = String(String.UnicodeScalarView(destination.unicodeScalars.filter {
        isXMLCharacter($0) && ($0.value >= 0x20 || $0 == "\t" || $0 == "\n" || $0 == "\r")
    }))
    let userIDs = root.children.filter { $0.name == "ActiveParticipant" }.compactMap { $0.attributes["UserID"] }
    check(userIDs.contains(kept), "the destination's UserID does not read back")
}

/// RFC 5424: `<PRI>1 TS HOST APP PROCID MSGID [SD-ID PARAM="…"…] BOM MSG`: six header fields
/// (PRINTUSASCII, so '[' may be in one), then the structured data, a space and the BOM.
func checkSyslog(_ bytes: [UInt8]) {
    var spaces: [Int] = []
    for (index, byte) in bytes.enumerated() where byte == 0x20 {
        spaces.append(index)
        if spaces.count == 6 { break }
    }
    guard spaces.count == 6 else { return check(false, "fewer than six header fields") }
    let header = bytes[..<spaces[5]]
    check(header.allSatisfy { (32...126).contains($0) }, "the header is not printable ASCII")
    check(header.split(separator: 0x20, omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty },
          "an empty header field")
    check(bytes.count > spaces[5] + 1 && bytes[spaces[5] + 1] == UInt8(ascii: "["), "no structured data after the header")
    var index = spaces[5] + 2
    var inValue = false
    while index < bytes.count {
        let byte = bytes[index]
        if inValue && byte == UInt8(ascii: "\\") { index += 2; continue }
        if byte == UInt8(ascii: "\"") { inValue.toggle() }
        if !inValue && byte == UInt8(ascii: "]") { break }
        index += 1
    }
    check(Array(bytes[min(bytes.count, index + 1)...].prefix(4)) == [0x20, 0xEF, 0xBB, 0xBF],
          "the structured data does not end before the BOM")
}

func fuzzOne(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    let event = event(&input)
    let source = DICOMAuditMessage.Source(sourceID: input.string(), enterpriseSiteID: input.bool() ? input.string() : nil,
                                          aeTitle: input.string(), hostName: input.string(), processID: input.string())
    let message = DICOMAuditMessage(event, source: source)
    checkXML(message.xml, destination: event.destination)

    let content = AuditChain.canonicalContent(event)
    let hash = AuditChain.hash(previous: AuditChain.genesis, content: content)
    let syslog = SyslogMessage(severity: SyslogMessage.severity(for: event.outcome), timestamp: event.at,
                               hostName: source.hostName, processID: source.processID,
                               parameters: [("seq", "1"), ("hash", hash), ("head", input.string())], message: message.xml)
    checkSyslog(syslog.bytes)
    let frame = syslog.octetCountedFrame
    check(frame.starts(with: Array("\(syslog.bytes.count) ".utf8)), "the octet count is wrong")

    guard var back = AuditChain.event(fromCanonicalContent: content) else { return check(false, "canonical content does not read back") }
    check(abs(back.at.timeIntervalSince(event.at)) < 0.001, "the timestamp changes")
    back.at = event.at
    check(back == event, "the event changes through its canonical content")
    let second = AuditChain.hash(previous: hash, content: content)
    let rows = [AuditChain.Row(id: 1, content: content, previousHash: AuditChain.genesis, hash: hash),
                AuditChain.Row(id: 2, content: content, previousHash: hash, hash: second)]
    check(AuditChain.verify(rows, head: second) == nil, "a well-made chain does not verify")
}
