import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// A failed TLS handshake (PS3.15 Annex B) told in words an IT team can act on: BoringSSL's
/// reason codes ("PEER_DID_NOT_RETURN_A_CERTIFICATE") are in the error's text, nowhere else.
public enum TLSHandshakeFailure {
    /// The plain reason of a handshake failure; nil when `error` is not one.
    public static func reason(for error: any Error) -> String? {
        switch error {
        case NIOSSLError.handshakeFailed(let failure): reason(boringSSL: "\(failure)")
        case let failure as BoringSSLError: reason(boringSSL: "\(failure)")
        case NIOSSLError.unableToValidateCertificate: "the peer's certificate does not name the host"
        case NIOSSLError.noCertificateToValidate: "the peer presented no certificate"
        case let error as NIOSSLExtraError: "handshake failed: \(error)"
        default: nil
        }
    }

    /// BoringSSL's reason codes, from the error stack's text, most telling first.
    static func reason(boringSSL text: String) -> String {
        let reasons: [(String, String)] = [
            ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "no client certificate"),
            ("CERTIFICATE_REQUIRED", "the peer requires a client certificate"),
            ("CERTIFICATE_VERIFY_FAILED", "certificate not signed by the configured CA (or expired)"),
            ("ALERT_UNKNOWN_CA", "the peer does not trust our certificate (unknown CA)"),
            ("ALERT_BAD_CERTIFICATE", "the peer refused our certificate"),
            ("ALERT_CERTIFICATE_EXPIRED", "the peer finds our certificate expired"),
            ("UNSUPPORTED_PROTOCOL", "TLS version refused: TLS 1.2 or later is required"),
            ("ALERT_PROTOCOL_VERSION", "TLS version refused: TLS 1.2 or later is required"),
            ("NO_SHARED_CIPHER", "no cipher suite in common"),
            ("WRONG_VERSION_NUMBER", "not a TLS handshake (a clear association on the TLS port?)"),
            ("HTTP_REQUEST", "not a TLS handshake (an HTTP request)"),
        ]
        return reasons.first { text.contains($0.0) }?.1 ?? "handshake failed: \(text)"
    }
}

/// Right after `NIOSSLServerHandler`: a refused handshake (no client certificate, another
/// CA's, an old TLS version) is logged with the peer and the reason, told to `refused` (the
/// gateway's audit trail) and the connection closed; the association handler never sees it.
final class TLSRefusalHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let logger: Logger
    private let refused: @Sendable (_ peer: String, _ reason: String) -> Void
    private var reported = false
    /// Past the handshake, a TLS error is a broken connection, not a refusal: passed on.
    private var established = false

    init(logger: Logger, refused: @escaping @Sendable (_ peer: String, _ reason: String) -> Void) {
        self.logger = logger
        self.refused = refused
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls { established = true }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A peer that drops TCP without close_notify (or probes the port): the close says enough.
        if let error = error as? NIOSSLError, case .uncleanShutdown = error { return }
        guard !established, let reason = TLSHandshakeFailure.reason(for: error) else {
            context.fireErrorCaught(error)
            return
        }
        if !reported {
            reported = true
            let peer = context.channel.remoteAddress.map { address in
                address.ipAddress.map { "\($0):\(address.port ?? 0)" } ?? "\(address)"
            } ?? "unknown"
            logger.warning("TLS connection refused: \(reason)", metadata: ["peer": "\(peer)", "reason": "\(reason)"])
            refused(peer, reason)
        }
        context.close(promise: nil)
    }
}
