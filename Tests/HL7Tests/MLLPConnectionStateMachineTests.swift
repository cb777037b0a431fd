import NIOCore
import Testing

@testable import HL7

extension MLLPConnectionStateMachine.Action: Equatable {
    public static func == (lhs: Self, rhs: Self) -> Bool {
        switch (lhs, rhs) {
        case (.handOver(let a), .handOver(let b)): a == b
        case (.write(let a), .write(let b)): a == b
        case (.read, .read), (.close, .close): true
        case (.report(let a), .report(let b)): a == b
        case (.logDiscardedFrame(let a), .logDiscardedFrame(let b)): a == b
        default: false
        }
    }
}

@Suite struct MLLPConnectionStateMachineTests {
    static let a = Array("MSH|A\r".utf8)
    static let b = Array("MSH|B\r".utf8)
    static let c = Array("MSH|C\r".utf8)

    static func bytes(_ messages: [UInt8]...) -> ByteBuffer {
        ByteBuffer(bytes: messages.flatMap(MLLP.frame))
    }

    @Test func framesAreHandedOverOneAtATimeInOrder() {
        var machine = MLLPConnectionStateMachine(maximumMessageSize: 100, maximumQueuedFrames: 4)
        #expect(machine.connected() == [.report(.opened)])
        #expect(machine.bytesReceived(Self.bytes(Self.a, Self.b)) == [.handOver(.message(Self.a))])
        #expect(machine.replied(.acknowledge([1])) == [.write([1])])
        #expect(machine.replyWritten() == [.handOver(.message(Self.b))])
        #expect(machine.replied(.acknowledge([2])) == [.write([2])])
        #expect(machine.replyWritten() == [])
        #expect(machine.state == .idle)
    }

    @Test func readsPauseWhenTheQueueIsFullAndResumeWhenItDrains() {
        var machine = MLLPConnectionStateMachine(maximumMessageSize: 100, maximumQueuedFrames: 2)
        _ = machine.bytesReceived(Self.bytes(Self.a, Self.b))
        #expect(machine.readRequested() == true)
        _ = machine.bytesReceived(Self.bytes(Self.c))
        #expect(machine.queuedFrames == 2)
        #expect(machine.readRequested() == false)
        _ = machine.replied(.acknowledge([]))
        #expect(machine.replyWritten() == [.handOver(.message(Self.b)), .read])
        _ = machine.replied(.acknowledge([]))
        #expect(machine.replyWritten() == [.handOver(.message(Self.c))])
    }

    @Test func garbageClosesAndDropsTheQueue() {
        var machine = MLLPConnectionStateMachine(maximumMessageSize: 100, maximumQueuedFrames: 4)
        var buffer = Self.bytes(Self.a, Self.b)
        buffer.writeString("GET /")
        #expect(machine.bytesReceived(buffer)
            == [.handOver(.message(Self.a)), .report(.notMLLP("GET /")), .close])
        #expect(machine.replied(.acknowledge([1])) == [])
        #expect(machine.channelClosed() == [.report(.closed)])
    }

    @Test func oversizedFramesAndDiscardedFrames() {
        var machine = MLLPConnectionStateMachine(maximumMessageSize: 4, maximumQueuedFrames: 4)
        var buffer = ByteBuffer(bytes: [0x0B, 0x41, 0x0B])
        buffer.writeBytes(MLLP.frame(Self.a))
        #expect(machine.bytesReceived(buffer)
            == [.logDiscardedFrame(size: 1), .handOver(.oversized(head: Self.a, size: Self.a.count))])
    }

    @Test func aReplyToCloseClosesWithoutAnswer() {
        var machine = MLLPConnectionStateMachine(maximumMessageSize: 100, maximumQueuedFrames: 4)
        _ = machine.bytesReceived(Self.bytes(Self.a, Self.b))
        #expect(machine.replied(.close) == [.close])
        #expect(machine.replyWritten() == [])
    }

    @Test func theIdleTimeoutOnlyClosesAnIdleConnection() {
        var machine = MLLPConnectionStateMachine(maximumMessageSize: 100, maximumQueuedFrames: 4)
        _ = machine.bytesReceived(Self.bytes(Self.a))
        #expect(machine.idleTimeoutFired() == [])
        _ = machine.replied(.acknowledge([]))
        _ = machine.replyWritten()
        _ = machine.bytesReceived(ByteBuffer(bytes: [0x0B, 0x41, 0x42]))
        #expect(machine.idleTimeoutFired() == [.report(.idleTimeout), .close])
        #expect(machine.channelClosed() == [.report(.unfinishedFrame(bytes: 2)), .report(.closed)])
        #expect(machine.channelClosed() == [])
    }

    @Test func drainLetsTheFrameInHandFinish() {
        var machine = MLLPConnectionStateMachine(maximumMessageSize: 100, maximumQueuedFrames: 4)
        _ = machine.bytesReceived(Self.bytes(Self.a, Self.b))
        #expect(machine.drainRequested() == [])
        #expect(machine.readRequested() == false)
        #expect(machine.bytesReceived(Self.bytes(Self.c)) == [])
        #expect(machine.replied(.acknowledge([1])) == [.write([1])])
        #expect(machine.replyWritten() == [.close])

        var idle = MLLPConnectionStateMachine(maximumMessageSize: 100, maximumQueuedFrames: 4)
        #expect(idle.drainRequested() == [.close])
    }

    @Test func aFailedReplyOrErrorCloses() {
        var machine = MLLPConnectionStateMachine(maximumMessageSize: 100, maximumQueuedFrames: 4)
        _ = machine.bytesReceived(Self.bytes(Self.a))
        #expect(machine.replyFailed() == [.close])
        #expect(machine.errorCaught("late") == [])

        var other = MLLPConnectionStateMachine(maximumMessageSize: 100, maximumQueuedFrames: 4)
        #expect(other.errorCaught("handshake failed") == [.report(.error("handshake failed")), .close])
    }
}
