import Foundation
import Testing

@testable import HL7

@Suite struct HL7AcknowledgmentTests {
    static let now = Date(timeIntervalSince1970: 1_710_238_500)  // 2024-03-12 10:15:00 UTC

    static func segments(_ bytes: [UInt8]) -> [String] {
        String(decoding: bytes, as: UTF8.self).split(separator: "\r").map(String.init)
    }

    @Test func acceptsAV25Message() throws {
        let received = try HL7Message.parse(HL7Fixtures.oruR01)
        let ack = HL7Acknowledgment.build(for: received.header, encoding: received.encoding,
                                          characterSet: received.characterSet, code: .applicationAccept,
                                          controlID: "ACK1", timestamp: Self.now, error: nil)
        #expect(ack.last == 0x0D)
        #expect(Self.segments(ack) == [
            #"MSH|^~\&|PACS|RAD|LAB|HOSP|20240312101500+0000||ACK^R01^ACK|ACK1|P|2.5"#,
            "MSA|AA|ORU00002",
        ])
        let parsed = try HL7Message.parse(ack)
        #expect(parsed.header.messageCode == "ACK" && parsed.header.triggerEvent == "R01")
        #expect(parsed.segment(named: "MSA")?.field(2).value() == received.header.controlID)
    }

    @Test func rejectsWithAnERRSegmentInV25Form() throws {
        let received = try HL7Message.parse(HL7Fixtures.adtA08)
        let error = HL7Acknowledgment.ErrorDetail(
            code: .unsupportedMessageType, text: "ADT^A08 is not accepted | here",
            location: HL7ErrorLocation(segment: "MSH", field: 9, component: 1))
        let ack = HL7Acknowledgment.build(for: received.header, encoding: received.encoding,
                                          characterSet: received.characterSet, code: .applicationReject,
                                          controlID: "ACK2", timestamp: Self.now, error: error)
        #expect(Self.segments(ack) == [
            #"MSH|^~\&|PASSERELLE|RAD|EPIC|HOSP|20240312101500+0000||ACK^A08^ACK|ACK2|P|2.5.1||||||UNICODE UTF-8"#,
            #"MSA|AR|ADT00001|ADT\S\A08 is not accepted \F\ here"#,
            #"ERR||MSH^1^9^1^1|200^Unsupported message type^HL70357|E|||ADT\S\A08 is not accepted \F\ here"#,
        ])
        let parsed = try HL7Message.parse(ack)
        #expect(parsed.characterSet == .utf8)
        let err = try #require(parsed.segment(named: "ERR"))
        #expect(err.field(3).value() == "200")
        #expect(err.field(7).value() == "ADT^A08 is not accepted | here")
        #expect(parsed.segment(named: "MSA")?.field(3).value() == "ADT^A08 is not accepted | here")
    }

    @Test func rejectsWithERR1InV23Form() throws {
        let received = try HL7Message.parse(HL7Fixtures.customSeparators)
        let error = HL7Acknowledgment.ErrorDetail(
            code: .requiredFieldMissing, text: "PID-3 & co",
            location: HL7ErrorLocation(segment: "PID", field: 3))
        let ack = HL7Acknowledgment.build(for: received.header, encoding: received.encoding,
                                          characterSet: received.characterSet, code: .applicationError,
                                          controlID: "ACK3", timestamp: Self.now, error: error,
                                          application: "GW", facility: "SITE")
        #expect(Self.segments(ack) == [
            "MSH*!@#$*RECEIVER*RADFAC*SENDER*FAC*20240312101500+0000**ACK!O01!ACK*ACK3*P*2.3",
            "MSA*AE*CUSTOM1*PID-3 & co",
            "ERR*PID!1!3!101$Required field missing$HL70357",
        ])
        let parsed = try HL7Message.parse(ack)
        #expect(parsed.segment(named: "ERR")?.field(1).value(component: 4, subcomponent: 2) == "Required field missing")
    }

    @Test func rejectsAnUnparsableMessageFromItsBestEffortHeader() throws {
        let bytes = Array("MSH|^^\\&|SEND|FAC|||20240101||ORU^R01|DUP1||2.9.9\r".utf8)
        let parseError = try #require(throws: HL7ParseError.self) { try HL7Message.parse(bytes) }
        let header = try #require(HL7MessageHeader.bestEffort(bytes))
        let ack = HL7Acknowledgment.build(for: header, encoding: HL7EncodingCharacters(declaredIn: bytes) ?? .standard,
                                          characterSet: HL7CharacterSet(declaredIn: bytes) ?? .ascii,
                                          code: .applicationReject, controlID: "ACK4", timestamp: Self.now,
                                          error: .init(parseError), facility: "SITE")
        let parsed = try HL7Message.parse(ack)
        #expect(parsed.header.sendingApplication == "PASSERELLE" && parsed.header.sendingFacility == "SITE")
        #expect(parsed.header.receivingApplication == "SEND" && parsed.header.versionID == "2.5")
        #expect(parsed.header.processingID == "P")
        #expect(parsed.segment(named: "MSA")?.field(2).value() == "DUP1")
        #expect(parsed.segment(named: "ERR")?.field(2).value(component: 3) == "2")
        #expect(parsed.segment(named: "ERR")?.field(3).value() == "102")
    }

    @Test func encodesInTheMessageCharacterSet() throws {
        let bytes = Array("MSH|^~\\&|A|B|C|D|20240101||ADT^A08|L1|P|2.4||||||8859/1\r".utf8)
        let received = try HL7Message.parse(bytes)
        let ack = HL7Acknowledgment.build(for: received.header, encoding: received.encoding,
                                          characterSet: received.characterSet, code: .applicationError,
                                          controlID: "ACK5", timestamp: Self.now,
                                          error: .init(code: .applicationInternalError, text: "disque plein € é"))
        #expect(ack.contains(0xE9) && ack.contains(UInt8(ascii: "?")))
        let parsed = try HL7Message.parse(ack)
        #expect(parsed.header.characterSet == "8859/1")
        #expect(parsed.segment(named: "MSA")?.field(3).value() == "disque plein ? é")
        #expect(parsed.segment(named: "ERR")?.field(1).value(component: 4) == "207")
    }

    @Test func errorCodesCarryTheirTableText() {
        #expect(HL7ErrorCode.requiredFieldMissing.text == "Required field missing")
        #expect(HL7ErrorCode.unsupportedVersionID.rawValue == 203)
    }
}
