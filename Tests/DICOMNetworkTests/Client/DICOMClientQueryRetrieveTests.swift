import DICOMCore
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import DICOMNetwork

/// C-FIND and C-MOVE against a real peer: DCMTK's dcmqrscp holding three studies (stored by
/// our own client), moving to a storescp.
@Suite(.serialized)
struct DICOMClientQueryRetrieveTests {
    static let dcmqrscp = "/usr/bin/dcmqrscp"
    static let find = UIDRegistry.studyRootQueryRetrieveInformationModelFindSOPClassUID
    static let move = UIDRegistry.studyRootQueryRetrieveInformationModelMoveSOPClassUID

    let logger = Logger(label: "client-qr-test")
    let timeouts = DICOMClient.Timeouts(connect: .seconds(5), association: .seconds(10), dimse: .seconds(20))

    /// dcmqrscp (AE QRSCP) with its database, and storescp (AE DEST) as its only move destination.
    final class Peers: Sendable {
        let directory: URL
        let output: URL
        let archive: PeerProcess
        let archivePort: Int
        let destination: PeerProcess
        /// Study Instance UID → SOP Instance UIDs stored.
        let studies: [String: [String]]
        /// SOP Instance UID → the data set stored (Explicit VR Little Endian).
        let dataSets: [String: [UInt8]]

        init(directory: URL, output: URL, archive: PeerProcess, archivePort: Int, destination: PeerProcess,
             studies: [String: [String]], dataSets: [String: [UInt8]]) {
            self.directory = directory
            self.output = output
            self.archive = archive
            self.archivePort = archivePort
            self.destination = destination
            self.studies = studies
            self.dataSets = dataSets
        }

        func stop() {
            archive.stop(grace: .seconds(1))
            destination.stop(grace: .seconds(1))
            try? FileManager.default.removeItem(at: directory)
        }

        var logs: String { archive.logText + "\n" + destination.logText }
    }

    /// `pixelBytes`: of each instance's pixel data (beyond the peer's 16 KiB PDUs, its data sets
    /// come in several P-DATA-TFs).
    func startPeers(pixelBytes: Int = 2000) async throws -> Peers {
        let directory = try ClientTestSupport.temporaryDirectory("dcmqrscp")
        let database = directory.appendingPathComponent("db")
        let output = directory.appendingPathComponent("out")
        for url in [database, output] {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        }
        let archivePort = try await ClientTestSupport.freePort()
        let destinationPort = try await ClientTestSupport.freePort()
        // HostTable wants a host name, not an address (dcmqrscp(1)).
        let configuration = """
            NetworkTCPPort  = \(archivePort)
            MaxPDUSize      = 16384
            MaxAssociations = 4
            HostTable BEGIN
            dest = (DEST, localhost, \(destinationPort))
            HostTable END
            VendorTable BEGIN
            VendorTable END
            AETable BEGIN
            QRSCP \(database.path) RW (10, 64mb) ANY
            AETable END

            """
        let configurationFile = directory.appendingPathComponent("dcmqrscp.cfg")
        try configuration.write(to: configurationFile, atomically: true, encoding: .utf8)

        let destination = try PeerProcess(
            executable: ClientTestSupport.storescp,
            arguments: ["-aet", "DEST", "-od", output.path, "\(destinationPort)"],
            log: directory.appendingPathComponent("storescp.log"))
        let archive: PeerProcess
        do {
            archive = try PeerProcess(
                executable: Self.dcmqrscp,
                // Forks per association: with --single-process the port probe below crashes it.
                arguments: ["-c", configurationFile.path, "\(archivePort)"],
                log: directory.appendingPathComponent("dcmqrscp.log"))
        } catch {
            destination.stop()
            throw error
        }
        do {
            try await ClientTestSupport.waitForPort(destinationPort)
            try await ClientTestSupport.waitForPort(archivePort)
        } catch {
            archive.stop()
            destination.stop()
            throw error
        }

        // Three studies, four instances, stored by our client.
        let suffix = UInt32.random(in: 1...UInt32.max)
        var studies: [String: [String]] = [:]
        var dataSets: [String: [UInt8]] = [:]
        var paths: [String] = []
        for (study, count) in [(1, 2), (2, 1), (3, 1)] {
            let studyUID = "2.25.\(suffix).\(study)"
            for instance in 1...count {
                let uid = "\(studyUID).1.\(instance)"
                let file = try ClientTestSupport.writePart10File(
                    in: directory, sopInstanceUID: uid, pixelBytes: pixelBytes, studyInstanceUID: studyUID)
                paths.append(file.path)
                dataSets[uid] = file.dataSet
                studies[studyUID, default: []].append(uid)
            }
        }
        let peers = Peers(directory: directory, output: output, archive: archive, archivePort: archivePort,
                          destination: destination, studies: studies, dataSets: dataSets)
        do {
            let association = try await DICOMClient.connect(
                host: "127.0.0.1", port: archivePort, callingAETitle: "CLIENTTEST", calledAETitle: "QRSCP",
                presentationContexts: try DICOMClient.presentationContexts(forFiles: paths), timeouts: timeouts,
                group: MultiThreadedEventLoopGroup.singleton, logger: logger)
            for path in paths {
                let result = try await association.store(fileAt: path)
                #expect(result.status == .success, "dcmqrscp said \(result.status) \(result.errorComment ?? "")")
            }
            try await association.release()
        } catch {
            peers.stop()
            throw error
        }
        return peers
    }

    func connect(_ peers: Peers) async throws -> DICOMAssociation {
        try await DICOMClient.connect(
            host: "127.0.0.1", port: peers.archivePort, callingAETitle: "CLIENTTEST", calledAETitle: "QRSCP",
            presentationContexts: try DICOMClient.proposals(forQueryRetrieve: [Self.find, Self.move]), timeouts: timeouts,
            group: MultiThreadedEventLoopGroup.singleton, logger: logger)
    }

    /// A study-level identifier in the context's transfer syntax.
    func studyIdentifier(_ context: PresentationContext, studyInstanceUID: String = "") throws -> ByteBuffer {
        let syntax = try #require(TransferSyntax(uid: context.transferSyntax))
        var writer = DataSetWriter(transferSyntax: syntax)
        writer.write(.queryRetrieveLevel, .CS, string: "STUDY")
        writer.write(.studyInstanceUID, .UI, string: studyInstanceUID)
        return writer.buffer
    }

    func studyInstanceUIDs(_ identifiers: [ByteBuffer], _ context: PresentationContext) throws -> [String] {
        let syntax = try #require(TransferSyntax(uid: context.transferSyntax))
        return try identifiers.map { identifier in
            let elements = try DataSetParser.parse(identifier, transferSyntax: syntax)
            let element = try #require(elements.first { $0.tag == .studyInstanceUID })
            let value = String(decoding: element.value.readableBytesView, as: UTF8.self)
            return value.trimmingCharacters(in: CharacterSet(charactersIn: "\0 "))
        }
    }

    @Test func findAtStudyLevelReturnsEachStudy() async throws {
        let peers = try await startPeers()
        defer { peers.stop() }
        let association = try await connect(peers)
        let context = try #require(association.acceptedContext(abstractSyntax: Self.find), "\(peers.logs)")

        let result = try await association.find(sopClassUID: Self.find, identifier: try studyIdentifier(context),
                                                contextID: context.id)
        #expect(result.status == .success, "\(result.status) \(result.errorComment ?? "")")
        #expect(!result.cancelled)
        #expect(Set(try studyInstanceUIDs(result.identifiers, context)) == Set(peers.studies.keys))
        #expect(result.identifiers.count == 3)

        // A key that matches one study.
        let one = try #require(peers.studies.keys.sorted().first)
        let matched = try await association.find(
            sopClassUID: Self.find, identifier: try studyIdentifier(context, studyInstanceUID: one), contextID: context.id)
        #expect(matched.status == .success)
        #expect(try studyInstanceUIDs(matched.identifiers, context) == [one])
        try await association.release()
    }

    @Test func moveOfOneStudyReachesTheDestination() async throws {
        let peers = try await startPeers()
        defer { peers.stop() }
        let association = try await connect(peers)
        let context = try #require(association.acceptedContext(abstractSyntax: Self.move), "\(peers.logs)")
        let (study, instances) = try #require(peers.studies.first { $0.value.count == 2 })

        let seen = NIOLockedValueBox<[RetrieveResponseFields]>([])
        let final = try await association.move(
            sopClassUID: Self.move, identifier: try studyIdentifier(context, studyInstanceUID: study),
            contextID: context.id, destination: "DEST"
        ) { fields in
            seen.withLockedValue { $0.append(fields) }
        }
        #expect(final.status == .success, "\(final.status) \(final.errorComment ?? "")\n\(peers.logs)")
        #expect(final.numberOfCompletedSuboperations == UInt16(instances.count))
        #expect(final.numberOfFailedSuboperations ?? 0 == 0)
        let progress = seen.withLockedValue { $0 }
        #expect(!progress.isEmpty)
        #expect(progress.allSatisfy { $0.status.kind == .pending && $0.messageIDBeingRespondedTo == final.messageIDBeingRespondedTo })
        // Counts only grow.
        let completed = progress.map { Int($0.numberOfCompletedSuboperations ?? 0) }
        #expect(completed == completed.sorted())

        let received = try FileManager.default.contentsOfDirectory(atPath: peers.output.path)
        for uid in instances {
            #expect(received.contains { $0.hasSuffix(uid) }, "storescp wrote \(received)")
        }
        #expect(received.count == instances.count)

        // An unknown destination is the peer's failure, not ours; the association goes on.
        let refused = try await association.move(
            sopClassUID: Self.move, identifier: try studyIdentifier(context, studyInstanceUID: study),
            contextID: context.id, destination: "NOWHERE")
        #expect(refused.status.kind == .failure, "\(refused.status)")
        try await association.release()
    }

    @Test func limitKeepsThatManyAndTheAssociationGoesOn() async throws {
        let peers = try await startPeers()
        defer { peers.stop() }
        let association = try await connect(peers)
        let context = try #require(association.acceptedContext(abstractSyntax: Self.find), "\(peers.logs)")

        let result = try await association.find(sopClassUID: Self.find, identifier: try studyIdentifier(context),
                                                contextID: context.id, limit: 2)
        #expect(result.cancelled)
        #expect(result.identifiers.count == 2)
        // dcmqrscp sends every match at once: its final status is Success, the C-CANCEL arriving
        // after it (ignored by dcmqrscp as late). DICOMClientAcceptorQueryTests sees a Cancel.
        #expect(result.status == .cancel || result.status == .success, "\(result.status)")
        #expect(Set(peers.studies.keys).isSuperset(of: try studyInstanceUIDs(result.identifiers, context)))

        // The association is still usable, and without a limit everything comes.
        let all = try await association.find(sopClassUID: Self.find, identifier: try studyIdentifier(context),
                                             contextID: context.id)
        #expect(all.status == .success, "\(all.status)\n\(peers.logs)")
        #expect(!all.cancelled)
        #expect(Set(try studyInstanceUIDs(all.identifiers, context)) == Set(peers.studies.keys))
        try await association.release()
    }
}
