import NIOCore
import NIOSSL
import Testing

@testable import HL7

/// MLLP over TLS (IHE ITI TF-2 "MLLP over TLS"): the listener with a TLS context.
@Suite struct MLLPServerTLSTests {
    /// A self-signed P-256 certificate for localhost/127.0.0.1 and its key, made for these tests only.
    static let certificate = """
        -----BEGIN CERTIFICATE-----
        MIIBnDCCAUGgAwIBAgIUMn+l+D/AMj9hc4U29OIyzckbgJEwCgYIKoZIzj0EAwIw
        FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwNzA4MjkxN1oYDzIxMjYxMTEz
        MDgyOTE3WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
        PQMBBwNCAASoNsKBLI+OEe/5oLLvl+rLF2nIW7IjlUEOLHkOkrnQ8UaqnMFzxcrW
        RlmpqqlvanBqRVjJlO4fjDLIavkBl+y6o28wbTAdBgNVHQ4EFgQUkgsWCShixklK
        cNtXA8zD23ienEowHwYDVR0jBBgwFoAUkgsWCShixklKcNtXA8zD23ienEowDwYD
        VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI
        zj0EAwIDSQAwRgIhAKQiZ9OImb58zilZOvM9anKmOHGWZP1NmZKD+yt9q9LGAiEA
        vTa2VDWEpEHxgMVPJfI/Qb+3zle7vTO1qS6C4lK8M8s=
        -----END CERTIFICATE-----
        """
    static let privateKey = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgs47iJblhhpedPy9d
        anfiiBlYp/753fk4sULsCKwoBEWhRANCAASoNsKBLI+OEe/5oLLvl+rLF2nIW7Ij
        lUEOLHkOkrnQ8UaqnMFzxcrWRlmpqqlvanBqRVjJlO4fjDLIavkBl+y6
        -----END PRIVATE KEY-----
        """

    static func contexts() throws -> (server: NIOSSLContext, client: NIOSSLContext) {
        let certificate = try NIOSSLCertificate(bytes: Array(Self.certificate.utf8), format: .pem)
        let key = try NIOSSLPrivateKey(bytes: Array(Self.privateKey.utf8), format: .pem)
        let server = try NIOSSLContext(configuration: .makeServerConfiguration(
            certificateChain: [.certificate(certificate)], privateKey: .privateKey(key)))
        var client = TLSConfiguration.makeClientConfiguration()
        client.trustRoots = .certificates([certificate])
        return (server, try NIOSSLContext(configuration: client))
    }

    @Test func framesAndACKsOverTLS() async throws {
        let (serverContext, clientContext) = try Self.contexts()
        let application = MLLPServerTests.Application()
        let (server, port) = try await MLLPServerTests.startServer(application, tls: serverContext)
        let exchange = try await MLLPServerTests.exchange(
            port: port, send: MLLP.frame(HL7Fixtures.adtA08) + MLLP.frame(HL7Fixtures.oruR01), frames: 2,
            tls: clientContext)
        let acks = try exchange.frames.map { try HL7Message.parse($0) }
        #expect(acks.map { $0.segment(named: "MSA")?.field(2).value() } == ["ADT00001", "ORU00002"])
        await server.shutdown(gracePeriod: .seconds(1))
    }

    @Test func aPlainPeerOnTheTLSPortIsAnErrorAndClosed() async throws {
        let (serverContext, _) = try Self.contexts()
        let application = MLLPServerTests.Application()
        let (server, port) = try await MLLPServerTests.startServer(application, tls: serverContext)
        let exchange = try await MLLPServerTests.exchange(port: port, send: MLLP.frame(HL7Fixtures.adtA08), frames: 1)
        #expect(exchange.closed && exchange.frames.isEmpty)
        try await MLLPServerTests.eventually { application.events(1).last == .closed }
        let events = application.events(1)
        #expect(events.first == .opened && events.last == .closed)
        #expect(events.contains { if case .error = $0 { true } else { false } })
        #expect(application.received.isEmpty)
        await server.shutdown(gracePeriod: .seconds(1))
    }
}
