import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Testing

@testable import DICOMNetwork

/// `DICOMServer` with a TLS context and `DICOMClient` over TLS, on a real socket: the
/// association runs when the client presents a certificate of the server's CA; without one,
/// or with another CA's, the handshake is refused, the client is told why and the provider
/// hears the reason.
@Suite(.serialized)
struct DICOMServerTLSTests {
    let logger = Logger(label: "tls-test")
    let timeouts = DICOMClient.Timeouts(connect: .seconds(5), association: .seconds(10), dimse: .seconds(10))

    final class Provider: DICOMServiceProvider, Sendable {
        let refusals = NIOLockedValueBox<[String]>([])
        let echoes = NIOLockedValueBox(0)

        func associationRequested(_ request: AssociateRQ, peer: String) -> AssociationDecision {
            .accept(presentationContexts: request.presentationContexts.map {
                PresentationContextResult(id: $0.id, result: .acceptance, transferSyntax: $0.transferSyntaxes[0])
            }, roleSelections: [])
        }

        func associationEnded(_ association: AssociationContext, reason: AssociationEndReason) {}
        func verify(_ association: AssociationContext) -> DIMSEStatus {
            echoes.withLockedValue { $0 += 1 }
            return .success
        }

        func beginStore(_ request: CStoreRQ, transferSyntax: String, association: AssociationContext) -> any StoreReceiver {
            RefusingStoreReceiver(StoreOutcome(status: .sopClassNotSupported))
        }

        func secureConnectionRefused(peer: String, reason: String) {
            refusals.withLockedValue { $0.append(reason) }
        }
    }

    static func certificate(_ pem: String) throws -> NIOSSLCertificate {
        try NIOSSLCertificate(bytes: Array(pem.utf8), format: .pem)
    }

    static func key(_ pem: String) throws -> NIOSSLPrivateKey {
        try NIOSSLPrivateKey(bytes: Array(pem.utf8), format: .pem)
    }

    /// The server side as `[dicom.tls]` makes it: TLS 1.2+, client certificates required.
    static func serverContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try certificate(TestPKI.serverCertificate))],
            privateKey: .privateKey(try key(TestPKI.serverKey)))
        configuration.minimumTLSVersion = .tlsv12
        configuration.trustRoots = .certificates([try certificate(TestPKI.caCertificate)])
        configuration.certificateVerification = .noHostnameVerification
        return try NIOSSLContext(configuration: configuration)
    }

    static func clientContext(certificate pem: String?, key keyPEM: String?) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.trustRoots = .certificates([try certificate(TestPKI.caCertificate)])
        if let pem, let keyPEM {
            configuration.certificateChain = [.certificate(try certificate(pem))]
            configuration.privateKey = .privateKey(try key(keyPEM))
        }
        return try NIOSSLContext(configuration: configuration)
    }

    func withServer(_ provider: Provider, _ body: (Int) async throws -> Void) async throws {
        let server = DICOMServer(
            configuration: .init(host: "127.0.0.1", port: 0, maximumPDULength: 16384, idleTimeout: .seconds(30),
                                 tls: try Self.serverContext()),
            provider: provider, group: MultiThreadedEventLoopGroup.singleton, threadPool: .singleton, logger: logger)
        let port = try await server.start()
        do {
            try await body(port)
        } catch {
            await server.shutdown(gracePeriod: .zero)
            throw error
        }
        await server.shutdown(gracePeriod: .seconds(5))
    }

    func connect(port: Int, tls: NIOSSLContext) async throws(DICOMNetworkError) -> DICOMAssociation {
        try await DICOMClient.connect(
            host: "127.0.0.1", port: port, callingAETitle: "TLSCLIENT", calledAETitle: "TLSSERVER",
            presentationContexts: [PresentationContextProposal(
                id: 1, abstractSyntax: "1.2.840.10008.1.1", transferSyntaxes: ["1.2.840.10008.1.2.1"])],
            tls: tls, timeouts: timeouts, group: MultiThreadedEventLoopGroup.singleton, logger: logger)
    }

    @Test func echoOverTLSWithAClientCertificate() async throws {
        let provider = Provider()
        try await withServer(provider) { port in
            let association = try await connect(
                port: port, tls: try Self.clientContext(certificate: TestPKI.clientCertificate, key: TestPKI.clientKey))
            #expect(try await association.echo() == .success)
            try await association.release()
        }
        #expect(provider.echoes.withLockedValue { $0 } == 1)
        #expect(provider.refusals.withLockedValue { $0 }.isEmpty)
    }

    @Test(arguments: [
        (nil, nil, "no client certificate"),
        (TestPKI.otherCAClientCertificate, TestPKI.otherCAClientKey, "certificate not signed by the configured CA"),
    ] as [(String?, String?, String)])
    func refusedCertificatesAreToldWhy(certificate: String?, key: String?, reason: String) async throws {
        let provider = Provider()
        let tls = try Self.clientContext(certificate: certificate, key: key)
        try await withServer(provider) { port in
            do {
                let association = try await connect(port: port, tls: tls)
                await association.abort()
                Issue.record("the association was accepted")
            } catch let error as DICOMNetworkError {
                #expect(error.code == .tlsHandshakeFailed, "\(error)")
            }
        }
        let refusals = provider.refusals.withLockedValue { $0 }
        #expect(refusals.count == 1 && refusals[0].hasPrefix(reason), "\(refusals)")
        #expect(provider.echoes.withLockedValue { $0 } == 0)
    }

    @Test func reasonsInPlainWords() {
        #expect(TLSHandshakeFailure.reason(boringSSL: "error:1000041d:SSL routines:OPENSSL_internal:TLSV1_ALERT_UNKNOWN_CA")
                == "the peer does not trust our certificate (unknown CA)")
        #expect(TLSHandshakeFailure.reason(boringSSL: "SSL routines:OPENSSL_internal:UNSUPPORTED_PROTOCOL")
                == "TLS version refused: TLS 1.2 or later is required")
        #expect(TLSHandshakeFailure.reason(boringSSL: "something new") == "handshake failed: something new")
        #expect(TLSHandshakeFailure.reason(for: ChannelError.ioOnClosedChannel) == nil)
    }
}
