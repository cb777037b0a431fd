import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import DICOMNetwork

/// The requestor against a scripted in-process peer: silence, aborts, garbage.
@Suite(.serialized)
struct DICOMClientFaultTests {
    let logger = Logger(label: "client-fault-test")
    let timeouts = DICOMClient.Timeouts(connect: .seconds(2), association: .milliseconds(400), dimse: .milliseconds(400))

    /// What the scripted peer answers to each PDU, as raw bytes.
    typealias Script = @Sendable (PDU) -> [ByteBuffer]

    final class ScriptedPeer: ChannelInboundHandler, Sendable {
        typealias InboundIn = PDU
        typealias OutboundOut = ByteBuffer
        let script: Script
        let received: NIOLockedValueBox<[PDU]>

        init(script: @escaping Script, received: NIOLockedValueBox<[PDU]>) {
            self.script = script
            self.received = received
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let pdu = unwrapInboundIn(data)
            received.withLockedValue { $0.append(pdu) }
            for bytes in script(pdu) {
                context.write(wrapOutboundOut(bytes), promise: nil)
            }
            context.flush()
            if case .abort = pdu { context.close(promise: nil) }
            if case .releaseRQ = pdu { context.close(promise: nil) }
        }
    }

    /// Runs `body` against a peer following `script`; returns the PDUs the peer received.
    func withPeer(_ script: @escaping Script, _ body: (Int) async throws -> Void) async throws -> [PDU] {
        let received = NIOLockedValueBox<[PDU]>([])
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(PDUDecoder(maximumPDULength: 1 << 20)),
                        ScriptedPeer(script: script, received: received),
                    ])
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        do {
            try await body(server.localAddress!.port!)
        } catch {
            try? await server.close()
            throw error
        }
        try? await server.close()
        try await Task.sleep(for: .milliseconds(100))  // let the peer see the last PDUs
        return received.withLockedValue { $0 }
    }

    static func acceptAll(_ pdu: PDU) -> [ByteBuffer] {
        guard case .associateRQ(let rq) = pdu else { return [] }
        let ac = AssociateAC(
            calledAETitle: rq.calledAETitle, callingAETitle: rq.callingAETitle,
            presentationContexts: rq.presentationContexts.map {
                PresentationContextResult(id: $0.id, result: .acceptance, transferSyntax: $0.transferSyntaxes[0])
            },
            userInformation: UserInformation(maximumLength: 16384))
        return [PDU.associateAC(ac).encoded()]
    }

    func connect(_ port: Int) async throws -> DICOMAssociation {
        try await DICOMClient.connect(
            host: "127.0.0.1", port: port, callingAETitle: "CLIENTTEST", calledAETitle: "PEER",
            presentationContexts: try DICOMClient.presentationContexts(for: []), timeouts: timeouts,
            group: MultiThreadedEventLoopGroup.singleton, logger: logger)
    }

    @Test(arguments: ["", "                ", "ABCDEFGHIJKLMNOPQ", "BACK\\SLASH", "CAFÉ"])
    func invalidAETitlesAreRefusedBeforeConnecting(title: String) async throws {
        let error = await #expect(throws: DICOMNetworkError.self) {
            _ = try await DICOMClient.connect(
                host: "127.0.0.1", port: 1, callingAETitle: "CLIENTTEST", calledAETitle: title,
                presentationContexts: [], group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        }
        #expect(error?.code == .invalidAETitle)
    }

    @Test func silentPeerTimesOutAndGetsAnAbort() async throws {
        let received = try await withPeer({ _ in [] }) { port in
            let error = await #expect(throws: DICOMNetworkError.self) { _ = try await connect(port) }
            #expect(error?.code == .timeout)
            #expect(error?.timeout == .association)
        }
        #expect(received.count == 2)
        #expect(received.last == .abort(AAbort(source: .serviceUser)))
    }

    @Test func peerAbortCarriesTheAbort() async throws {
        let abort = AAbort(source: .serviceProvider, reason: .unrecognizedPDUParameter)
        _ = try await withPeer({ _ in [PDU.abort(abort).encoded()] }) { port in
            let error = await #expect(throws: DICOMNetworkError.self) { _ = try await connect(port) }
            #expect(error?.code == .aborted)
            #expect(error?.abort == abort)
        }
    }

    @Test func invalidPDUIsAnsweredWithAnAbort() async throws {
        let received = try await withPeer({ _ in [ByteBuffer(bytes: [0x09, 0, 0, 0, 0, 0])] }) { port in
            let error = await #expect(throws: DICOMNetworkError.self) { _ = try await connect(port) }
            #expect(error?.code == .protocolError)
        }
        #expect(received.last == .abort(AAbort(source: .serviceProvider, reason: .unrecognizedPDU)))
    }

    @Test func unansweredEchoTimesOut() async throws {
        let received = try await withPeer(Self.acceptAll) { port in
            let association = try await connect(port)
            let error = await #expect(throws: DICOMNetworkError.self) { _ = try await association.echo() }
            #expect(error?.code == .timeout)
            #expect(error?.timeout == .dimse)
            // The association is over; later calls fail with the same error.
            let again = await #expect(throws: DICOMNetworkError.self) { _ = try await association.echo() }
            #expect(again?.timeout == .dimse)
        }
        #expect(received.last == .abort(AAbort(source: .serviceUser)))
    }

    @Test func echoReleaseAgainstAScriptedPeer() async throws {
        let received = try await withPeer({ pdu in
            switch pdu {
            case .associateRQ: return Self.acceptAll(pdu)
            case .pDataTF(let data):
                let rq = try! CEchoRQ(commandSet: CommandSet.decode(data.values[0].data))
                let rsp = DIMSEMessage.cEchoRSP(CEchoRSP(respondingTo: rq))
                return PDataTF.fragments(of: rsp.commandSet.encoded(), contextID: 1, isCommand: true,
                                         maximumPDULength: 16384).map { PDU.pDataTF($0).encoded() }
            case .releaseRQ: return [PDU.releaseRP.encoded()]
            default: return []
            }
        }) { port in
            let association = try await connect(port)
            #expect(try await association.echo() == .success)
            #expect(try await association.echo() == .success)
            try await association.release()
        }
        // Message IDs increase per association.
        let ids = received.compactMap { pdu -> UInt16? in
            guard case .pDataTF(let data) = pdu else { return nil }
            return (try? CommandSet.decode(data.values[0].data))?.uint16(.messageID)
        }
        #expect(ids == [1, 2])
        #expect(received.last == .releaseRQ)
    }

    @Test func localAbortSendsAnAbortAndCloses() async throws {
        let received = try await withPeer(Self.acceptAll) { port in
            let association = try await connect(port)
            await association.abort()
            #expect(!association.channel.isActive)
            let error = await #expect(throws: DICOMNetworkError.self) { _ = try await association.echo() }
            #expect(error?.code == .abortedLocally)
        }
        #expect(received.last == .abort(AAbort(source: .serviceUser)))
    }
}
