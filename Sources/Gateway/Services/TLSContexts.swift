import DICOMNetwork
import NIOSSL

/// BCP 195 (RFC 9325 §4.2) for TLS 1.2: forward secrecy and AEAD only, where NIOSSL's default
/// also offers RSA key exchange and CBC. BoringSSL has no DHE; TLS 1.3 suites are all AEAD.
let bcp195CipherSuites = "ECDHE+AESGCM:ECDHE+CHACHA20"

extension ListenerTLS {
    /// A listener's TLS context (`[hl7.tls]`, `[dicom.tls]`; BCP 195: TLS 1.2 and later).
    func makeServerContext() throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { NIOSSLCertificateSource.certificate($0) }
        // Read as PEM whatever its extension (NIOSSL takes a ".key" file for DER).
        let key = try NIOSSLPrivateKey(file: privateKeyFile, format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.cipherSuites = bcp195CipherSuites
        // NIOSSL has no "ask but do not require": a client certificate is checked only when
        // required (against `ca`; a client's host name means nothing to a server).
        if requireClientCertificate, let caFile {
            configuration.trustRoots = .file(caFile)
            configuration.certificateVerification = .noHostnameVerification
        }
        return try NIOSSLContext(configuration: configuration)
    }
}

extension PeerTLS {
    /// The client context for an `[[ae]] tls = true` (TLS 1.2 and later): the peer's
    /// certificate must chain to `caFile` and name its host; ours is presented when set.
    func makeClientContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.cipherSuites = bcp195CipherSuites
        configuration.trustRoots = .file(caFile)
        configuration.certificateVerification = .fullVerification
        if let certificateFile, let privateKeyFile {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: privateKeyFile, format: .pem))
        }
        return try NIOSSLContext(configuration: configuration)
    }
}

extension KnownAE {
    /// The TLS context of associations to this AE; nil when it is spoken to in clear. Built
    /// per association: certificates renewed on disk are taken without a restart.
    func clientContext() throws(DICOMNetworkError) -> NIOSSLContext? {
        guard let tls else { return nil }
        do {
            return try tls.makeClientContext()
        } catch {
            throw DICOMNetworkError(code: .tlsHandshakeFailed, message: "cannot set up TLS to \(title): \(error)")
        }
    }
}
