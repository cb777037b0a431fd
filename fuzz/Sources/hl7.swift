// Target `hl7`: MLLP framing and the HL7 v2 parser, then what the gateway does with a message:
// conformance checks, the ACK/NAK, an ORU^R01 read as a report, an ADT as an identity update.
// Input: [n][n chunk sizes][MLLP stream]; a stream without a start block is taken as one
// message (so plain messages are seeds too). Invariant: an ACK to a parsed message parses.
import Foundation
import HL7
@testable import Gateway

let issuers = PatientIdentityUpdate.Issuers(siteIssuer: "HOSP", siteOID: "1.2.250.1.71.4.2.7")
let epoch = Date(timeIntervalSince1970: 1_700_000_000)

func lineBreaksAsLF(_ text: String) -> String {
    text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
}

func handle(_ bytes: [UInt8]) {
    let message: HL7Message
    do {
        message = try HL7Message.parse(bytes)
    } catch {
        // The NAK is built from what can be read of MSH.
        guard let header = HL7MessageHeader.bestEffort(bytes) else { return }
        _ = HL7Acknowledgment.build(for: header, encoding: HL7EncodingCharacters(declaredIn: bytes) ?? .standard,
                                    characterSet: HL7CharacterSet(declaredIn: bytes) ?? .ascii, code: .applicationReject,
                                    controlID: "1", timestamp: epoch, error: .init(error))
        return
    }
    let refusal = HL7Conformance.refusal(of: message)
    let ack = HL7Acknowledgment.build(for: message.header, encoding: message.encoding, characterSet: message.characterSet,
                                      code: refusal?.0 ?? .applicationAccept, controlID: "20240101120000",
                                      timestamp: epoch, error: refusal?.1)
    do {
        _ = try HL7Message.parse(ack)
    } catch {
        check(false, "our ACK does not parse: \(error)")
    }
    // Values we write back (ACKs, reports) are escaped: escaping must not change them.
    for segment in message.segments.prefix(16) {
        for number in 1...max(1, min(segment.fieldCount, 32)) {
            let field = segment.field(number)
            for component in 1...max(1, min(field.componentCount(), 8)) {
                let value = field.value(component: component)
                let escaped = HL7Escaping.encode(value, encoding: message.encoding)
                let back = HL7Escaping.decode(Substring(escaped), encoding: message.encoding, characterSet: message.characterSet)
                // Line breaks are normalized on purpose (CR, LF, CR LF → \.br\ → LF).
                check(back == lineBreaksAsLF(value), "escaping changes \(segment.name)-\(number).\(component)")
            }
        }
    }
    _ = HL7Conformance.crossIssuer(message, issuers: issuers)
    _ = try? ObservationReport(message, accessionField: 3)
    _ = try? ObservationReport(message, accessionField: 18)
    _ = try? PatientIdentityUpdate.read(message, issuers: issuers)
}

func fuzzOne(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    let sizes = input.take(Int(input.byte() % 8))
    let stream = input.rest()
    guard stream.contains(0x0B) else { return handle(stream) }
    var decoder = MLLPFrameDecoder(maximumMessageSize: 8192)
    for piece in chunks(stream[...], sizes: sizes) {
        for event in decoder.feed(piece) {
            switch event {
            case .message(let content): handle(content)
            case .oversized(let head, _): handle(head)
            case .discarded, .notMLLP: break
            }
        }
    }
}
