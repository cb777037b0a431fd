import DICOMCore
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import DICOMNetwork

/// The requestor against our own acceptor: `.build/debug/passerelled` (built by `swift build`).
@Suite(.serialized)
struct DICOMClientGatewayTests {
    let logger = Logger(label: "client-test")
    let timeouts = DICOMClient.Timeouts(connect: .seconds(5), association: .seconds(10), dimse: .seconds(30))

    /// Starts passerelled on a free port with its spool in `directory`.
    func startGateway(in directory: URL) async throws -> (PeerProcess, Int, spool: URL) {
        let port = try await ClientTestSupport.freePort()
        let spool = directory.appendingPathComponent("spool")
        let config = directory.appendingPathComponent("passerelle.toml")
        try """
            [dicom]
            ae_title = "PASSERELLE"
            port = \(port)
            bind = "127.0.0.1"
            max_pdu_length = 262144
            idle_timeout = "60s"

            [spool]
            path = "\(spool.path)"
            min_free = "1%"
            segment_size = "4MiB"

            """.write(to: config, atomically: true, encoding: .utf8)
        let peer = try PeerProcess(
            executable: ClientTestSupport.passerelled, arguments: ["--config", config.path],
            log: directory.appendingPathComponent("passerelled.log"))
        do {
            try await ClientTestSupport.waitForPort(port, timeout: .seconds(30))
        } catch {
            peer.stop()
            throw ClientTestSupport.TestFailure("\(error)\n\(peer.logText)")
        }
        return (peer, port, spool)
    }

    @Test func echoStoreReleaseThenSpoolListsTheInstance() async throws {
        let directory = try ClientTestSupport.temporaryDirectory("gateway-store")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (peer, port, spool) = try await startGateway(in: directory)
        defer { peer.stop() }

        let uid = "2.25.5151\(UInt32.random(in: 1...UInt32.max))"
        // 600 KB: a few 256 KB PDUs.
        let file = try ClientTestSupport.writePart10File(in: directory, sopInstanceUID: uid, pixelBytes: 600_000)
        let association = try await DICOMClient.connect(
            host: "127.0.0.1", port: port, callingAETitle: "CLIENTTEST", calledAETitle: "PASSERELLE",
            presentationContexts: try DICOMClient.presentationContexts(forFiles: [file.path]), timeouts: timeouts,
            group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        #expect(association.peerMaximumPDULength == 262144)
        #expect(try await association.echo() == .success)
        let result = try await association.store(fileAt: file.path)
        #expect(result.status == .success, "passerelled said \(result.status) \(result.errorComment ?? "")\n\(peer.logText)")
        try await association.release()

        let listing = try runCommand(ClientTestSupport.passerellectl, ["spool", "list", "--json", "--spool", spool.path])
        #expect(listing.status == 0)
        let json = try JSONSerialization.jsonObject(with: Data(listing.output.utf8)) as? [[String: Any]]
        let entries = try #require(json, "spool list printed \(listing.output)")
        let entry = try #require(entries.first { $0["sop_instance_uid"] as? String == uid },
                                 "instance \(uid) not in \(listing.output)")
        #expect(entry["sop_class_uid"] as? String == ClientTestSupport.secondaryCaptureImageStorage)
        #expect(entry["transfer_syntax_uid"] as? String == TransferSyntax.explicitVRLittleEndian.uid)
        #expect(entry["calling_ae_title"] as? String == "CLIENTTEST")
        // The spooled bytes (a range of a journal segment) hold the data set as sent.
        let path = try #require(entry["path"] as? String)
        let offset = try #require(entry["offset"] as? Int), size = try #require(entry["size"] as? Int)
        #expect(try ClientTestSupport.dataSet(ofFile: path, offset: offset, length: size) == file.dataSet)
    }

    /// 24 MB through 256 KB PDUs: streamed from the file under backpressure.
    @Test func largeStoreStreams() async throws {
        let directory = try ClientTestSupport.temporaryDirectory("gateway-large")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (peer, port, _) = try await startGateway(in: directory)
        defer { peer.stop() }

        let file = try ClientTestSupport.writePart10File(in: directory, sopInstanceUID: "2.25.6161", pixelBytes: 24_000_000)
        let association = try await DICOMClient.connect(
            host: "127.0.0.1", port: port, callingAETitle: "CLIENTTEST", calledAETitle: "PASSERELLE",
            presentationContexts: try DICOMClient.presentationContexts(forFiles: [file.path]), timeouts: timeouts,
            group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        let start = ContinuousClock.now
        let result = try await association.store(fileAt: file.path)
        let elapsed = ContinuousClock.now - start
        #expect(result.status == .success, "\(result.status) \(result.errorComment ?? "")\n\(peer.logText)")
        #expect(result.dataSetLength == file.dataSet.count)
        try await association.release()
        print("stored \(file.dataSet.count) bytes in \(elapsed)")
    }

    @Test func wrongCalledAETitleIsRejectedWithReason7() async throws {
        let directory = try ClientTestSupport.temporaryDirectory("gateway-reject")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (peer, port, _) = try await startGateway(in: directory)
        defer { peer.stop() }

        let error = await #expect(throws: DICOMNetworkError.self) {
            _ = try await DICOMClient.connect(
                host: "127.0.0.1", port: port, callingAETitle: "CLIENTTEST", calledAETitle: "NOT_IT",
                presentationContexts: try DICOMClient.presentationContexts(for: []), timeouts: timeouts,
                group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        }
        #expect(error?.code == .associationRejected)
        #expect(error?.rejection == AssociateRJ(result: .rejectedPermanent, reason: .serviceUser(.calledAETitleNotRecognized)))
        #expect(error?.rejection?.reason.reasonWireValue == 7)
        #expect(error?.description.contains("rejected permanently by the called AE: called AE title not recognized") == true,
                "\(String(describing: error))")
    }
}
