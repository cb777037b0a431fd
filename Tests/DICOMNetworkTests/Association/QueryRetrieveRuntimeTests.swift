import DICOMCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

@testable import DICOMNetwork

/// The acceptor's query/retrieve runtime without sockets: PDUs in, PDUs out of an
/// `AssociationHandler` on an `EmbeddedChannel`, a provider that answers as the test says.
@Suite struct QueryRetrieveRuntimeTests {
    static let findSOPClass = "1.2.840.10008.5.1.4.1.2.2.1"

    /// Records what the runtime asks of it; answers C-FIND with `results` pending responses then
    /// success, unless `holds` (then it waits for `cancel`, which answers FE00).
    final class Provider: DICOMServiceProvider, @unchecked Sendable {
        let results: Int
        let holds: Bool
        let requests = NIOLockedValueBox<[QueryRetrieveRequest]>([])
        let cancelled = NIOLockedValueBox(0)
        let responder = NIOLockedValueBox<QueryRetrieveResponder?>(nil)

        init(results: Int = 0, holds: Bool = false) {
            self.results = results
            self.holds = holds
        }

        func associationRequested(_ request: AssociateRQ, peer: String) -> AssociationDecision {
            let results = request.presentationContexts.map {
                PresentationContextResult(id: $0.id, result: .acceptance, transferSyntax: $0.transferSyntaxes[0])
            }
            return .accept(presentationContexts: results, roleSelections: [])
        }

        func associationEnded(_ association: AssociationContext, reason: AssociationEndReason) {}
        func verify(_ association: AssociationContext) -> DIMSEStatus { .success }
        func beginStore(_ request: CStoreRQ, transferSyntax: String, association: AssociationContext) -> any StoreReceiver {
            RefusingStoreReceiver(StoreOutcome(status: .sopClassNotSupported))
        }

        func beginQueryRetrieve(_ request: QueryRetrieveRequest, association: AssociationContext,
                                responder: QueryRetrieveResponder) -> any QueryRetrieveOperation {
            requests.withLockedValue { $0.append(request) }
            self.responder.withLockedValue { $0 = responder }
            if !holds {
                for index in 0..<results {
                    var writer = DataSetWriter(explicitVR: false)
                    writer.write(Tag(0x0020, 0x000D), .UI, string: "1.2.3.\(index)")
                    responder.respond(QueryRetrieveResponder.message(for: request, status: .pending, hasIdentifier: true),
                                      identifier: writer.buffer)
                }
                responder.respond(QueryRetrieveResponder.message(for: request, status: .success))
                return FinishedOperation()
            }
            return Cancel { [self] in
                cancelled.withLockedValue { $0 += 1 }
                responder.respond(QueryRetrieveResponder.message(for: request, status: .cancel))
            }
        }

        struct Cancel: QueryRetrieveOperation {
            let action: @Sendable () -> Void
            func cancel() { action() }
        }
    }

    /// An established association on an embedded channel, and the responses it wrote.
    struct Harness {
        let channel: EmbeddedChannel
        var assembler = DIMSEMessageAssembler()

        init(provider: Provider) throws {
            channel = EmbeddedChannel()
            let handler = AssociationHandler(
                configuration: .init(maximumPDULength: 16384, artimTimeout: .seconds(30)), provider: provider,
                threadPool: NIOThreadPool.singleton, associationID: 1, logger: Logger(label: "test"))
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            try channel.writeInbound(PDU.associateRQ(AssociateRQ(
                calledAETitle: "MIRC", callingAETitle: "PACS",
                presentationContexts: [PresentationContextProposal(id: 1, abstractSyntax: QueryRetrieveRuntimeTests.findSOPClass,
                                                                   transferSyntaxes: [TransferSyntax.implicitVRLittleEndian.uid])])))
            guard case .associateAC = try channel.readOutbound(as: PDU.self) else {
                throw TestFailure("no A-ASSOCIATE-AC")
            }
        }

        func send(_ message: DIMSEMessage, dataSet: ByteBuffer? = nil) throws {
            for pData in PDataTF.fragments(of: message.commandSet.encoded(), contextID: 1, isCommand: true,
                                           maximumPDULength: 16384) {
                try channel.writeInbound(PDU.pDataTF(pData))
            }
            if let dataSet {
                for pData in PDataTF.fragments(of: dataSet, contextID: 1, isCommand: false, maximumPDULength: 16384) {
                    try channel.writeInbound(PDU.pDataTF(pData))
                }
            }
        }

        /// Runs pending event-loop work, then the DIMSE messages written (with their data set
        /// sizes) and the other PDUs.
        mutating func written() throws -> (messages: [(DIMSEMessage, Int)], others: [PDU]) {
            channel.embeddedEventLoop.run()
            var messages: [(DIMSEMessage, Int)] = []
            var others: [PDU] = []
            while let pdu = try channel.readOutbound(as: PDU.self) {
                guard case .pDataTF(let pData) = pdu else {
                    others.append(pdu)
                    continue
                }
                for event in try assembler.receive(pData) {
                    switch event {
                    case .command(_, let set): messages.append((try DIMSEMessage(commandSet: set), 0))
                    case .dataFragment(_, let bytes, _): messages[messages.count - 1].1 += bytes.readableBytes
                    }
                }
            }
            return (messages, others)
        }
    }

    struct TestFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    func identifier() -> ByteBuffer {
        var writer = DataSetWriter(explicitVR: false)
        writer.write(Tag(0x0008, 0x0052), .CS, string: "STUDY")
        writer.write(Tag(0x0010, 0x0010), .PN, string: "DURAND*")
        return writer.buffer
    }

    func status(_ message: DIMSEMessage) -> DIMSEStatus? {
        if case .cFindRSP(let rsp) = message { return rsp.status }
        return nil
    }

    @Test func findGetsItsIdentifierAndAnswersPendingThenFinal() throws {
        let provider = Provider(results: 2)
        var harness = try Harness(provider: provider)
        try harness.send(.cFindRQ(CFindRQ(messageID: 7, affectedSOPClassUID: Self.findSOPClass)), dataSet: identifier())
        let requests = provider.requests.withLockedValue { $0 }
        #expect(requests.count == 1)
        #expect(requests.first?.messageID == 7)
        #expect(requests.first?.identifier == identifier())
        #expect(requests.first?.transferSyntax == TransferSyntax.implicitVRLittleEndian.uid)
        let (messages, _) = try harness.written()
        #expect(messages.map { status($0.0) } == [.pending, .pending, .success])
        #expect(messages.map { $0.1 > 0 } == [true, true, false])  // identifiers with the pending ones only
        try harness.channel.writeInbound(PDU.releaseRQ)
        #expect(try harness.written().others == [.releaseRP])
    }

    @Test func cancelReachesItsOperationOnly() throws {
        let provider = Provider(holds: true)
        var harness = try Harness(provider: provider)
        try harness.send(.cFindRQ(CFindRQ(messageID: 9, affectedSOPClassUID: Self.findSOPClass)), dataSet: identifier())
        #expect(try harness.written().messages.isEmpty)
        try harness.send(.cCancelRQ(CCancelRQ(messageIDBeingRespondedTo: 8)))  // not running: ignored
        #expect(provider.cancelled.withLockedValue { $0 } == 0)
        try harness.send(.cCancelRQ(CCancelRQ(messageIDBeingRespondedTo: 9)))
        #expect(provider.cancelled.withLockedValue { $0 } == 1)
        #expect(try harness.written().messages.map { status($0.0) } == [.cancel])
        // Later responses of a finished operation are dropped.
        let late = provider.responder.withLockedValue { $0 }
        late?.respond(.cFindRSP(CFindRSP(messageIDBeingRespondedTo: 9, affectedSOPClassUID: Self.findSOPClass,
                                         status: .success, hasIdentifier: false)))
        #expect(try harness.written().messages.isEmpty)
    }

    @Test func releaseWaitsForTheFinalResponse() throws {
        let provider = Provider(holds: true)
        var harness = try Harness(provider: provider)
        try harness.send(.cFindRQ(CFindRQ(messageID: 2, affectedSOPClassUID: Self.findSOPClass)), dataSet: identifier())
        try harness.channel.writeInbound(PDU.releaseRQ)
        let waiting = try harness.written()
        #expect(waiting.messages.isEmpty && waiting.others.isEmpty)
        let responder = try #require(provider.responder.withLockedValue { $0 })
        responder.respond(.cFindRSP(CFindRSP(messageIDBeingRespondedTo: 2, affectedSOPClassUID: Self.findSOPClass,
                                             status: .success, hasIdentifier: false)))
        let done = try harness.written()
        #expect(done.messages.map { status($0.0) } == [.success])
        #expect(done.others == [.releaseRP])
    }

    @Test func anAbortCancelsTheRunningOperation() throws {
        let provider = Provider(holds: true)
        let harness = try Harness(provider: provider)
        try harness.send(.cFindRQ(CFindRQ(messageID: 3, affectedSOPClassUID: Self.findSOPClass)), dataSet: identifier())
        try harness.channel.writeInbound(PDU.abort(AAbort(source: .serviceUser)))
        harness.channel.embeddedEventLoop.run()
        #expect(provider.cancelled.withLockedValue { $0 } == 1)
    }

    @Test func requestsWithoutIdentifierOrOnAnotherClassAreRefusedWithoutTheProvider() throws {
        let provider = Provider(results: 1)
        var harness = try Harness(provider: provider)
        // C-FIND-RQ announcing no data set.
        var command = CFindRQ(messageID: 4, affectedSOPClassUID: Self.findSOPClass).commandSet
        command = CommandSet.make(.cFindRQ, hasDataSet: false, [
            (.messageID, .uint16(4)), (.affectedSOPClassUID, .string(Self.findSOPClass)), (.priority, .uint16(0)),
        ])
        for pData in PDataTF.fragments(of: command.encoded(), contextID: 1, isCommand: true, maximumPDULength: 16384) {
            try harness.channel.writeInbound(PDU.pDataTF(pData))
        }
        // A C-FIND of the Patient Root class on the Study Root context.
        try harness.send(.cFindRQ(CFindRQ(messageID: 5, affectedSOPClassUID: "1.2.840.10008.5.1.4.1.2.1.1")),
                         dataSet: identifier())
        let (messages, _) = try harness.written()
        #expect(messages.map { status($0.0) } == [.cannotUnderstand, .sopClassNotSupported])
        #expect(provider.requests.withLockedValue { $0 }.isEmpty)
    }
}
