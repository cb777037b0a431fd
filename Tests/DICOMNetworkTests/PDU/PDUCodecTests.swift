import NIOCore
import NIOTestUtils
import Testing

@testable import DICOMNetwork

/// A-ASSOCIATE-RQ sent by DCMTK 3.6.7 `echoscu -aet ECHOSCU -aec PASSERELLE` (captured).
let dcmtkEchoRQHex = "0100000000cd00010000504153534552454c4c452020202020204543484f534355202020202020202020000000000000000000000000000000000000000000000000000000000000000010000015312e322e3834302e31303030382e332e312e312e312000002e0100ff0030000011312e322e3834302e31303030382e312e3140000011312e322e3834302e31303030382e312e325000003a51000004000040005200001b312e322e3237362e302e373233303031302e332e302e332e362e375500000f4f464649535f44434d544b5f333637"

func bytes(hex: String) -> [UInt8] {
    var result: [UInt8] = []
    var iterator = hex.makeIterator()
    while let high = iterator.next(), let low = iterator.next() {
        result.append(UInt8(String([high, low]), radix: 16) ?? 0)
    }
    return result
}

private func encode(_ pdu: PDU) -> ByteBuffer {
    var buffer = ByteBuffer()
    pdu.write(into: &buffer)
    return buffer
}

private func decodeOne(_ buffer: ByteBuffer, maximumPDULength: UInt32 = 16384) throws(PDUDecodingError) -> PDU? {
    var buffer = buffer
    let decoder = PDUDecoder(maximumPDULength: maximumPDULength)
    let pdu = try decoder.decodePDU(buffer: &buffer)
    return pdu
}

/// The error a buffer raises, or nil.
private func decodingError(_ bytes: [UInt8], maximumPDULength: UInt32 = 16384) -> PDUDecodingError? {
    do {
        _ = try decodeOne(ByteBuffer(bytes: bytes), maximumPDULength: maximumPDULength)
        return nil
    } catch {
        return error
    }
}

private func header(_ type: UInt8, _ length: UInt32) -> [UInt8] {
    [type, 0] + withUnsafeBytes(of: length.bigEndian, Array.init)
}

@Suite struct PDUCodecTests {
    @Test(arguments: Fixtures.allPDUs)
    func roundTrip(_ pdu: PDU) throws {
        let encoded = encode(pdu)
        #expect(Int(encoded.getInteger(at: 2, as: UInt32.self) ?? 0) == encoded.readableBytes - 6)
        let decoded = try decodeOne(encoded)
        #expect(decoded == pdu)
    }

    @Test func decoderVerifierAllPDUs() throws {
        var all = ByteBuffer()
        for pdu in Fixtures.allPDUs { pdu.write(into: &all) }
        let pairs: [(ByteBuffer, [PDU])] =
            Fixtures.allPDUs.map { (encode($0), [$0]) } + [(all, Fixtures.allPDUs)]
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) {
            PDUDecoder(maximumPDULength: 16384)
        }
    }

    @Test func dcmtkAssociateRQ() throws {
        let pdu = try decodeOne(ByteBuffer(bytes: bytes(hex: dcmtkEchoRQHex)))
        guard case .associateRQ(let rq) = pdu else {
            Issue.record("expected A-ASSOCIATE-RQ, got \(String(describing: pdu))")
            return
        }
        #expect(rq.protocolVersion == 1)
        #expect(rq.calledAETitle == "PASSERELLE")
        #expect(rq.callingAETitle == "ECHOSCU")
        #expect(rq.applicationContextName == AssociateRQ.dicomApplicationContextName)
        #expect(rq.presentationContexts == [
            PresentationContextProposal(id: 1, abstractSyntax: Fixtures.verification, transferSyntaxes: [Fixtures.implicitLE])
        ])
        #expect(rq.userInformation.maximumLength == 16384)
        #expect(rq.userInformation.implementationClassUID?.hasPrefix("1.2.276.0.7230010.3") == true)
        #expect(rq.userInformation.implementationVersionName?.hasPrefix("OFFIS_DCMTK_") == true)
        // Re-encoding yields an RQ that decodes to the same model.
        #expect(try decodeOne(encode(.associateRQ(rq))) == pdu)
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [(ByteBuffer(bytes: bytes(hex: dcmtkEchoRQHex)), [.associateRQ(rq)])]
        ) { PDUDecoder(maximumPDULength: 16384) }
    }

    @Test func aeTitlesArePaddedAndTrimmed() throws {
        var rq = Fixtures.associateRQ
        rq.calledAETitle = "AE"
        rq.callingAETitle = "ABCDEFGHIJKLMNOPQRSTUV"  // longer than 16: truncated on the wire
        let encoded = encode(.associateRQ(rq))
        #expect(encoded.getBytes(at: 10, length: 16) == Array("AE".utf8) + Array(repeating: 0x20, count: 14))
        guard case .associateRQ(let decoded) = try decodeOne(encoded) else { Issue.record("not an RQ"); return }
        #expect(decoded.calledAETitle == "AE")
        #expect(decoded.callingAETitle == "ABCDEFGHIJKLMNOP")
    }

    @Test func wireLayoutOfFixedPDUs() {
        #expect(Array(encode(.releaseRQ).readableBytesView) == [5, 0, 0, 0, 0, 4, 0, 0, 0, 0])
        #expect(Array(encode(.releaseRP).readableBytesView) == [6, 0, 0, 0, 0, 4, 0, 0, 0, 0])
        #expect(Array(encode(.abort(AAbort(source: .serviceProvider, reason: .unexpectedPDU))).readableBytesView)
            == [7, 0, 0, 0, 0, 4, 0, 0, 2, 2])
        #expect(Array(encode(.associateRJ(Fixtures.associateRJ)).readableBytesView) == [3, 0, 0, 0, 0, 4, 0, 1, 1, 7])
        let pdv = PDataTF(values: [PresentationDataValue(contextID: 5, isCommand: true, isLast: true, data: ByteBuffer(bytes: [9]))])
        #expect(Array(encode(.pDataTF(pdv)).readableBytesView) == [4, 0, 0, 0, 0, 7, 0, 0, 0, 3, 5, 3, 9])
    }

    @Test func unknownUserInformationSubItemsAndItemsAreSkipped() throws {
        var rq = Fixtures.associateRQ
        rq.userInformation = UserInformation(maximumLength: 1000)
        var buffer = encode(.associateRQ(rq))
        // Append an unknown top-level item (0x7F) and fix the PDU length.
        buffer.writeBytes([0x7F, 0, 0, 3, 1, 2, 3])
        buffer.setInteger(UInt32(buffer.readableBytes - 6), at: 2)
        #expect(try decodeOne(buffer) == .associateRQ(rq))

        // Unknown user information sub-item 0x5F inside 0x50.
        var raw = ByteBuffer()
        raw.writeBytes([0x50, 0, 0, 8 + 7, 0x51, 0, 0, 4, 0, 0, 0x10, 0, 0x5F, 0, 0, 3, 7, 7, 7])
        let info = try UserInformation.parse(PDUReader(raw).skipping(4))
        #expect(info == UserInformation(maximumLength: 4096))
    }

    // MARK: Hostile input

    @Test func unknownPDUType() {
        let error = decodingError(header(0x09, 4) + [0, 0, 0, 0])
        #expect(error?.code == .unknownPDUType)
        #expect(error?.abortReason == .unrecognizedPDU)
    }

    @Test func lengthFFFFFFFFIsRejectedFromTheHeaderAlone() {
        for type: UInt8 in 1...7 {
            let error = decodingError(header(type, 0xFFFF_FFFF))
            #expect(error?.code == .pduTooLarge, "type \(type)")
        }
    }

    @Test func oneMebibytePDataWithMaximum16KiBFailsWithoutBuffering() {
        // Only the header and a few bytes arrived: the decoder must not wait for 1 MiB.
        let error = decodingError(header(0x04, 1024 * 1024) + [0, 0, 0, 10, 1, 3], maximumPDULength: 16384)
        #expect(error?.code == .pduTooLarge)
        #expect(error?.abortReason == .invalidPDUParameterValue)
    }

    @Test func pDataAtExactlyTheMaximumIsAccepted() throws {
        let data = ByteBuffer(repeating: 0xAB, count: 16384 - 6)
        let pdu = PDU.pDataTF(PDataTF(values: [PresentationDataValue(contextID: 1, isCommand: false, isLast: true, data: data)]))
        #expect(try decodeOne(encode(pdu), maximumPDULength: 16384) == pdu)
        let bigger = PDU.pDataTF(PDataTF(values: [PresentationDataValue(contextID: 1, isCommand: false, isLast: true, data: data + [0])]))
        #expect(decodingError(Array(encode(bigger).readableBytesView), maximumPDULength: 16384)?.code == .pduTooLarge)
    }

    @Test func controlPDUsHaveTheirOwnCap() {
        var decoder = PDUDecoder(maximumPDULength: 1 << 20, maximumControlPDULength: 1024)
        var buffer = ByteBuffer(bytes: header(0x01, 2048))
        #expect(throws: PDUDecodingError.self) { try decoder.decode(buffer: &buffer) }
    }

    @Test func needsMoreBytes() throws {
        let encoded = Array(encode(.associateRQ(Fixtures.associateRQ)).readableBytesView)
        for count in [0, 1, 5, 6, 7, encoded.count - 1] {
            #expect(try decodeOne(ByteBuffer(bytes: encoded.prefix(count))) == nil)
        }
    }

    @Test func pdvLengthBelowTwo() {
        #expect(decodingError(header(0x04, 5) + [0, 0, 0, 1, 1])?.code == .invalidPDVLength)
        #expect(decodingError(header(0x04, 4) + [0, 0, 0, 0])?.code == .invalidPDVLength)
    }

    @Test func pdvLongerThanPDU() {
        #expect(decodingError(header(0x04, 8) + [0, 0, 0, 10, 1, 3, 0, 0])?.code == .invalidPDVLength)
        #expect(decodingError(header(0x04, 8) + [0xFF, 0xFF, 0xFF, 0xFF, 1, 3, 0, 0])?.code == .invalidPDVLength)
    }

    @Test func emptyPDataAndTruncatedPDVHeader() {
        #expect(decodingError(header(0x04, 0))?.code == .invalidPDVLength)
        #expect(decodingError(header(0x04, 3) + [0, 0, 0])?.code == .truncated)
    }

    @Test func trailingGarbageInFixedPDUs() {
        #expect(decodingError(header(0x05, 5) + [0, 0, 0, 0, 0])?.code == .trailingBytes)
        #expect(decodingError(header(0x07, 6) + [0, 0, 0, 0, 0, 0])?.code == .trailingBytes)
        #expect(decodingError(header(0x03, 3) + [0, 1, 1])?.code == .truncated)
    }

    @Test func invalidRJValues() {
        #expect(decodingError(header(0x03, 4) + [0, 9, 1, 1])?.code == .invalidValue)
        #expect(decodingError(header(0x03, 4) + [0, 1, 9, 1])?.code == .invalidValue)
    }

    @Test func truncatedAndOverlongItems() {
        let rq = Array(encode(.associateRQ(Fixtures.associateRQ)).readableBytesView)
        // Item length field of the application context item (offset 74+2) set to 0xFFFF.
        var overlong = rq
        overlong[76] = 0xFF
        overlong[77] = 0xFF
        #expect(decodingError(overlong)?.code == .invalidItemLength)
        // PDU cut inside the variable items, with the PDU length adjusted: truncated item.
        var cut = Array(rq.prefix(74 + 3))
        cut.replaceSubrange(2..<6, with: withUnsafeBytes(of: UInt32(cut.count - 6).bigEndian, Array.init))
        #expect(decodingError(cut)?.code == .truncated)
        // Fixed part shorter than 68 bytes.
        #expect(decodingError(header(0x01, 10) + Array(repeating: 0, count: 10))?.code == .truncated)
    }

    @Test func missingMandatoryItems() {
        // RQ with only the fixed part: no application context.
        #expect(decodingError(header(0x01, 68) + [0, 1] + Array(repeating: 0x20, count: 66))?.code == .missingItem)
        // Presentation context without abstract syntax.
        var body: [UInt8] = [0, 1, 0, 0] + Array(repeating: 0x20, count: 32) + Array(repeating: 0, count: 32)
        body += [0x10, 0, 0, 1, 0x31]
        body += [0x20, 0, 0, 8, 1, 0, 0, 0, 0x40, 0, 0, 0]
        #expect(decodingError(header(0x01, UInt32(body.count)) + body)?.code == .missingItem)
    }

    @Test func badUserInformationSubItemLengths() {
        var body: [UInt8] = [0, 1, 0, 0] + Array(repeating: 0x20, count: 32) + Array(repeating: 0, count: 32)
        body += [0x10, 0, 0, 1, 0x31]
        // 0x51 with length 3.
        body += [0x50, 0, 0, 7, 0x51, 0, 0, 3, 0, 0, 0]
        #expect(decodingError(header(0x01, UInt32(body.count)) + body)?.code == .invalidItemLength)
        // 0x54 whose UID length overruns the sub-item.
        var body2: [UInt8] = [0, 1, 0, 0] + Array(repeating: 0x20, count: 32) + Array(repeating: 0, count: 32)
        body2 += [0x10, 0, 0, 1, 0x31]
        body2 += [0x50, 0, 0, 8, 0x54, 0, 0, 4, 0, 0x40, 1, 1]
        #expect(decodingError(header(0x01, UInt32(body2.count)) + body2)?.code == .invalidItemLength)
    }

    @Test func decoderThrowsThroughTheVerifierPipeline() {
        #expect(throws: (any Error).self) {
            try ByteToMessageDecoderVerifier.verifyDecoder(
                inputOutputPairs: [(ByteBuffer(bytes: header(0x04, 0xFFFF_FFFF)), [PDU]())]
            ) { PDUDecoder(maximumPDULength: 16384) }
        }
    }

    @Test func encoderWritesOnePDU() throws {
        let encoder = PDUEncoder()
        var out = ByteBuffer()
        try encoder.encode(data: .releaseRQ, out: &out)
        #expect(out == encode(.releaseRQ))
    }

    @Test func randomBytesNeverTrap() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let count = Int.random(in: 0..<200, using: &generator)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if !bytes.isEmpty { bytes[0] = UInt8.random(in: 1...7, using: &generator) }
            if bytes.count >= 6 {
                bytes.replaceSubrange(2..<6, with: withUnsafeBytes(of: UInt32(bytes.count - 6).bigEndian, Array.init))
            }
            _ = decodingError(bytes)
        }
        // Mutations of a real RQ.
        let rq = Array(encode(.associateRQ(Fixtures.associateRQ)).readableBytesView)
        for index in 6..<rq.count {
            for value: UInt8 in [0, 1, 0x7F, 0xFF] {
                var mutated = rq
                mutated[index] = value
                _ = decodingError(mutated)
            }
        }
    }
}

extension PDUReader {
    fileprivate func skipping(_ count: Int) -> PDUReader {
        var copy = self
        copy.buffer.moveReaderIndex(forwardBy: count)
        return copy
    }
}

extension ByteBuffer {
    fileprivate static func + (lhs: ByteBuffer, rhs: [UInt8]) -> ByteBuffer {
        var copy = lhs
        copy.writeBytes(rhs)
        return copy
    }
}
