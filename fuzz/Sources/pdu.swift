// Target `pdu`: PDUDecoder over a byte stream cut in arbitrary places.
// Input: [n][n chunk sizes][stream]. Invariants: the PDUs do not depend on where the stream
// was cut, and every decoded PDU encodes to bytes that decode to the same PDU.
import DICOMNetwork
import NIOCore

/// The PDUs of `stream` fed chunk by chunk, up to the first error (then the association aborts).
func decodeStream(_ pieces: [ArraySlice<UInt8>], maximumPDULength: UInt32) -> (pdus: [PDU], failed: Bool) {
    let decoder = PDUDecoder(maximumPDULength: maximumPDULength, maximumControlPDULength: 4096)
    var buffer = ByteBuffer()
    var pdus: [PDU] = []
    for piece in pieces {
        buffer.writeBytes(piece)
        while true {
            do {
                guard let pdu = try decoder.decodePDU(buffer: &buffer) else { break }
                pdus.append(pdu)
            } catch {
                return (pdus, true)
            }
        }
        buffer.discardReadBytes()
    }
    return (pdus, false)
}

func fuzzOne(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    let splitCount = Int(input.byte() % 8)
    let sizes = input.take(splitCount)
    let maximum: UInt32 = sizes.first.map { $0 & 1 == 0 ? 16_384 : 0 } ?? 16_384
    let stream = input.rest()[...]

    let split = decodeStream(chunks(stream, sizes: sizes), maximumPDULength: maximum)
    let whole = decodeStream([stream], maximumPDULength: maximum)
    check(split.pdus == whole.pdus && split.failed == whole.failed, "PDUs depend on how the stream was cut")

    for pdu in whole.pdus {
        let encoded = pdu.encoded()
        let again = decodeStream([Array(encoded.readableBytesView)[...]], maximumPDULength: 0)
        check(!again.failed && again.pdus == [pdu], "\(pdu.type) does not survive encode → decode")
    }
}
