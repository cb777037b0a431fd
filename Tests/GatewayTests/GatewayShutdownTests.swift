import DICOMCore
@testable import DICOMNetwork
import Foundation
import Logging
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Spool
import Testing
@testable import Gateway

/// The gateway's services in one `ServiceGroup`, as passerelled runs them, stopped gracefully:
/// the shutdown path on a real port, in process.
@Suite(.serialized) struct GatewayShutdownTests {
    let root = NSTemporaryDirectory() + "gateway-shutdown-" + UUID().uuidString
    let logger = Logger(label: "gateway-shutdown-test")
    let timeouts = DICOMClient.Timeouts(connect: .seconds(5), association: .seconds(10), dimse: .seconds(10))

    func configuration() -> GatewayConfiguration {
        var configuration = GatewayConfiguration.embeddedDefault
        configuration.dicom.bind = "127.0.0.1"
        configuration.dicom.port = 0
        configuration.spool.path = root + "/spool"
        configuration.spool.minFree = .bytes(0)
        configuration.spool.segmentSize = 1 << 20
        configuration.status.socket = root + "/status.sock"
        return configuration
    }

    func connect(_ port: Int, tls: NIOSSLContext? = nil) async throws -> DICOMAssociation {
        try await DICOMClient.connect(
            host: "127.0.0.1", port: port, callingAETitle: "SHUTDOWNTEST", calledAETitle: "PASSERELLE",
            presentationContexts: [PresentationContextProposal(id: 1, abstractSyntax: UIDRegistry.verificationSOPClassUID,
                                                               transferSyntaxes: [TransferSyntax.implicitVRLittleEndian.uid])],
            tls: tls, timeouts: timeouts, group: MultiThreadedEventLoopGroup.singleton, logger: logger)
    }

    /// Runs the gateway's services, hands the bound port to `body`, then waits for the group.
    /// `stopping` yields once the gateway begins to stop (systemd's STOPPING=1).
    func withGateway(gracePeriod: Duration, configuration: GatewayConfiguration? = nil,
                     _ body: @Sendable (ServiceGroup, Int, AsyncStream<Void>) async throws -> Void) async throws {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (stopping, stop) = AsyncStream.makeStream(of: Void.self)
        let gateway = try GatewayRuntime(configuration: configuration ?? self.configuration(), logger: logger,
                                         shutdownGracePeriod: gracePeriod,
                                         onStopping: { stop.yield() })
        let group = ServiceGroup(services: gateway.services, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let port = try #require(await gateway.waitUntilListening())
            try await body(group, port, stopping)
            try await tasks.waitForAll()  // the group ended on its own, without error
        }
        // Everything was closed: the spool opens again, the status socket is gone.
        #expect(!FileManager.default.fileExists(atPath: root + "/status.sock"))
        let reopened = try Spool(root: root + "/spool", minimumFree: .bytes(0), segmentSize: 1 << 20)
        #expect(try reopened.database.counts().instances == 0)
    }

    @Test func runningAssociationsFinishWithinTheGracePeriod() async throws {
        try await withGateway(gracePeriod: .seconds(60)) { group, port, stopping in
            let association = try await connect(port)
            #expect(try await association.echo() == .success)
            #expect(FileManager.default.fileExists(atPath: root + "/status.sock"))
            await group.triggerGracefulShutdown()
            for await _ in stopping { break }
            // The open association goes on while the gateway stops, and its release ends the stop.
            #expect(try await association.echo() == .success)
            try await association.release()
            #expect(try await association.ended.get() == .released)
        }
    }

    @Test func associationsStillOpenAfterTheGracePeriodAreAborted() async throws {
        try await withGateway(gracePeriod: .milliseconds(200)) { group, port, _ in
            let association = try await connect(port)
            #expect(try await association.echo() == .success)
            await group.triggerGracefulShutdown()
            // The association is aborted by the gateway (A-ABORT), which the client sees as it ends.
            let ended = try await association.ended.get()
            #expect(ended.code == .aborted)
            #expect(ended.abort?.source == .serviceUser)
        }
    }

    /// `[dicom] port = 0` and `[dicom.tls]`: READY with the TLS port, an association over TLS
    /// runs, and the stop aborts it there as on the clear port.
    @Test func theTLSListenerAloneServesAndStops() async throws {
        let pem = try TestPEM.files()
        var settings = configuration()
        settings.dicom.clearListener = false
        settings.dicom.tls = DICOMTLSSettings(port: 0, listener: ListenerTLS(certificateFile: pem.certificate,
                                                                          privateKeyFile: pem.key))
        var client = TLSConfiguration.makeClientConfiguration()
        client.trustRoots = .file(pem.certificate)
        client.certificateVerification = .noHostnameVerification  // the fixture names no host
        let tls = try NIOSSLContext(configuration: client)
        try await withGateway(gracePeriod: .milliseconds(200), configuration: settings) { group, port, _ in
            await #expect(throws: DICOMNetworkError.self) { try await connect(port) }  // clear DICOM: refused
            let association = try await connect(port, tls: tls)
            #expect(try await association.echo() == .success)
            await group.triggerGracefulShutdown()
            #expect(try await association.ended.get().code == .aborted)
        }
    }
}
