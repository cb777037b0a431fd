import NIOCore
import NIOEmbedded
import Testing

import DICOMNetwork

@Suite struct PDUPipelineTests {
    @Test func decoderAndEncoderInAPipeline() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(PDUDecoder(maximumPDULength: 16384)),
            MessageToByteHandler(PDUEncoder()),
        ])
        var bytes = ByteBuffer()
        PDU.associateRQ(Fixtures.associateRQ).write(into: &bytes)
        PDU.releaseRQ.write(into: &bytes)
        // Split at an awkward place.
        let first = bytes.readSlice(length: 100)!
        try channel.writeInbound(first)
        #expect(try channel.readInbound(as: PDU.self) == nil)
        try channel.writeInbound(bytes)
        #expect(try channel.readInbound(as: PDU.self) == .associateRQ(Fixtures.associateRQ))
        #expect(try channel.readInbound(as: PDU.self) == .releaseRQ)

        try channel.writeOutbound(PDU.releaseRP)
        let written = try channel.readOutbound(as: ByteBuffer.self)
        #expect(written.map { Array($0.readableBytesView) } == [6, 0, 0, 0, 0, 4, 0, 0, 0, 0])
        _ = try channel.finish()
    }

    @Test func hostileBytesSurfaceAsAnErrorInThePipeline() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(PDUDecoder(maximumPDULength: 16384)))
        #expect(throws: PDUDecodingError.self) {
            try channel.writeInbound(ByteBuffer(bytes: [0x04, 0, 0xFF, 0xFF, 0xFF, 0xFF]))
        }
        _ = try? channel.finish()
    }

    @Test func partialPDUAtEOFProducesNothing() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(PDUDecoder(maximumPDULength: 16384)))
        try channel.writeInbound(ByteBuffer(bytes: [0x05, 0, 0, 0, 0, 4, 0]))
        // decodeLast returns nil for a partial PDU; the runtime sees Evt17 (channelInactive).
        _ = try? channel.finish()
        #expect(try channel.readInbound(as: PDU.self) == nil)
    }
}
