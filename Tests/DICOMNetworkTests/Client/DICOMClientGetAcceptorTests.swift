import DICOMCore
import Dispatch
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import DICOMNetwork

/// C-GET against our own acceptor over a real socket, where dcmqrscp cannot help: data sets of
/// several MiB into a slow receiver (reading pauses, nothing is lost), and an abort in the middle
/// of a data set (the receiver is abandoned).
@Suite(.serialized)
struct DICOMClientGetAcceptorTests {
    static let get = UIDRegistry.studyRootQueryRetrieveInformationModelGetSOPClassUID
    static let storage = ClientTestSupport.secondaryCaptureImageStorage

    let logger = Logger(label: "client-get-acceptor-test")
    let timeouts = DICOMClient.Timeouts(connect: .seconds(5), association: .seconds(10), dimse: .seconds(30))

    /// Accepts every context and role; hands each C-GET's responder to the test, which plays the SCP.
    final class Provider: DICOMServiceProvider, Sendable {
        let responders: AsyncStream<QueryRetrieveResponder>
        private let continuation: AsyncStream<QueryRetrieveResponder>.Continuation

        init() {
            (responders, continuation) = AsyncStream.makeStream()
        }

        func associationRequested(_ request: AssociateRQ, peer: String) -> AssociationDecision {
            .accept(presentationContexts: request.presentationContexts.map {
                PresentationContextResult(id: $0.id, result: .acceptance, transferSyntax: $0.transferSyntaxes[0])
            }, roleSelections: request.userInformation.roleSelections)
        }

        func associationEnded(_ association: AssociationContext, reason: AssociationEndReason) {}
        func verify(_ association: AssociationContext) -> DIMSEStatus { .success }
        func beginStore(_ request: CStoreRQ, transferSyntax: String, association: AssociationContext) -> any StoreReceiver {
            RefusingStoreReceiver(StoreOutcome(status: .sopClassNotSupported))
        }

        func beginQueryRetrieve(_ request: QueryRetrieveRequest, association: AssociationContext,
                                responder: QueryRetrieveResponder) -> any QueryRetrieveOperation {
            continuation.yield(responder)
            return FinishedOperation()
        }
    }

    /// Gathers the data set in memory, pausing `delay` in each write (a slow disk); can block
    /// its first write until `gate` is signalled. Reports its calls on `events`.
    final class SlowReceiver: StoreReceiver {
        let delay: useconds_t
        let gate: DispatchSemaphore?
        let events: AsyncStream<String>.Continuation
        let bytes = NIOLockedValueBox<[UInt8]>([])
        let calls = NIOLockedValueBox<[String]>([])

        init(delay: useconds_t, gate: DispatchSemaphore? = nil, events: AsyncStream<String>.Continuation) {
            self.delay = delay
            self.gate = gate
            self.events = events
        }

        func write(_ slices: [ByteBuffer]) {
            let first = calls.withLockedValue { calls -> Bool in
                calls.append("write")
                return calls.count == 1
            }
            if first {
                events.yield("first write")
                gate?.wait()
            }
            usleep(delay)
            bytes.withLockedValue { bytes in
                for slice in slices { bytes += slice.readableBytesView }
            }
        }

        func finish(respond: @escaping @Sendable (StoreOutcome) -> Void, settled: @escaping @Sendable () -> Void) {
            calls.withLockedValue { $0.append("finish") }
            respond(StoreOutcome(status: .success))
            settled()
            events.yield("finish")
        }

        func abandon() {
            calls.withLockedValue { $0.append("abandon") }
            events.yield("abandon")
        }
    }

    func withServer(_ provider: Provider, _ body: (DICOMAssociation) async throws -> Void) async throws {
        let server = DICOMServer(
            configuration: .init(host: "127.0.0.1", port: 0, maximumPDULength: 16384, idleTimeout: .seconds(30)),
            provider: provider, group: MultiThreadedEventLoopGroup.singleton, threadPool: .singleton, logger: logger)
        let port = try await server.start()
        do {
            let (contexts, roles) = try DICOMClient.proposals(forGetting: [Self.storage], queryRetrieve: Self.get)
            let association = try await DICOMClient.connect(
                host: "127.0.0.1", port: port, callingAETitle: "CLIENTTEST", calledAETitle: "ACCEPTOR",
                presentationContexts: contexts, roleSelections: roles, timeouts: timeouts,
                group: MultiThreadedEventLoopGroup.singleton, logger: logger)
            try await body(association)
        } catch {
            await server.shutdown(gracePeriod: .seconds(1))
            throw error
        }
        await server.shutdown(gracePeriod: .seconds(1))
    }

    static var studyIdentifier: ByteBuffer {
        var writer = DataSetWriter(transferSyntax: .explicitVRLittleEndian)
        writer.write(.queryRetrieveLevel, .CS, string: "STUDY")
        writer.write(.studyInstanceUID, .UI, string: "2.25.77")
        return writer.buffer
    }

    @Test func largeDataSetsIntoASlowReceiverArriveWhole() async throws {
        let directory = try ClientTestSupport.temporaryDirectory("get-acceptor")
        defer { try? FileManager.default.removeItem(at: directory) }
        // 12 MB each: three times what may wait for the receiver before reading pauses.
        let files = try (1...2).map {
            try ClientTestSupport.writePart10File(in: directory, sopInstanceUID: "2.25.77.1.\($0)",
                                                  pixelBytes: 12_000_000, studyInstanceUID: "2.25.77")
        }
        let provider = Provider()
        try await withServer(provider) { association in
            let context = try #require(association.acceptedContext(abstractSyntax: Self.get))
            #expect(association.associateAC.userInformation.roleSelections == [
                RoleSelection(sopClassUID: Self.storage, scuRole: false, scpRole: true),
            ])
            let (_, continuation) = AsyncStream<String>.makeStream()
            let receivers = NIOLockedValueBox<[String: SlowReceiver]>([:])

            async let answer = association.get(
                sopClassUID: Self.get, identifier: Self.studyIdentifier, contextID: context.id
            ) { request, transferSyntax in
                #expect(transferSyntax == TransferSyntax.explicitVRLittleEndian.uid)
                let receiver = SlowReceiver(delay: 2000, events: continuation)
                receivers.withLockedValue { $0[request.affectedSOPInstanceUID] = receiver }
                return receiver
            }
            // The SCP side: both instances as sub-operations, then the final response.
            var iterator = provider.responders.makeAsyncIterator()
            let responder = try #require(await iterator.next())
            var statuses: [DIMSEStatus] = []
            for file in files {
                statuses.append(try await responder.store(fileAt: file.path).status)
            }
            responder.respond(QueryRetrieveResponder.message(
                for: responder.request, status: .success, counts: SubOperationCounts(remaining: 0, completed: 2)))
            let final = try await answer
            continuation.finish()

            #expect(statuses == [.success, .success])
            #expect(final.status == .success)
            #expect(final.numberOfCompletedSuboperations == 2)
            let got = receivers.withLockedValue { $0 }
            for file in files {
                let uid = file.path.split(separator: "/").last.map { String($0.dropLast(4)) } ?? ""
                let receiver = try #require(got[uid], "no receiver for \(uid)")
                #expect(receiver.bytes.withLockedValue { $0 == file.dataSet }, "the data set of \(uid) differs")
                #expect(receiver.calls.withLockedValue { $0.last } == "finish")
            }
            try await association.release()
        }
    }

    @Test func anAbortMidDataSetAbandonsTheReceiver() async throws {
        let directory = try ClientTestSupport.temporaryDirectory("get-acceptor")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = try ClientTestSupport.writePart10File(in: directory, sopInstanceUID: "2.25.78.1.1",
                                                         pixelBytes: 12_000_000, studyInstanceUID: "2.25.78")
        let provider = Provider()
        try await withServer(provider) { association in
            let context = try #require(association.acceptedContext(abstractSyntax: Self.get))
            let (events, continuation) = AsyncStream<String>.makeStream()
            let gate = DispatchSemaphore(value: 0)
            let receiver = SlowReceiver(delay: 0, gate: gate, events: continuation)

            async let answer: Result<RetrieveResponseFields, DICOMNetworkError> = {
                () async -> Result<RetrieveResponseFields, DICOMNetworkError> in
                do throws(DICOMNetworkError) {
                    return .success(try await association.get(
                        sopClassUID: Self.get, identifier: Self.studyIdentifier, contextID: context.id
                    ) { _, _ in receiver })
                } catch {
                    return .failure(error)
                }
            }()
            var iterator = provider.responders.makeAsyncIterator()
            let responder = try #require(await iterator.next())
            async let sent: CStoreResult? = try? responder.store(fileAt: file.path)

            var seen = events.makeAsyncIterator()
            #expect(await seen.next() == "first write")
            // The receiver holds its first write: at most a few MiB are read meanwhile, the
            // data set (12 MB) cannot be complete. Abort now.
            await association.abort()
            gate.signal()
            #expect(await seen.next() == "abandon")
            continuation.finish()

            guard case .failure(let error) = await answer else {
                Issue.record("the C-GET succeeded after an abort")
                return
            }
            #expect(error.code == DICOMNetworkError.abortedLocally.code, "\(error)")
            #expect(receiver.calls.withLockedValue { $0.last } == "abandon")
            #expect(!receiver.calls.withLockedValue { $0.contains("finish") })
            _ = await sent  // the acceptor's side ends with the association
        }
    }
}
