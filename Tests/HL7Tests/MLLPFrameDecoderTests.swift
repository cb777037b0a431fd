import NIOCore
import NIOTestUtils
import Testing

@testable import HL7

@Suite struct MLLPFrameDecoderTests {
    /// A ByteToMessageDecoder around the pure decoder, so NIO's verifier can feed it all at
    /// once, byte by byte and in other splits.
    struct EventDecoder: ByteToMessageDecoder {
        typealias InboundOut = MLLPFrameDecoder.Event
        var decoder: MLLPFrameDecoder

        mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
            for event in decoder.feed(buffer) {
                context.fireChannelRead(wrapInboundOut(event))
            }
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return .needMoreData
        }

        mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer,
                                 seenEOF: Bool) throws -> DecodingState {
            try decode(context: context, buffer: &buffer)
        }
    }

    /// A fixed-seed generator: the random splits are the same on every run.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let first = Array("MSH|^~\\&|A|B\rPID|1\r".utf8)
    static let second = Array("MSH|^~\\&|C|D\r".utf8)
    /// Two frames, one without CR after its end block, with whitespace between them.
    static let stream: [UInt8] = MLLP.frame(first) + Array("\r\n \t".utf8) + [0x0B] + second + [0x1C]
    static let expected: [MLLPFrameDecoder.Event] = [.message(first), .message(second)]

    static func feedAll(_ chunks: [[UInt8]], maximum: Int = 1 << 20) -> [MLLPFrameDecoder.Event] {
        var decoder = MLLPFrameDecoder(maximumMessageSize: maximum)
        return chunks.flatMap { decoder.feed($0) }
    }

    @Test func nioVerifierSeesTheSameFramesWhateverTheSplits() throws {
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [(ByteBuffer(bytes: Self.stream), Self.expected)],
            decoderFactory: { EventDecoder(decoder: MLLPFrameDecoder(maximumMessageSize: 1 << 20)) })
    }

    @Test func allAtOnceOneByOneAndRandomSplitsGiveTheSameEvents() {
        #expect(Self.feedAll([Self.stream]) == Self.expected)
        #expect(Self.feedAll(Self.stream.map { [$0] }) == Self.expected)
        var random = SplitMix(state: 42)
        for _ in 0..<200 {
            var chunks: [[UInt8]] = []
            var rest = Self.stream[...]
            while !rest.isEmpty {
                let size = Int.random(in: 1...max(1, rest.count), using: &random)
                chunks.append(Array(rest.prefix(size)))
                rest = rest.dropFirst(size)
            }
            #expect(Self.feedAll(chunks) == Self.expected)
        }
    }

    @Test func severalFramesInOneFeed() {
        let frames = (1...5).map { Array("MSH|^~\\&|\($0)\r".utf8) }
        #expect(Self.feedAll([frames.flatMap(MLLP.frame)]) == frames.map { .message($0) })
    }

    @Test func carriageReturnAfterTheEndBlockMayComeInTheNextFeed() {
        var decoder = MLLPFrameDecoder(maximumMessageSize: 100)
        #expect(decoder.feed([0x0B] + Self.second + [0x1C]) == [.message(Self.second)])
        #expect(!decoder.isInsideFrame)
        #expect(decoder.feed([0x0D]) == [])
        #expect(decoder.feed(MLLP.frame(Self.first)) == [.message(Self.first)])
    }

    @Test func aStartBlockInsideAFrameDiscardsThePartialFrame() {
        var decoder = MLLPFrameDecoder(maximumMessageSize: 100)
        #expect(decoder.feed([0x0B] + Array("MSH|^~\\&|LOST".utf8)) == [])
        #expect(decoder.isInsideFrame && decoder.pendingFrameSize == 13)
        #expect(decoder.feed(MLLP.frame(Self.first)) == [.discarded(size: 13), .message(Self.first)])
    }

    @Test func anOversizedFrameKeepsItsHeadAndCountsItsSize() {
        let message = Array("MSH|^~\\&|A|B|C|D|20240101||ORU^R01|X1|P|2.5\r".utf8)
            + [UInt8](repeating: UInt8(ascii: "x"), count: 10_000)
        let events = Self.feedAll([MLLP.frame(message) + MLLP.frame(Self.first)], maximum: 5000)
        #expect(events == [.oversized(head: Array(message.prefix(MLLPFrameDecoder.headSize)), size: message.count),
                           .message(Self.first)])
        // Byte by byte, the head and size are the same.
        #expect(Self.feedAll((MLLP.frame(message) + MLLP.frame(Self.first)).map { [$0] }, maximum: 5000) == events)
    }

    @Test func aSmallMaximumStillKeepsAFullHead() {
        let message = [UInt8](repeating: UInt8(ascii: "y"), count: 6000)
        #expect(Self.feedAll([MLLP.frame(message)], maximum: 10)
            == [.oversized(head: Array(message.prefix(MLLPFrameDecoder.headSize)), size: 6000)])
    }

    @Test func aPeerNotSpeakingMLLPFailsTheDecoder() {
        var decoder = MLLPFrameDecoder(maximumMessageSize: 100)
        #expect(decoder.feed(Array("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            == [.notMLLP(#"GET / HTTP/1.1\r\nHost: x\r\n\r\n"#)])
        #expect(decoder.hasFailed)
        #expect(decoder.feed(MLLP.frame(Self.first)) == [])
    }

    @Test func aTLSHelloIsShownInHexadecimal() {
        var decoder = MLLPFrameDecoder(maximumMessageSize: 100)
        #expect(decoder.feed([0x16, 0x03, 0x01, 0x00]) == [.notMLLP(#"\x16\x03\x01\x00"#)])
    }

    @Test func anEndBlockOutsideAFrameIsNotMLLP() {
        var decoder = MLLPFrameDecoder(maximumMessageSize: 100)
        #expect(decoder.feed(MLLP.frame(Self.first) + [0x1C, 0x0D]) == [.message(Self.first), .notMLLP(#"\x1C\r"#)])
    }

    @Test func frameWrapsTheMessageInItsBlocks() {
        #expect(MLLP.frame([0x41]) == [0x0B, 0x41, 0x1C, 0x0D])
    }

    @Test func aByteBufferIsFedFromItsReaderIndex() {
        var decoder = MLLPFrameDecoder(maximumMessageSize: 100)
        var buffer = ByteBuffer(bytes: [0xFF] + MLLP.frame(Self.first))
        buffer.moveReaderIndex(forwardBy: 1)
        #expect(decoder.feed(buffer) == [.message(Self.first)])
    }
}
