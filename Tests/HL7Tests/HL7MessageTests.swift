import Foundation
import Testing

@testable import HL7

@Suite struct HL7MessageTests {
    @Test func parsesAnADTA08() throws {
        let message = try HL7Message.parse(HL7Fixtures.adtA08)
        #expect(message.segments.map(\.name) == ["MSH", "EVN", "PID", "PV1"])
        #expect(message.characterSet == .utf8)
        #expect(message.encoding == .standard)
        #expect(message.header == HL7MessageHeader(
            sendingApplication: "EPIC", sendingFacility: "HOSP", receivingApplication: "PASSERELLE",
            receivingFacility: "RAD", dateTime: "20240312101500+0100", messageCode: "ADT", triggerEvent: "A08",
            messageStructure: "ADT_A01", controlID: "ADT00001", processingID: "P", versionID: "2.5.1",
            characterSet: "UNICODE UTF-8"))

        let msh = try #require(message.segment(named: "MSH"))
        #expect(msh.field(1).value() == "|")
        #expect(msh.field(2).value() == #"^~\&"#)
        #expect(msh.field(4).value(component: 2) == "1.2.250.1.1")
        #expect(msh.fieldCount == 18)

        let pid = try #require(message.segment(named: "PID"))
        #expect(pid.field(3).repetitionCount == 2)
        #expect(pid.field(3).value() == "123456")
        #expect(pid.field(3).value(component: 4) == "HOSP")
        #expect(pid.field(3).value(repetition: 1, component: 5) == "SS")
        #expect(pid.field(3).value(repetition: 2) == "")
        #expect(pid.field(5).value(component: 2) == "Jean")
        #expect(pid.field(5).componentCount() == 5)
        #expect(pid.field(2).isEmpty && pid.field(2).repetitionCount == 0)
        #expect(pid.field(99).isEmpty)
        #expect(pid.field(11).value(component: 3) == "Paris")
    }

    @Test func parsesAnORUR01WithTextLinesAndABase64PDF() throws {
        let message = try HL7Message.parse(HL7Fixtures.oruR01)
        #expect(message.header.messageCode == "ORU" && message.header.triggerEvent == "R01")
        #expect(message.characterSet == .ascii)
        let observations = message.segments(named: "OBX")
        #expect(observations.count == 3)
        #expect(observations[0].field(5).value() == "Findings: no acute disease.")
        #expect(observations[1].field(5).value() == "Impression: stable & unchanged\npressure 120^80 | pulse 60.")
        #expect(observations[1].field(11).value() == "F")
        let document = observations[2].field(5)
        #expect(document.value(component: 2) == "application" && document.value(component: 4) == "Base64")
        #expect(Data(base64Encoded: document.value(component: 5)).map(Array.init) == HL7Fixtures.pdf)
    }

    @Test func parsesCustomEncodingCharacters() throws {
        let message = try HL7Message.parse(HL7Fixtures.customSeparators)
        #expect(message.encoding == HL7EncodingCharacters(field: "*", component: "!", repetition: "@", escape: "#",
                                                          subcomponent: "$"))
        #expect(message.header.messageCode == "ORM" && message.header.controlID == "CUSTOM1")
        #expect(message.header.versionID == "2.3")
        let pid = try #require(message.segment(named: "PID"))
        #expect(pid.field(3).repetitionCount == 2)
        #expect(pid.field(3).value(repetition: 1, component: 4) == "SSA")
        #expect(pid.field(5).value(component: 2) == "Luc * Paul")
        let obr = try #require(message.segment(named: "OBR"))
        #expect(obr.field(2).value(subcomponent: 2) == "B")
        #expect(obr.field(4).value(component: 2) == "TEXT")
        #expect(try #require(message.segment(named: "MSH")).field(2).value() == "!@#$")
    }

    @Test func toleratesLFAndCRLFAndEmptyTrailingSegments() throws {
        for separator in ["\n", "\r\n", "\r\r"] {
            var bytes = HL7Fixtures.bytes(HL7Fixtures.adtA08Segments, separator: separator)
            bytes += Array("\r\n\r\n".utf8)
            let message = try HL7Message.parse(bytes)
            #expect(message.segments.map(\.name) == ["MSH", "EVN", "PID", "PV1"])
        }
    }

    @Test func ignoresTheV27TruncationCharacter() throws {
        let message = try HL7Message.parse(Array("MSH|^~\\&#|A|B|C|D|20240101||ADT^A01|T1|P|2.7\rEVN|A01\r".utf8))
        #expect(message.encoding == .standard)
        #expect(message.header.controlID == "T1")
    }

    @Test func decodesLatin1WhenMSH18Says88591() throws {
        let bytes = Array("MSH|^~\\&|A|B|C|D|20240101||ADT^A08|L1|P|2.5|||||FRA|8859/1\rPID|1||1||CL".utf8)
            + [0xC9] + Array("MENT^Ren".utf8) + [0xE9] + [0x0D]
        let message = try HL7Message.parse(bytes)
        #expect(message.characterSet == .latin1)
        let pid = try #require(message.segment(named: "PID"))
        #expect(pid.field(5).value(component: 1) == "CLÉMENT")
        #expect(pid.field(5).value(component: 2) == "René")
    }

    @Test func decodesUTF8WhenMSH18SaysUnicodeUTF8() throws {
        let message = try HL7Message.parse(Array("MSH|^~\\&|A|B|C|D|20240101||ADT^A08|U1|P|2.5||||||UTF-8\rPID|1||1||René\r".utf8))
        #expect(message.characterSet == .utf8)
        #expect(message.segment(named: "PID")?.field(5).value() == "René")
    }

    @Test func rejectsABytePast7BitsInAnASCIIMessage() {
        let bytes = Array("MSH|^~\\&|A|B|C|D|20240101||ADT^A08|A1|P|2.5\rPID|1||1||Ren".utf8) + [0xE9, 0x0D]
        #expect(throws: HL7ParseError(code: .dataTypeError,
                                      reason: "segment PID holds bytes that are not valid ASCII (MSH-18)",
                                      location: HL7ErrorLocation(segment: "PID"))) {
            try HL7Message.parse(bytes)
        }
    }

    @Test func rejectsInvalidUTF8() {
        let bytes = Array("MSH|^~\\&|A|B|C|D|20240101||ADT^A08|A1|P|2.5||||||UNICODE UTF-8\rPID|1||1||Ren".utf8)
            + [0xE9, 0x0D]
        #expect(throws: HL7ParseError.self) { try HL7Message.parse(bytes) }
    }

    @Test func rejectsAnUnsupportedCharacterSet() throws {
        let bytes = Array("MSH|^~\\&|A|B|C|D|20240101||ADT^A08|A1|P|2.5||||||ISO IR87\r".utf8)
        let error = try #require(throws: HL7ParseError.self) { try HL7Message.parse(bytes) }
        #expect(error.code == .tableValueNotFound)
        #expect(error.location == HL7ErrorLocation(segment: "MSH", field: 18))
    }

    @Test func aMissingControlIDIsARequiredFieldMissingAtMSH10() throws {
        let bytes = Array("MSH|^~\\&|A|B|C|D|20240101||ADT^A08||P|2.5\r".utf8)
        let error = try #require(throws: HL7ParseError.self) { try HL7Message.parse(bytes) }
        #expect(error.code == .requiredFieldMissing)
        #expect(error.location == HL7ErrorLocation(segment: "MSH", sequence: 1, field: 10))
        #expect(error.reason == "MSH-10 (message control ID) is missing")
        #expect(HL7MessageHeader.bestEffort(bytes)?.messageCode == "ADT")
    }

    @Test(arguments: [
        ("MSH|^~\\&|A|B|C|D|20240101||ADT|X1|P|2.5\r", 9),
        ("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1||2.5\r", 11),
        ("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1|P\r", 12),
    ])
    func otherRequiredMSHFields(text: String, field: Int) throws {
        let error = try #require(throws: HL7ParseError.self) { try HL7Message.parse(Array(text.utf8)) }
        #expect(error.code == .requiredFieldMissing)
        #expect(error.location?.field == field)
    }

    @Test func rejectsAMessageNotStartingWithMSH() throws {
        let bytes = Array("PID|1||1\rMSH|^~\\&|A|B|C|D|20240101||ADT^A08|X|P|2.5\r".utf8)
        let error = try #require(throws: HL7ParseError.self) { try HL7Message.parse(bytes) }
        #expect(error.code == .segmentSequenceError)
        #expect(HL7MessageHeader.bestEffort(bytes) == nil)
    }

    @Test func rejectsDuplicateEncodingCharacters() throws {
        let bytes = Array("MSH|^^\\&|SEND|FAC|RECV|RFAC|20240101||ORU^R01|DUP1|P|2.5\r".utf8)
        let error = try #require(throws: HL7ParseError.self) { try HL7Message.parse(bytes) }
        #expect(error.code == .dataTypeError)
        #expect(error.location == HL7ErrorLocation(segment: "MSH", field: 2))
        #expect(HL7EncodingCharacters(declaredIn: bytes) == nil)
        let header = try #require(HL7MessageHeader.bestEffort(bytes))
        #expect(header.sendingApplication == "SEND" && header.receivingFacility == "RFAC")
        #expect(header.controlID == "DUP1" && header.triggerEvent == "R01")
    }

    @Test func rejectsABadSegmentName() throws {
        let bytes = Array("MSH|^~\\&|A|B|C|D|20240101||ADT^A08|X|P|2.5\rpid|1\r".utf8)
        let error = try #require(throws: HL7ParseError.self) { try HL7Message.parse(bytes) }
        #expect(error.code == .segmentSequenceError)
    }

    @Test func bestEffortReadsWhatItCanFromAnUnreadableMessage() throws {
        let bytes = Array("MSH|^~\\&|LAB|HOSP|||20240101||ORU^R01|BE1|P|2.5||||||EBCDIC\rPID|1\r".utf8)
        #expect(throws: HL7ParseError.self) { try HL7Message.parse(bytes) }
        let header = try #require(HL7MessageHeader.bestEffort(bytes))
        #expect(header.sendingApplication == "LAB" && header.controlID == "BE1")
        #expect(header.characterSet == "EBCDIC")
        #expect(HL7MessageHeader.bestEffort(Array("MSH".utf8)) == HL7MessageHeader())
    }

    @Test func theNullValueIsNotEmpty() throws {
        let message = try HL7Message.parse(Array("MSH|^~\\&|A|B|C|D|20240101||ADT^A08|N1|P|2.5\rPID|1||1||\"\"\r".utf8))
        let name = try #require(message.segment(named: "PID")).field(5)
        #expect(name.isNull && !name.isEmpty)
    }

    @Test func garbageNeverCrashesTheParser() {
        var random = MLLPFrameDecoderTests.SplitMix(state: 7)
        let alphabet = Array("MSH|^~\\&\r\n#!@$*ABC123\"".utf8) + [0x00, 0xE9, 0xFF]
        for _ in 0..<2000 {
            let count = Int.random(in: 0...60, using: &random)
            var bytes = Array("MSH".utf8)
            for _ in 0..<count { bytes.append(alphabet[Int.random(in: 0..<alphabet.count, using: &random)]) }
            if let message = try? HL7Message.parse(bytes) {
                for segment in message.segments {
                    for number in 0...segment.fieldCount + 1 { _ = segment.field(number).value(component: 2) }
                }
            }
            _ = HL7MessageHeader.bestEffort(bytes)
        }
    }
}
