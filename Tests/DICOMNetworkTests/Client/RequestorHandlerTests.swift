import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import DICOMNetwork

/// The handler on an `EmbeddedChannel`: bytes in, bytes out, promises completed.
struct RequestorHandlerTests {
    let request = RequestorStateMachineTests.request

    struct Pipeline {
        let channel: EmbeddedChannel
        let established: EventLoopPromise<RequestorHandler.Negotiated>
        let ended: EventLoopPromise<DICOMNetworkError>
    }

    func makePipeline() throws -> Pipeline {
        let channel = EmbeddedChannel()
        let established = channel.eventLoop.makePromise(of: RequestorHandler.Negotiated.self)
        let ended = channel.eventLoop.makePromise(of: DICOMNetworkError.self)
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(PDUDecoder(maximumPDULength: 262144)),
            MessageToByteHandler(PDUEncoder()),
            RequestorHandler(request: request, timeouts: DICOMClient.Timeouts(), established: established,
                             ended: ended, logger: Logger(label: "handler-test")),
        ])
        return Pipeline(channel: channel, established: established, ended: ended)
    }

    /// The next outbound write, which must be exactly one PDU.
    func nextPDU(_ channel: EmbeddedChannel) throws -> PDU? {
        guard var buffer = try channel.readOutbound(as: ByteBuffer.self) else { return nil }
        let pdu = try PDUDecoder(maximumPDULength: 1 << 20).decodePDU(buffer: &buffer)
        #expect(buffer.readableBytes == 0, "one write carries exactly one PDU")
        return pdu
    }

    func establish(_ pipeline: Pipeline) throws {
        try pipeline.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 104)).wait()
        #expect(try nextPDU(pipeline.channel) == .associateRQ(request))
        try pipeline.channel.writeInbound(PDU.associateAC(RequestorStateMachineTests.accept()).encoded())
        let negotiated = try pipeline.established.futureResult.wait()
        #expect(negotiated.acceptedContexts == RequestorStateMachineTests.accepted)
        #expect(negotiated.maximumDataFragmentLength == 16384 - 6)
    }

    @Test func dataSetFragmentsWaitForWritability() throws {
        let pipeline = try makePipeline()
        let channel = pipeline.channel
        try establish(pipeline)

        let response = channel.eventLoop.makePromise(of: DIMSEMessage.self)
        try channel.writeOutbound(RequestorHandler.Request.operation(
            RequestorStateMachineTests.storeRQ, contextID: 3, response: response))
        guard case .pDataTF(let command) = try nextPDU(channel) else {
            Issue.record("expected the command")
            return
        }
        #expect(command.values.allSatisfy { $0.isCommand && $0.contextID == 3 })

        // Not writable: the fragment is written, but the next one must wait.
        channel.isWritable = false
        let ready = channel.eventLoop.makePromise(of: Void.self)
        let readiness = ReadyFlag()
        ready.futureResult.whenComplete { _ in readiness.done = true }
        try channel.writeOutbound(RequestorHandler.Request.dataSetBlock(
            ByteBuffer(bytes: [1, 2, 3, 4]), fragmentLength: 16, isLast: false, ready: ready))
        #expect(try nextPDU(channel) == .pDataTF(PDataTF(values: [
            PresentationDataValue(contextID: 3, isCommand: false, isLast: false, data: ByteBuffer(bytes: [1, 2, 3, 4]))
        ])))
        #expect(!readiness.done)
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(readiness.done)

        let last = channel.eventLoop.makePromise(of: Void.self)
        try channel.writeOutbound(RequestorHandler.Request.dataSetBlock(ByteBuffer(bytes: [5, 6]), fragmentLength: 16,
                                                                        isLast: true, ready: last))
        try last.futureResult.wait()
        _ = try nextPDU(channel)

        let rsp = RequestorStateMachineTests.storeRSP(.success)
        try channel.writeInbound(RequestorStateMachineTests.command(rsp, contextID: 3).encoded())
        #expect(try response.futureResult.wait() == rsp)
        _ = try? channel.finish()
    }

    @Test func invalidBytesAbortAndFailTheOperation() throws {
        let pipeline = try makePipeline()
        let channel = pipeline.channel
        try establish(pipeline)

        let response = channel.eventLoop.makePromise(of: DIMSEMessage.self)
        try channel.writeOutbound(RequestorHandler.Request.operation(
            RequestorStateMachineTests.echoRQ, contextID: 1, response: response))
        _ = try nextPDU(channel)
        // A P-DATA-TF longer than our maximum length (262144).
        _ = try? channel.writeInbound(ByteBuffer(bytes: [0x04, 0, 0x00, 0x10, 0x00, 0x00]))
        #expect(try nextPDU(channel) == .abort(AAbort(source: .serviceProvider, reason: .invalidPDUParameterValue)))
        #expect(throws: DICOMNetworkError.self) { try response.futureResult.wait() }
        // The peer closes: the handler reports why the association ended.
        _ = try? channel.finish()
        #expect(try pipeline.ended.futureResult.wait().code == .protocolError)
    }

    @Test func pendingResponsesReachTheCallbackAndCancelIsWritten() throws {
        let pipeline = try makePipeline()
        let channel = pipeline.channel
        try establish(pipeline)

        let findRQ = DIMSEMessage.cFindRQ(CFindRQ(messageID: 7, affectedSOPClassUID: "1.2.840.10008.5.1.4.1.2.2.1"))
        let response = channel.eventLoop.makePromise(of: DIMSEMessage.self)
        let seen = PendingLog()
        try channel.writeOutbound(RequestorHandler.Request.operation(
            findRQ, contextID: 3, response: response, pending: { message, dataSet in seen.entries.append((message, dataSet)) }))
        _ = try nextPDU(channel)
        let done = channel.eventLoop.makePromise(of: Void.self)
        try channel.writeOutbound(RequestorHandler.Request.dataSetBlock(
            ByteBuffer(bytes: [1, 2, 3, 4, 5]), fragmentLength: 2, isLast: true, ready: done))
        try done.futureResult.wait()
        for _ in 0..<3 { _ = try nextPDU(channel) }  // the identifier, in three fragments

        let pending = DIMSEMessage.cFindRSP(CFindRSP(messageIDBeingRespondedTo: 7, affectedSOPClassUID: nil,
                                                     status: .pending, hasIdentifier: true))
        try channel.writeInbound(PDU.pDataTF(PDataTF(values: [
            PresentationDataValue(contextID: 3, isCommand: true, isLast: true, data: pending.commandSet.encoded()),
            PresentationDataValue(contextID: 3, isCommand: false, isLast: false, data: ByteBuffer(bytes: [7])),
        ])).encoded())
        #expect(seen.entries.isEmpty)  // not whole yet
        try channel.writeInbound(PDU.pDataTF(PDataTF(values: [
            PresentationDataValue(contextID: 3, isCommand: false, isLast: true, data: ByteBuffer(bytes: [8])),
        ])).encoded())
        #expect(seen.entries.count == 1)
        #expect(seen.entries.first?.0 == pending)
        #expect(seen.entries.first?.1 == ByteBuffer(bytes: [7, 8]))

        try channel.writeOutbound(RequestorHandler.Request.cancel)
        #expect(try nextPDU(channel) == RequestorStateMachineTests.command(
            .cCancelRQ(CCancelRQ(messageIDBeingRespondedTo: 7)), contextID: 3))

        let final = DIMSEMessage.cFindRSP(CFindRSP(messageIDBeingRespondedTo: 7, affectedSOPClassUID: nil,
                                                   status: .cancel, hasIdentifier: false))
        try channel.writeInbound(RequestorStateMachineTests.command(final, contextID: 3).encoded())
        #expect(try response.futureResult.wait() == final)
        #expect(seen.entries.count == 1)
        _ = try? channel.finish()
    }

    @Test func releaseCompletesOnRP() throws {
        let pipeline = try makePipeline()
        let channel = pipeline.channel
        try establish(pipeline)
        let release = channel.eventLoop.makePromise(of: Void.self)
        try channel.writeOutbound(RequestorHandler.Request.release(release))
        #expect(try nextPDU(channel) == .releaseRQ)
        try channel.writeInbound(PDU.releaseRP.encoded())
        try release.futureResult.wait()
        #expect(!channel.isActive)
        #expect(try pipeline.ended.futureResult.wait() == .released)
    }
}

private final class ReadyFlag: @unchecked Sendable {
    var done = false
}

private final class PendingLog: @unchecked Sendable {
    var entries: [(DIMSEMessage, ByteBuffer?)] = []
}
