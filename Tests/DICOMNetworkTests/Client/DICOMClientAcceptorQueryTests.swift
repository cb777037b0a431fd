import DICOMCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import DICOMNetwork

/// The requestor's C-FIND and C-MOVE against our own acceptor over a real socket, with a
/// provider that answers as scripted — where dcmqrscp cannot help: an operation held open
/// until the C-CANCEL comes, identifiers larger than one PDU, a final response with a data set.
@Suite(.serialized)
struct DICOMClientAcceptorQueryTests {
    static let find = UIDRegistry.studyRootQueryRetrieveInformationModelFindSOPClassUID
    static let move = UIDRegistry.studyRootQueryRetrieveInformationModelMoveSOPClassUID

    let logger = Logger(label: "client-acceptor-test")
    let timeouts = DICOMClient.Timeouts(connect: .seconds(5), association: .seconds(10), dimse: .seconds(20))

    /// C-FIND: `identifiers` as pending responses, then holds until cancelled (Cancel).
    /// C-MOVE: one pending response per `moveCounts` entry, then a final Warning whose
    /// Failed SOP Instance UID List is `failedList`.
    final class Provider: DICOMServiceProvider, Sendable {
        let identifiers: [ByteBuffer]
        let moveCounts: [SubOperationCounts]
        let failedList: ByteBuffer
        let received = NIOLockedValueBox<[QueryRetrieveRequest]>([])
        let cancels = NIOLockedValueBox(0)

        init(identifiers: [ByteBuffer] = [], moveCounts: [SubOperationCounts] = [], failedList: ByteBuffer = ByteBuffer()) {
            self.identifiers = identifiers
            self.moveCounts = moveCounts
            self.failedList = failedList
        }

        func associationRequested(_ request: AssociateRQ, peer: String) -> AssociationDecision {
            .accept(presentationContexts: request.presentationContexts.map {
                PresentationContextResult(id: $0.id, result: .acceptance, transferSyntax: $0.transferSyntaxes[0])
            }, roleSelections: [])
        }

        func associationEnded(_ association: AssociationContext, reason: AssociationEndReason) {}
        func verify(_ association: AssociationContext) -> DIMSEStatus { .success }
        func beginStore(_ request: CStoreRQ, transferSyntax: String, association: AssociationContext) -> any StoreReceiver {
            RefusingStoreReceiver(StoreOutcome(status: .sopClassNotSupported))
        }

        func beginQueryRetrieve(_ request: QueryRetrieveRequest, association: AssociationContext,
                                responder: QueryRetrieveResponder) -> any QueryRetrieveOperation {
            received.withLockedValue { $0.append(request) }
            switch request.command {
            case .find:
                for identifier in identifiers {
                    responder.respond(QueryRetrieveResponder.message(for: request, status: .pending, hasIdentifier: true),
                                      identifier: identifier)
                }
                return Held { [self] in
                    cancels.withLockedValue { $0 += 1 }
                    responder.respond(QueryRetrieveResponder.message(for: request, status: .cancel))
                }
            case .move, .get:
                for counts in moveCounts {
                    responder.respond(QueryRetrieveResponder.message(for: request, status: .pending, counts: counts))
                }
                let last = moveCounts.last ?? SubOperationCounts(remaining: 0)
                let final = SubOperationCounts(remaining: 0, completed: last.completed + 1, failed: last.failed + 1)
                responder.respond(QueryRetrieveResponder.message(
                    for: request, status: .subOperationsCompleteWithFailures, counts: final, hasIdentifier: true),
                                  identifier: failedList)
                return FinishedOperation()
            }
        }

        struct Held: QueryRetrieveOperation {
            let onCancel: @Sendable () -> Void
            func cancel() { onCancel() }
        }
    }

    func withServer(_ provider: Provider,
                    _ body: (DICOMAssociation) async throws -> Void) async throws {
        let server = DICOMServer(
            configuration: .init(host: "127.0.0.1", port: 0, maximumPDULength: 16384, idleTimeout: .seconds(30)),
            provider: provider, group: MultiThreadedEventLoopGroup.singleton, threadPool: .singleton, logger: logger)
        let port = try await server.start()
        do {
            // 16 KiB PDUs both ways: identifiers beyond that cross several P-DATA-TFs.
            let association = try await DICOMClient.connect(
                host: "127.0.0.1", port: port, callingAETitle: "CLIENTTEST", calledAETitle: "ACCEPTOR",
                presentationContexts: try DICOMClient.proposals(forQueryRetrieve: [Self.find, Self.move]),
                maximumPDULength: 16384, timeouts: timeouts, group: MultiThreadedEventLoopGroup.singleton,
                logger: logger)
            try await body(association)
        } catch {
            await server.shutdown(gracePeriod: .seconds(1))
            throw error
        }
        await server.shutdown(gracePeriod: .seconds(1))
    }

    /// An identifier of about `size` bytes (a long Study Description), Explicit VR LE.
    static func identifier(_ index: Int, size: Int = 100) -> ByteBuffer {
        var writer = DataSetWriter(transferSyntax: .explicitVRLittleEndian)
        writer.write(.queryRetrieveLevel, .CS, string: "STUDY")
        writer.write(.studyDescription, .LT, Array(repeating: UInt8(ascii: "a") + UInt8(index % 26), count: size))
        writer.write(.studyInstanceUID, .UI, string: "2.25.\(index)")
        return writer.buffer
    }

    @Test func limitCancelsAnOperationThePeerHoldsOpen() async throws {
        let provider = Provider(identifiers: (1...3).map { Self.identifier($0) })
        try await withServer(provider) { association in
            let context = try #require(association.acceptedContext(abstractSyntax: Self.find))
            let query = Self.identifier(0, size: 0)
            let result = try await association.find(sopClassUID: Self.find, identifier: query,
                                                    contextID: context.id, limit: 3)
            // Only the C-CANCEL ends this operation: Cancel proves it arrived.
            #expect(result.status == .cancel)
            #expect(result.cancelled)
            #expect(result.identifiers == (1...3).map { Self.identifier($0) })
            #expect(provider.cancels.withLockedValue { $0 } == 1)
            #expect(provider.received.withLockedValue { $0.map(\.identifier) } == [query])
            #expect(try await association.echo() == .success)
            try await association.release()
        }
    }

    @Test func identifiersLargerThanAPDUArriveWhole() async throws {
        // 40 KB each: three P-DATA-TFs of 16 KiB per identifier.
        let identifiers = (1...4).map { Self.identifier($0, size: 40_000) }
        let provider = Provider(identifiers: identifiers)
        try await withServer(provider) { association in
            let context = try #require(association.acceptedContext(abstractSyntax: Self.find))
            #expect(association.peerMaximumPDULength == 16384)
            let result = try await association.find(sopClassUID: Self.find, identifier: Self.identifier(0, size: 0),
                                                    contextID: context.id, limit: 4)
            #expect(result.status == .cancel)
            #expect(result.identifiers == identifiers)
            let parsed = try DataSetParser.parse(try #require(result.identifiers.last), transferSyntax: .explicitVRLittleEndian)
            #expect(parsed.first { $0.tag == .studyDescription }?.value.readableBytes == 40_000)
            try await association.release()
        }
    }

    @Test func moveReportsProgressAndAFinalResponseWithItsFailedList() async throws {
        var failedList = DataSetWriter(transferSyntax: .explicitVRLittleEndian)
        failedList.write(.failedSOPInstanceUIDList, .UI, string: "2.25.9")
        let provider = Provider(
            moveCounts: [SubOperationCounts(remaining: 2), SubOperationCounts(remaining: 1, completed: 1)],
            failedList: failedList.buffer)
        try await withServer(provider) { association in
            let context = try #require(association.acceptedContext(abstractSyntax: Self.move))
            let seen = NIOLockedValueBox<[RetrieveResponseFields]>([])
            let identifier = Self.identifier(7, size: 0)
            let final = try await association.move(sopClassUID: Self.move, identifier: identifier,
                                                   contextID: context.id, destination: "ELSEWHERE") { fields in
                seen.withLockedValue { $0.append(fields) }
            }
            #expect(final.status == .subOperationsCompleteWithFailures)
            #expect(final.hasIdentifier)
            #expect(final.numberOfCompletedSuboperations == 2)
            #expect(final.numberOfFailedSuboperations == 1)
            #expect(seen.withLockedValue { $0.map(\.numberOfRemainingSuboperations) } == [2, 1])
            let request = try #require(provider.received.withLockedValue { $0.first })
            guard case .move(let rq) = request.command else {
                Issue.record("expected a C-MOVE, got \(request.command)")
                return
            }
            #expect(rq.moveDestination == "ELSEWHERE")
            #expect(request.identifier == identifier)
            // The association is idle again.
            #expect(try await association.echo() == .success)
            try await association.release()
        }
    }
}
