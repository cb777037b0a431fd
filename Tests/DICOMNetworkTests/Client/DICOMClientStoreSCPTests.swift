import DICOMCore
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import DICOMNetwork

/// The requestor against a real peer: DCMTK's storescp.
@Suite(.serialized)
struct DICOMClientStoreSCPTests {
    let logger = Logger(label: "client-test")
    let timeouts = DICOMClient.Timeouts(connect: .seconds(5), association: .seconds(10), dimse: .seconds(20))

    /// Starts storescp writing into `output`, waits until it listens.
    func startStoreSCP(output: URL, extraArguments: [String] = []) async throws -> (PeerProcess, Int) {
        let port = try await ClientTestSupport.freePort()
        let peer = try PeerProcess(
            executable: ClientTestSupport.storescp,
            arguments: ["-aet", "STORESCP", "-od", output.path, "+B"] + extraArguments + ["\(port)"],
            environment: ["TCP_NODELAY": "1"],
            log: output.deletingLastPathComponent().appendingPathComponent("storescp-\(port).log"))
        do {
            try await ClientTestSupport.waitForPort(port)
        } catch {
            peer.stop()
            throw error
        }
        return (peer, port)
    }

    @Test func echoSucceeds() async throws {
        let directory = try ClientTestSupport.temporaryDirectory("storescp-echo")
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let (peer, port) = try await startStoreSCP(output: output)
        defer { peer.stop(grace: .seconds(1)) }

        let association = try await DICOMClient.connect(
            host: "127.0.0.1", port: port, callingAETitle: "CLIENTTEST", calledAETitle: "STORESCP",
            presentationContexts: try DICOMClient.presentationContexts(for: []), timeouts: timeouts,
            group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        #expect(association.acceptedContexts[1]?.abstractSyntax == UIDRegistry.verificationSOPClassUID)
        #expect(try await association.echo() == .success)
        #expect(try await association.echo() == .success)
        try await association.release()
        // After release every operation fails cleanly.
        await #expect(throws: DICOMNetworkError.self) { try await association.echo() }
    }

    @Test func storeArrivesByteIdentical() async throws {
        let directory = try ClientTestSupport.temporaryDirectory("storescp-store")
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let (peer, port) = try await startStoreSCP(output: output)
        defer { peer.stop(grace: .seconds(1)) }

        let uid = "2.25.4242\(UInt32.random(in: 1...UInt32.max))"
        // 300 KB of pixel data: ~19 fragments at storescp's 16 KB maximum PDU length.
        let file = try ClientTestSupport.writePart10File(in: directory, sopInstanceUID: uid)
        let contexts = try DICOMClient.presentationContexts(forFiles: [file.path])
        let association = try await DICOMClient.connect(
            host: "127.0.0.1", port: port, callingAETitle: "CLIENTTEST", calledAETitle: "STORESCP",
            presentationContexts: contexts, timeouts: timeouts,
            group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        let result = try await association.store(fileAt: file.path)
        #expect(result.status == .success, "storescp said \(result.status) \(result.errorComment ?? "")")
        #expect(result.sopInstanceUID == uid)
        #expect(result.dataSetLength == file.dataSet.count)
        // A second store on the same association uses the next message ID.
        let second = try await association.store(fileAt: file.path)
        #expect(second.status == .success)
        try await association.release()

        let received = try FileManager.default.contentsOfDirectory(atPath: output.path)
        let name = try #require(received.first { $0.hasSuffix(uid) }, "storescp wrote \(received)\n\(peer.logText)")
        let bytes = try ClientTestSupport.dataSet(ofFile: output.appendingPathComponent(name).path)
        #expect(bytes.count == file.dataSet.count)
        #expect(bytes == file.dataSet)
    }

    /// 8 MB through storescp's 16 KB PDUs (~500 fragments).
    @Test func largeStoreThroughSmallPDUs() async throws {
        let directory = try ClientTestSupport.temporaryDirectory("storescp-large")
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let (peer, port) = try await startStoreSCP(output: output)
        defer { peer.stop(grace: .seconds(1)) }

        let file = try ClientTestSupport.writePart10File(in: directory, sopInstanceUID: "2.25.8181", pixelBytes: 8_000_000)
        let association = try await DICOMClient.connect(
            host: "127.0.0.1", port: port, callingAETitle: "CLIENTTEST", calledAETitle: "STORESCP",
            presentationContexts: try DICOMClient.presentationContexts(forFiles: [file.path]), timeouts: timeouts,
            group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        #expect(association.peerMaximumPDULength == 16384)
        let start = ContinuousClock.now
        let result = try await association.store(fileAt: file.path)
        let elapsed = ContinuousClock.now - start
        #expect(result.status == .success)
        try await association.release()
        print("stored \(file.dataSet.count) bytes in 16 KB PDUs in \(elapsed)")
        let received = try FileManager.default.contentsOfDirectory(atPath: output.path)
        let name = try #require(received.first { $0.hasSuffix("2.25.8181") })
        #expect(try ClientTestSupport.dataSet(ofFile: output.appendingPathComponent(name).path) == file.dataSet)
    }

    @Test(arguments: ["--abort-during", "--abort-after"])
    func peerAbortDuringStore(option: String) async throws {
        let directory = try ClientTestSupport.temporaryDirectory("storescp-abort")
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let (peer, port) = try await startStoreSCP(output: output, extraArguments: [option])
        defer { peer.stop(grace: .seconds(1)) }

        let file = try ClientTestSupport.writePart10File(in: directory, sopInstanceUID: "2.25.9191", pixelBytes: 2_000_000)
        let association = try await DICOMClient.connect(
            host: "127.0.0.1", port: port, callingAETitle: "CLIENTTEST", calledAETitle: "STORESCP",
            presentationContexts: try DICOMClient.presentationContexts(forFiles: [file.path]), timeouts: timeouts,
            group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        let error = await #expect(throws: DICOMNetworkError.self) { _ = try await association.store(fileAt: file.path) }
        #expect(error?.code == .aborted || error?.code == .connectionClosed, "\(String(describing: error))")
    }

    @Test func refusedAssociationCarriesTheRejection() async throws {
        let directory = try ClientTestSupport.temporaryDirectory("storescp-refuse")
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let (peer, port) = try await startStoreSCP(output: output, extraArguments: ["--refuse"])
        defer { peer.stop(grace: .seconds(1)) }

        let error = await #expect(throws: DICOMNetworkError.self) {
            _ = try await DICOMClient.connect(
                host: "127.0.0.1", port: port, callingAETitle: "CLIENTTEST", calledAETitle: "STORESCP",
                presentationContexts: try DICOMClient.presentationContexts(for: []), timeouts: timeouts,
                group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        }
        #expect(error?.code == .associationRejected)
        let rejection = try #require(error?.rejection)
        #expect(rejection.result == .rejectedPermanent)
        #expect(error?.description.contains("rejected permanently by the called AE") == true, "\(String(describing: error))")
    }

    @Test func connectionRefusedIsConnectionFailed() async throws {
        let port = try await ClientTestSupport.freePort()
        let error = await #expect(throws: DICOMNetworkError.self) {
            _ = try await DICOMClient.connect(
                host: "127.0.0.1", port: port, callingAETitle: "CLIENTTEST", calledAETitle: "NOBODY",
                presentationContexts: try DICOMClient.presentationContexts(for: []), timeouts: timeouts,
                group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        }
        #expect(error?.code == .connectionFailed)
    }

    @Test func storeWithoutAFittingContextSaysWhich() async throws {
        let directory = try ClientTestSupport.temporaryDirectory("storescp-nocontext")
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let (peer, port) = try await startStoreSCP(output: output)
        defer { peer.stop(grace: .seconds(1)) }

        let file = try ClientTestSupport.writePart10File(in: directory, sopInstanceUID: "2.25.77", pixelBytes: 1000)
        // Propose Verification only: the file's SOP class has no context.
        let association = try await DICOMClient.connect(
            host: "127.0.0.1", port: port, callingAETitle: "CLIENTTEST", calledAETitle: "STORESCP",
            presentationContexts: try DICOMClient.presentationContexts(for: []), timeouts: timeouts,
            group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        let error = await #expect(throws: DICOMNetworkError.self) { _ = try await association.store(fileAt: file.path) }
        #expect(error?.code == .noAcceptedPresentationContext)
        #expect(error?.message.contains("no accepted presentation context for Secondary Capture Image Storage "
                                        + "(1.2.840.10008.5.1.4.1.1.7) in Explicit VR Little Endian") == true,
                "\(String(describing: error))")
        // The association is still usable.
        #expect(try await association.echo() == .success)
        try await association.release()
    }
}
