import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import Audit

/// A real TCP receiver on 127.0.0.1: the client's frames must arrive whole and in order, and
/// a receiver that went away must make `send` fail rather than swallow the record.
@Suite struct SyslogClientTests {
    final class Collect: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let bytes: NIOLockedValueBox<[UInt8]>
        init(_ bytes: NIOLockedValueBox<[UInt8]>) { self.bytes = bytes }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            bytes.withLockedValue { $0 += buffer.readableBytesView }
        }
    }

    /// Splits `LEN SP MSG` frames.
    static func frames(_ bytes: [UInt8]) -> [String] {
        var frames: [String] = []
        var rest = bytes[...]
        while let space = rest.firstIndex(of: UInt8(ascii: " ")),
              let length = Int(String(decoding: rest[rest.startIndex..<space], as: UTF8.self)),
              rest.count >= space - rest.startIndex + 1 + length {
            let start = space + 1
            frames.append(String(decoding: rest[start..<start + length], as: UTF8.self))
            rest = rest[(start + length)...]
        }
        return frames
    }

    @Test func tcpFramesArriveInOrderAndAClosedReceiverFailsTheSend() async throws {
        let received = NIOLockedValueBox<[UInt8]>([])
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Collect(received)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        let client = try SyslogClient(repository: AuditRepository(transport: .tcp, host: "127.0.0.1", port: port))
        for n in 1...3 {
            try await client.send(SyslogMessage(severity: 5, timestamp: Date(), hostName: "h", processID: "1",
                                                parameters: [("seq", "\(n)")], message: "<m n=\"\(n)\"/>"))
        }
        var frames: [String] = []
        for _ in 0..<200 where frames.count < 3 {
            try await Task.sleep(for: .milliseconds(10))
            frames = Self.frames(received.withLockedValue { $0 })
        }
        #expect(frames.count == 3)
        for (index, frame) in frames.enumerated() {
            #expect(frame.contains("seq=\"\(index + 1)\""))
            #expect(frame.hasSuffix("\u{FEFF}<m n=\"\(index + 1)\"/>"))
        }

        try await server.close()
        await client.close()
        await #expect(throws: (any Error).self) {
            try await client.send(SyslogMessage(severity: 5, timestamp: Date(), hostName: "h", processID: "1",
                                                parameters: [], message: "<lost/>"))
        }
    }
}
