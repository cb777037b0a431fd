import DICOMCore
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import DICOMNetwork

/// C-GET against a real peer: DCMTK's dcmqrscp (the fixture of ``DICOMClientQueryRetrieveTests``)
/// sends a study's instances as C-STORE sub-operations on our association; receivers write them
/// to files on the thread pool.
@Suite(.serialized)
struct DICOMClientGetTests {
    static let get = UIDRegistry.studyRootQueryRetrieveInformationModelGetSOPClassUID
    static let storage = ClientTestSupport.secondaryCaptureImageStorage

    let logger = Logger(label: "client-get-test")
    let timeouts = DICOMClient.Timeouts(connect: .seconds(5), association: .seconds(10), dimse: .seconds(20))
    let fixture = DICOMClientQueryRetrieveTests()

    /// What the receivers saw, across the thread pool.
    final class Reception: Sendable {
        struct Instance: Sendable {
            var transferSyntax: String
            var file: URL
            var status: DIMSEStatus
            var calls: [String] = []
        }

        let directory: URL
        let instances = NIOLockedValueBox<[String: Instance]>([:])
        /// Calls made on the event loop, or while another call on the same receiver ran.
        let violations = NIOLockedValueBox<[String]>([])
        let sinkCalls = NIOLockedValueBox(0)

        init(directory: URL) { self.directory = directory }

        /// The sink `get` takes: one ``FileReceiver`` per instance, answering `status(uid)`.
        func sink(status: @escaping @Sendable (String) -> DIMSEStatus = { _ in .success })
            -> @Sendable (CStoreRQ, String) -> any StoreReceiver
        {
            { [self] request, transferSyntax in
                if MultiThreadedEventLoopGroup.currentEventLoop != nil {
                    violations.withLockedValue { $0.append("sink called on an event loop") }
                }
                sinkCalls.withLockedValue { $0 += 1 }
                let uid = request.affectedSOPInstanceUID
                let file = directory.appendingPathComponent(uid)
                instances.withLockedValue {
                    $0[uid] = Instance(transferSyntax: transferSyntax, file: file, status: status(uid))
                }
                return FileReceiver(uid: uid, file: file, status: status(uid), reception: self)
            }
        }

        func record(_ uid: String, _ call: String) {
            instances.withLockedValue { $0[uid]?.calls.append(call) }
        }

        func violation(_ text: String) {
            violations.withLockedValue { $0.append(text) }
        }
    }

    /// Writes the data set to a file with blocking calls (and fsyncs it), then answers its status.
    final class FileReceiver: StoreReceiver {
        let uid: String
        let status: DIMSEStatus
        let reception: Reception
        let handle: NIOLockedValueBox<FileHandle?>
        let busy = NIOLockedValueBox(false)

        init(uid: String, file: URL, status: DIMSEStatus, reception: Reception) {
            self.uid = uid
            self.status = status
            self.reception = reception
            _ = FileManager.default.createFile(atPath: file.path, contents: nil)
            handle = NIOLockedValueBox(try? FileHandle(forWritingTo: file))
        }

        /// Runs `body` as one receiver call, noting calls made on an event loop or overlapping.
        private func call(_ name: String, _ body: () -> Void) {
            if MultiThreadedEventLoopGroup.currentEventLoop != nil { reception.violation("\(name) on an event loop") }
            let overlapping = busy.withLockedValue { busy -> Bool in
                defer { busy = true }
                return busy
            }
            if overlapping { reception.violation("\(name) while another call ran") }
            reception.record(uid, name)
            body()
            busy.withLockedValue { $0 = false }
        }

        func write(_ slices: [ByteBuffer]) {
            call("write") {
                handle.withLockedValue { handle in
                    for slice in slices { handle?.write(Data(slice.readableBytesView)) }
                }
            }
        }

        func finish(respond: @escaping @Sendable (StoreOutcome) -> Void, settled: @escaping @Sendable () -> Void) {
            call("finish") {
                handle.withLockedValue { handle in
                    try? handle?.synchronize()
                    try? handle?.close()
                    handle = nil
                }
                respond(StoreOutcome(status: status, errorComment: status == .success ? nil : "refused by the test"))
                settled()
            }
        }

        func abandon() {
            call("abandon") {
                handle.withLockedValue { handle in
                    try? handle?.close()
                    handle = nil
                }
            }
        }
    }

    func connect(_ peers: DICOMClientQueryRetrieveTests.Peers) async throws -> DICOMAssociation {
        let (contexts, roles) = try DICOMClient.proposals(forGetting: [Self.storage], queryRetrieve: Self.get)
        return try await DICOMClient.connect(
            host: "127.0.0.1", port: peers.archivePort, callingAETitle: "CLIENTTEST", calledAETitle: "QRSCP",
            presentationContexts: contexts, roleSelections: roles, timeouts: timeouts,
            group: MultiThreadedEventLoopGroup.singleton, logger: logger)
    }

    @Test func getOfOneStudyDeliversItsInstancesByteForByte() async throws {
        // 100 kB of pixels: each data set spans several of dcmqrscp's 16 KiB PDUs.
        let peers = try await fixture.startPeers(pixelBytes: 100_000)
        defer { peers.stop() }
        let association = try await connect(peers)
        let context = try #require(association.acceptedContext(abstractSyntax: Self.get), "\(peers.logs)")
        #expect(association.acceptedContext(abstractSyntax: Self.storage) != nil)
        #expect(association.associateAC.userInformation.roleSelections.contains {
            $0.sopClassUID == Self.storage && $0.scpRole
        }, "roles accepted: \(association.associateAC.userInformation.roleSelections)")
        let (study, instances) = try #require(peers.studies.first { $0.value.count == 2 })

        let reception = Reception(directory: peers.directory.appendingPathComponent("got"))
        try FileManager.default.createDirectory(at: reception.directory, withIntermediateDirectories: true)
        let seen = NIOLockedValueBox<[RetrieveResponseFields]>([])
        let final = try await association.get(
            sopClassUID: Self.get, identifier: try fixture.studyIdentifier(context, studyInstanceUID: study),
            contextID: context.id, store: reception.sink()
        ) { fields in
            seen.withLockedValue { $0.append(fields) }
        }

        #expect(final.status == .success, "\(final.status) \(final.errorComment ?? "")\n\(peers.logs)")
        #expect(final.numberOfCompletedSuboperations == UInt16(instances.count))
        #expect(final.numberOfFailedSuboperations ?? 0 == 0)
        #expect(final.numberOfWarningSuboperations ?? 0 == 0)
        let progress = seen.withLockedValue { $0 }
        #expect(progress.allSatisfy { $0.status.kind == .pending && $0.messageIDBeingRespondedTo == final.messageIDBeingRespondedTo })

        #expect(reception.violations.withLockedValue { $0 } == [])
        let received = reception.instances.withLockedValue { $0 }
        #expect(Set(received.keys) == Set(instances))
        for uid in instances {
            let instance = try #require(received[uid])
            // Received as stored: the data set part of what we stored, byte for byte.
            #expect(instance.transferSyntax == TransferSyntax.explicitVRLittleEndian.uid)
            let bytes = try [UInt8](Data(contentsOf: instance.file))
            let stored = try #require(peers.dataSets[uid])
            #expect(bytes.count == stored.count)
            #expect(bytes == stored, "the data set of \(uid) differs")
            // One receiver per instance, fed in order, then finished; never abandoned.
            #expect(instance.calls.last == "finish", "\(instance.calls)")
            #expect(instance.calls.dropLast().allSatisfy { $0 == "write" }, "\(instance.calls)")
        }

        // The association goes on: a C-GET of nothing receives nothing.
        let nothing = try await association.get(
            sopClassUID: Self.get, identifier: try fixture.studyIdentifier(context, studyInstanceUID: "2.25.404"),
            contextID: context.id, store: reception.sink())
        #expect(nothing.status == .success, "\(nothing.status)")
        #expect(nothing.numberOfCompletedSuboperations ?? 0 == 0)
        #expect(reception.sinkCalls.withLockedValue { $0 } == instances.count)
        try await association.release()
    }

    @Test func aReceiverThatFailsIsCountedAsAFailedSubOperation() async throws {
        let peers = try await fixture.startPeers()
        defer { peers.stop() }
        let association = try await connect(peers)
        let context = try #require(association.acceptedContext(abstractSyntax: Self.get), "\(peers.logs)")
        let (study, instances) = try #require(peers.studies.first { $0.value.count == 2 })
        let refused = try #require(instances.sorted().first)

        let reception = Reception(directory: peers.directory.appendingPathComponent("got"))
        try FileManager.default.createDirectory(at: reception.directory, withIntermediateDirectories: true)
        let final = try await association.get(
            sopClassUID: Self.get, identifier: try fixture.studyIdentifier(context, studyInstanceUID: study),
            contextID: context.id, store: reception.sink { $0 == refused ? .outOfResources : .success })

        // PS3.4 C.4.3.1.4: sub-operations complete with a failure is a warning (0xB000).
        #expect(final.status.kind == .warning, "\(final.status) \(final.errorComment ?? "")\n\(peers.logs)")
        #expect(final.numberOfFailedSuboperations == 1)
        #expect(final.numberOfCompletedSuboperations == UInt16(instances.count - 1))
        #expect(reception.violations.withLockedValue { $0 } == [])
        #expect(Set(reception.instances.withLockedValue { $0.keys }) == Set(instances))

        // The association is still usable: the other study comes whole.
        let (other, otherInstances) = try #require(peers.studies.first { $0.key != study })
        let next = try await association.get(
            sopClassUID: Self.get, identifier: try fixture.studyIdentifier(context, studyInstanceUID: other),
            contextID: context.id, store: reception.sink())
        #expect(next.status == .success, "\(next.status)\n\(peers.logs)")
        #expect(next.numberOfCompletedSuboperations == UInt16(otherInstances.count))
        try await association.release()
    }
}
