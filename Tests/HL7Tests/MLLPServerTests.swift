import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Testing

@testable import HL7

/// A real listener on 127.0.0.1 and real client sockets.
@Suite struct MLLPServerTests {
    /// Parses each message and answers AA (AR when it does not parse or is too large);
    /// waits `delay` before answering.
    final class Application: MLLPMessageHandler {
        struct State {
            var received: [MLLPInbound] = []
            var events: [(UInt64, MLLPConnectionEvent)] = []
        }
        let state = NIOLockedValueBox(State())
        let accepting: Bool
        let delay: TimeAmount

        init(accepting: Bool = true, delay: TimeAmount = .zero) {
            self.accepting = accepting
            self.delay = delay
        }

        func accepts(peer: SocketAddress?) -> Bool { accepting }

        func handle(_ inbound: MLLPInbound, peer: SocketAddress?, connection: UInt64,
                    on eventLoop: any EventLoop) -> EventLoopFuture<MLLPReply> {
            state.withLockedValue { $0.received.append(inbound) }
            let reply: [UInt8]
            switch inbound {
            case .message(let bytes):
                do {
                    let message = try HL7Message.parse(bytes)
                    reply = HL7Acknowledgment.build(for: message.header, encoding: message.encoding,
                                                    characterSet: message.characterSet, code: .applicationAccept,
                                                    controlID: "A\(message.header.controlID)", timestamp: Date(),
                                                    error: nil)
                } catch {
                    reply = Self.reject(bytes, error: .init(error))
                }
            case .oversized(let head, let size):
                reply = Self.reject(head, error: .init(code: .applicationInternalError, text: "\(size) bytes"))
            }
            // Another event loop than the connection's, as a real application's would be.
            let other = MultiThreadedEventLoopGroup.singleton.any()
            return other.scheduleTask(in: delay) { MLLPReply.acknowledge(reply) }.futureResult
        }

        static func reject(_ bytes: [UInt8], error: HL7Acknowledgment.ErrorDetail) -> [UInt8] {
            HL7Acknowledgment.build(for: HL7MessageHeader.bestEffort(bytes) ?? HL7MessageHeader(),
                                    encoding: HL7EncodingCharacters(declaredIn: bytes) ?? .standard,
                                    characterSet: .ascii, code: .applicationReject, controlID: "R",
                                    timestamp: Date(), error: error)
        }

        func connectionEvent(_ event: MLLPConnectionEvent, peer: SocketAddress?, connection: UInt64) {
            state.withLockedValue { $0.events.append((connection, event)) }
        }

        var received: [MLLPInbound] { state.withLockedValue { $0.received } }
        func events(_ connection: UInt64) -> [MLLPConnectionEvent] {
            state.withLockedValue { $0.events.filter { $0.0 == connection }.map(\.1) }
        }
    }

    struct Exchange {
        var frames: [[UInt8]] = []
        /// The server closed the connection.
        var closed = false
    }

    /// Connects, sends `bytes`, and reads until `frames` replies arrived or the server closed.
    static func exchange(port: Int, send bytes: [UInt8], frames expected: Int, tls: NIOSSLContext? = nil,
                         timeout: Duration = .seconds(10)) async throws -> Exchange {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls, serverHostname: "localhost"))
                    }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await withThrowingTaskGroup(of: Exchange?.self) { tasks in
            tasks.addTask {
                try await channel.executeThenClose { inbound, outbound in
                    // A refused connection may be closed before the write: the read below sees it.
                    if !bytes.isEmpty { try? await outbound.write(ByteBuffer(bytes: bytes)) }
                    var decoder = MLLPFrameDecoder(maximumMessageSize: 1 << 20)
                    var exchange = Exchange()
                    do {
                        for try await chunk in inbound {
                            for case .message(let frame) in decoder.feed(chunk) { exchange.frames.append(frame) }
                            if exchange.frames.count >= expected && expected > 0 { return exchange }
                        }
                    } catch {
                        // A reset is a close too.
                    }
                    exchange.closed = true
                    return exchange
                }
            }
            tasks.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            let result = try await tasks.next() ?? nil
            tasks.cancelAll()
            return try #require(result, "no answer within \(timeout)")
        }
    }

    static func startServer(_ application: Application, maximumMessageSize: Int = 64 * 1024,
                            idleTimeout: TimeAmount = .seconds(30),
                            tls: NIOSSLContext? = nil) async throws -> (MLLPServer, Int) {
        let server = MLLPServer(
            configuration: MLLPServerConfiguration(host: "127.0.0.1", port: 0, maximumMessageSize: maximumMessageSize,
                                                   idleTimeout: idleTimeout, tls: tls),
            handler: application, group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "hl7-test"))
        return (server, try await server.start())
    }

    /// Events arrive on the connection's event loop, after the client saw the close.
    static func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<200 where !condition() {
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    @Test func twoFramesInOneWriteGetTwoACKsInOrder() async throws {
        let application = Application(delay: .milliseconds(20))
        let (server, port) = try await Self.startServer(application)
        let exchange = try await Self.exchange(port: port, send: MLLP.frame(HL7Fixtures.adtA08)
                                                   + MLLP.frame(HL7Fixtures.oruR01), frames: 2)
        #expect(exchange.frames.count == 2)
        let acks = try exchange.frames.map { try HL7Message.parse($0) }
        #expect(acks.map { $0.segment(named: "MSA")?.field(2).value() } == ["ADT00001", "ORU00002"])
        #expect(acks.map { $0.segment(named: "MSA")?.field(1).value() } == ["AA", "AA"])
        #expect(acks.map(\.header.controlID) == ["AADT00001", "AORU00002"])
        await server.shutdown(gracePeriod: .seconds(1))
        try await Self.eventually { application.events(1).last == .closed }
        #expect(application.events(1) == [.opened, .closed])
    }

    @Test func garbageClosesTheConnectionAndTheServerGoesOn() async throws {
        let application = Application()
        let (server, port) = try await Self.startServer(application)
        let garbage = try await Self.exchange(port: port, send: Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8),
                                              frames: 0)
        #expect(garbage.closed && garbage.frames.isEmpty)
        let next = try await Self.exchange(port: port, send: MLLP.frame(HL7Fixtures.adtA08), frames: 1)
        #expect(next.frames.count == 1)
        try await Self.eventually { application.events(1).last == .closed }
        #expect(application.events(1) == [.opened, .notMLLP(#"GET / HTTP/1.1\r\nHost: x\r\n\r\n"#), .closed])
        await server.shutdown(gracePeriod: .seconds(1))
    }

    @Test func aRefusedPeerIsClosedBeforeAnythingIsRead() async throws {
        let application = Application(accepting: false)
        let (server, port) = try await Self.startServer(application)
        let exchange = try await Self.exchange(port: port, send: MLLP.frame(HL7Fixtures.adtA08), frames: 1)
        #expect(exchange.closed && exchange.frames.isEmpty)
        #expect(application.received.isEmpty)
        await server.shutdown(gracePeriod: .seconds(1))
    }

    @Test func aFrameOverTheLimitArrivesOversized() async throws {
        let application = Application()
        let (server, port) = try await Self.startServer(application, maximumMessageSize: 1024)
        let big = HL7Fixtures.bytes([
            #"MSH|^~\&|LAB|HOSP|PACS|RAD|20240312101500||ORU^R01|BIG1|P|2.5"#,
            "OBX|1|TX|||" + String(repeating: "x", count: 20_000),
        ])
        let exchange = try await Self.exchange(port: port, send: MLLP.frame(big) + MLLP.frame(HL7Fixtures.oruR01),
                                               frames: 2)
        #expect(application.received.first == .oversized(head: Array(big.prefix(4096)), size: big.count))
        let answers = try exchange.frames.map { try HL7Message.parse($0) }
        #expect(answers.map { $0.segment(named: "MSA")?.field(1).value() } == ["AR", "AA"])
        #expect(answers.first?.segment(named: "MSA")?.field(2).value() == "BIG1")
        await server.shutdown(gracePeriod: .seconds(1))
    }

    @Test func anIdleConnectionIsClosedAndItsUnfinishedFrameReported() async throws {
        let application = Application()
        let (server, port) = try await Self.startServer(application, idleTimeout: .milliseconds(200))
        let exchange = try await Self.exchange(port: port, send: [0x0B] + Array("MSH|^~".utf8), frames: 1)
        #expect(exchange.closed)
        try await Self.eventually { application.events(1).last == .closed }
        #expect(application.events(1) == [.opened, .idleTimeout, .unfinishedFrame(bytes: 6), .closed])
        await server.shutdown(gracePeriod: .seconds(1))
    }

    @Test func shutdownLetsTheFrameInHandBeAnswered() async throws {
        let application = Application(delay: .milliseconds(300))
        let (server, port) = try await Self.startServer(application)
        async let exchange = Self.exchange(port: port, send: MLLP.frame(HL7Fixtures.adtA08), frames: 2)
        try await Self.eventually { !application.received.isEmpty }
        let start = ContinuousClock.now
        await server.shutdown(gracePeriod: .seconds(5))
        #expect(ContinuousClock.now - start < .seconds(4))
        let result = try await exchange
        #expect(result.frames.count == 1 && result.closed)
    }
}
