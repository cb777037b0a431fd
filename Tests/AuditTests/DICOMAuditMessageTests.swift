import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import Audit

/// Parses the XML into (element name, attributes) in document order, and its text.
final class XMLCollector: NSObject, XMLParserDelegate {
    var elements: [(name: String, attributes: [String: String])] = []
    var text: [String: String] = [:]
    private var current = ""

    static func parse(_ xml: String) -> XMLCollector? {
        let collector = XMLCollector()
        let parser = XMLParser(data: Data(xml.utf8))
        parser.delegate = collector
        return parser.parse() ? collector : nil
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        elements.append((name, attributes))
        current = name
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        text[current, default: ""] += string
    }

    func all(_ name: String) -> [[String: String]] { elements.filter { $0.name == name }.map(\.attributes) }
}

@Suite struct DICOMAuditMessageTests {
    let source = DICOMAuditMessage.Source(sourceID: "csorl45000", enterpriseSiteID: "213", aeTitle: "PASSERELLE",
                                          hostName: "gw.example", processID: "42")

    @Test func instancesReceivedCarriesCodesParticipantsAndObjects() throws {
        let event = AuditEvent(action: .instancesReceived, at: Date(timeIntervalSince1970: 1_800_000_000),
                               actor: .init(aeTitle: "CT1", address: "10.0.0.5:4000", userName: "dr<house>"),
                               destination: "PASSERELLE", patients: [.init(id: "P&1", issuer: "CHR-ORLEANS")],
                               studies: ["1.2.3"], details: ["count": "12"])
        let xml = DICOMAuditMessage(event, source: source).xml
        let parsed = try #require(XMLCollector.parse(xml))
        #expect(parsed.elements.first?.name == "AuditMessage")
        #expect(parsed.all("EventIdentification").first?["EventActionCode"] == "C")
        #expect(parsed.all("EventIdentification").first?["EventOutcomeIndicator"] == "0")
        #expect(parsed.all("EventIdentification").first?["EventDateTime"] == "2027-01-15T08:00:00.000Z")
        #expect(parsed.all("EventID").first?["csd-code"] == "110104")
        #expect(parsed.all("EventID").first?["codeSystemName"] == "DCM")
        let participants = parsed.all("ActiveParticipant")
        #expect(participants.count == 3)
        #expect(participants[0]["UserID"] == "dr<house>")
        #expect(participants[0]["AlternativeUserID"] == "AETITLES=CT1")
        #expect(participants[0]["NetworkAccessPointID"] == "10.0.0.5")
        #expect(participants[0]["NetworkAccessPointTypeCode"] == "2")
        #expect(participants[0]["UserIsRequestor"] == "true")
        #expect(participants[1]["UserID"] == "PASSERELLE")
        #expect(participants[1]["UserIsRequestor"] == "false")
        #expect(parsed.all("RoleIDCode").map { $0["csd-code"] } == ["110153", "110152"])
        #expect(parsed.all("AuditSourceIdentification").first == ["AuditEnterpriseSiteID": "213", "AuditSourceID": "csorl45000"])
        let objects = parsed.all("ParticipantObjectIdentification")
        #expect(objects.map { $0["ParticipantObjectID"] } == ["1.2.3", "P&1^^^CHR-ORLEANS"])
        #expect(objects[1]["ParticipantObjectTypeCode"] == "1")
        #expect(objects[1]["ParticipantObjectTypeCodeRole"] == "1")
        #expect(parsed.all("ParticipantObjectIDTypeCode").map { $0["csd-code"] } == ["110180", "2"])
        #expect(parsed.all("ParticipantObjectDetail").first?["value"] == Data("12".utf8).base64EncodedString())
        #expect(!xml.contains("dr<house>"))
    }

    @Test func queryCarriesSOPClassAndKeys() throws {
        let event = AuditEvent(action: .query, actor: .init(aeTitle: "VIEWER"), destination: "MIRC",
                               details: ["keys": "PatientID=P1", "level": "STUDY", "sop_class_uid": "1.2.840.10008.5.1.4.1.2.2.1"])
        let parsed = try #require(XMLCollector.parse(DICOMAuditMessage(event, source: source).xml))
        #expect(parsed.all("EventID").first?["csd-code"] == "110112")
        #expect(parsed.all("ParticipantObjectIDTypeCode").first?["csd-code"] == "110181")
        #expect(parsed.text["ParticipantObjectQuery"] == Data("PatientID=P1".utf8).base64EncodedString())
    }

    @Test(arguments: AuditEvent.Action.allCases)
    func everyActionIsWellFormedAndCoded(_ action: AuditEvent.Action) throws {
        let event = AuditEvent(action: action, outcome: .seriousFailure, outcomeDescription: "a \u{1} \"b\" & c",
                               actor: .gateway, destination: "archive", studies: ["1.2"])
        let parsed = try #require(XMLCollector.parse(DICOMAuditMessage(event, source: source).xml))
        let coding = DICOMAuditMessage.coding(for: action)
        #expect(parsed.all("EventID").first?["csd-code"] == coding.eventID.code)
        #expect(parsed.all("EventTypeCode").first?["csd-code"] == coding.eventType?.code)
        #expect(parsed.all("EventIdentification").first?["EventOutcomeIndicator"] == "8")
        #expect(parsed.text["EventOutcomeDescription"] == "a  \"b\" & c")
        // The gateway requests its own acts.
        #expect(parsed.all("ActiveParticipant").first?["UserIsRequestor"] == "true")
    }

    @Test func aRefusedTLSPeerIsTheRequestorNamedByItsAddress() throws {
        let event = AuditEvent(action: .associationRejected, outcome: .minorFailure,
                               outcomeDescription: "TLS: no client certificate", actor: .init(address: "10.0.0.9:40000"))
        let parsed = try #require(XMLCollector.parse(DICOMAuditMessage(event, source: source).xml))
        #expect(parsed.all("EventID").first?["csd-code"] == "110113")
        #expect(parsed.all("EventTypeCode").first?["csd-code"] == "110126")
        let participants = parsed.all("ActiveParticipant")
        #expect(participants.count == 2)
        #expect(participants[0]["UserID"] == "10.0.0.9" && participants[0]["NetworkAccessPointID"] == "10.0.0.9")
        #expect(participants[0]["UserIsRequestor"] == "true" && participants[1]["UserIsRequestor"] == "false")
        #expect(parsed.text["EventOutcomeDescription"] == "TLS: no client certificate")
    }

    @Test func addressesLoseTheirPort() {
        #expect(DICOMAuditMessage.host("10.1.2.3:104") == "10.1.2.3")
        #expect(DICOMAuditMessage.host("[::1]:104") == "::1")
        #expect(DICOMAuditMessage.host("local") == "local")
        #expect(DICOMAuditMessage.host("fe80::1") == "fe80::1")
    }
}

@Suite struct SyslogMessageTests {
    let message = SyslogMessage(severity: 5, timestamp: Date(timeIntervalSince1970: 1_800_000_000.25),
                                hostName: "gw example", processID: "42",
                                parameters: [("seq", "3"), ("head", "a\"b]c\\")], message: "<AuditMessage/>")

    @Test func headerStructuredDataAndBOM() {
        let text = String(decoding: message.bytes, as: UTF8.self)
        #expect(text == "<85>1 2027-01-15T08:00:00.250Z gwexample passerelle 42 IHE+RFC-3881 "
                + "[passerelle@32473 seq=\"3\" head=\"a\\\"b\\]c\\\\\"] \u{FEFF}<AuditMessage/>")
        #expect(Array(message.bytes.suffix(18).prefix(3)) == [0xEF, 0xBB, 0xBF])
    }

    @Test func octetCountingPrefixesTheLength() {
        let frame = message.octetCountedFrame
        let record = message.bytes
        #expect(frame == Array("\(record.count) ".utf8) + record)
    }

    @Test func severityFollowsOutcome() {
        #expect(SyslogMessage.severity(for: .success) == 5)
        #expect(SyslogMessage.severity(for: .minorFailure) == 4)
        #expect(SyslogMessage.severity(for: .seriousFailure) == 3)
        #expect(SyslogMessage.severity(for: .majorFailure) == 2)
    }

    @Test func emptyHeaderFieldIsNil() {
        #expect(SyslogMessage.field("", max: 10) == "-")
        #expect(SyslogMessage.field("é", max: 10) == "-")
    }
}

@Suite struct AuditRepositoryTests {
    @Test func parsesSchemesAndPorts() throws {
        #expect(try AuditRepository(url: "tls://audit.example:6514") == .init(transport: .tls, host: "audit.example", port: 6514))
        #expect(try AuditRepository(url: "tcp://10.0.0.1") == .init(transport: .tcp, host: "10.0.0.1", port: 601))
        #expect(try AuditRepository(url: "UDP://h:5140/") == .init(transport: .udp, host: "h", port: 5140))
        #expect(try AuditRepository(url: "udp://[::1]:514") == .init(transport: .udp, host: "::1", port: 514))
        #expect(try AuditRepository(url: "tls://h").port == 6514)
        #expect(try AuditRepository(url: "udp://[::1]:514").description == "udp://[::1]:514")
    }

    @Test(arguments: ["audit.example:6514", "http://h:1", "tls://:6514", "tls://h:0", "tls://h:x", "tls://h:1/path",
                      "tls://u@h:1", "tls://[::1"])
    func refusesMalformed(_ text: String) {
        #expect(throws: AuditRepository.ParseError.self) { try AuditRepository(url: text) }
    }
}
