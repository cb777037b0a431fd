import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing

@testable import HL7

/// The handler on an EmbeddedChannel: replies are promises the test completes by hand.
@Suite struct MLLPHandlerTests {
    final class Application: MLLPMessageHandler {
        struct State {
            var received: [MLLPInbound] = []
            var promises: [EventLoopPromise<MLLPReply>] = []
            var events: [MLLPConnectionEvent] = []
        }
        let state = NIOLockedValueBox(State())

        func accepts(peer: SocketAddress?) -> Bool { true }

        func handle(_ inbound: MLLPInbound, peer: SocketAddress?, connection: UInt64,
                    on eventLoop: any EventLoop) -> EventLoopFuture<MLLPReply> {
            let promise = eventLoop.makePromise(of: MLLPReply.self)
            state.withLockedValue {
                $0.received.append(inbound)
                $0.promises.append(promise)
            }
            return promise.futureResult
        }

        func connectionEvent(_ event: MLLPConnectionEvent, peer: SocketAddress?, connection: UInt64) {
            state.withLockedValue { $0.events.append(event) }
        }

        var received: [MLLPInbound] { state.withLockedValue { $0.received } }
        var events: [MLLPConnectionEvent] { state.withLockedValue { $0.events } }
        func reply(_ index: Int, _ reply: MLLPReply) {
            state.withLockedValue { $0.promises[index] }.succeed(reply)
        }
    }

    /// Counts the reads that get past the MLLP handler.
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    static func frame(_ n: Int) -> [UInt8] { Array("MSH|\(n)\r".utf8) }

    func makeChannel(_ application: Application, queue: Int = 2) throws -> (EmbeddedChannel, ReadCounter) {
        let counter = ReadCounter()
        let channel = EmbeddedChannel()
        let configuration = MLLPServerConfiguration(host: "127.0.0.1", port: 0, maximumMessageSize: 1000,
                                                    idleTimeout: .seconds(30), maximumQueuedFrames: queue)
        try channel.pipeline.syncOperations.addHandlers([
            counter, MLLPHandler(configuration: configuration, application: application, connection: 1,
                                 logger: .init(label: "test")),
        ])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, counter)
    }

    @Test func repliesAreFramedAndTheNextFrameWaitsForTheWrite() throws {
        let application = Application()
        let (channel, _) = try makeChannel(application)
        try channel.writeInbound(ByteBuffer(bytes: MLLP.frame(Self.frame(1)) + MLLP.frame(Self.frame(2))))
        #expect(application.received == [.message(Self.frame(1))])
        application.reply(0, .acknowledge(Array("ACK1".utf8)))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(bytes: MLLP.frame(Array("ACK1".utf8))))
        #expect(application.received == [.message(Self.frame(1)), .message(Self.frame(2))])
        application.reply(1, .close)
        #expect(!channel.isActive)
        #expect(application.events == [.opened, .closed])
    }

    @Test func readsAreHeldBackWhileTheQueueIsFull() throws {
        let application = Application()
        let (channel, counter) = try makeChannel(application, queue: 2)
        let frames = (1...3).flatMap { MLLP.frame(Self.frame($0)) }
        try channel.writeInbound(ByteBuffer(bytes: frames))
        let before = counter.reads
        channel.read()
        #expect(counter.reads == before)  // one with the application, two queued: held back
        application.reply(0, .acknowledge([]))
        #expect(counter.reads == before + 1)  // the held-back read goes through
        #expect(application.received.count == 2)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func closingInTheMiddleOfAFrameIsReported() throws {
        let application = Application()
        let (channel, _) = try makeChannel(application)
        try channel.writeInbound(ByteBuffer(bytes: [0x0B, 0x41, 0x42, 0x43]))
        _ = try channel.finish(acceptAlreadyClosed: true)
        #expect(application.events == [.opened, .unfinishedFrame(bytes: 3), .closed])
    }

    @Test func anIdleTimeoutClosesAnIdleConnection() throws {
        let application = Application()
        let (channel, _) = try makeChannel(application)
        channel.pipeline.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.read)
        #expect(!channel.isActive)
        #expect(application.events == [.opened, .idleTimeout, .closed])
    }
}
