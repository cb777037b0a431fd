import Foundation

/// `[dicom.tls]`: a DICOM TLS listener (PS3.15 Annex B, BCP 195: TLS 1.2 and later) beside the
/// clear one, same AE titles and policy. Its certificate and key are also the client
/// certificate of the associations Passerelle opens to `[[ae]] tls = true` peers.
public struct DICOMTLSSettings: Sendable, Equatable {
    /// 2762: IANA's dicom-tls.
    public var port = 2762
    /// Unlike `[hl7.tls]`, a client certificate is required unless said otherwise: a
    /// modality's certificate is the only proof of who stores.
    public var listener: ListenerTLS

    public init(port: Int = 2762, listener: ListenerTLS) {
        self.port = port
        self.listener = listener
    }
}

/// TLS to an `[[ae]]` (`tls = true`): the CA its certificate must chain to (`[[ae]] ca`, else
/// `[dicom.tls] ca`) and the certificate we present (`[dicom.tls]`'s, when there is one).
public struct PeerTLS: Sendable, Equatable {
    public var caFile: String
    public var certificateFile: String?
    public var privateKeyFile: String?

    public init(caFile: String, certificateFile: String? = nil, privateKeyFile: String? = nil) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.privateKeyFile = privateKeyFile
    }
}

extension Settings {
    /// `[dicom] port = 0` (no clear listener) and `[dicom.tls]`; after the `[dicom]` keys.
    func parseDICOMTLS(into configuration: inout GatewayConfiguration) throws(ConfigurationError) {
        if let listener = try parseListenerTLS(prefix: "dicom.tls", requireClientCertificateByDefault: true) {
            var tls = DICOMTLSSettings(listener: listener)
            if let port = self["dicom.tls.port"]?.value.int {
                guard (1...65_535).contains(port) else {
                    throw error("dicom.tls.port", "\(port) is not a TCP port", hint: "1 to 65535; 2762 is DICOM TLS's")
                }
                tls.port = port
            }
            if configuration.dicom.clearListener && tls.port == configuration.dicom.port {
                throw error("dicom.tls.port", "\(tls.port) is the clear port too",
                            hint: "the TLS listener needs a port of its own (2762 is DICOM TLS's), or [dicom] port = 0")
            }
            configuration.dicom.tls = tls
        }
        if !configuration.dicom.clearListener && configuration.dicom.tls == nil {
            throw error("dicom.port", "0 turns the clear port off, and there is no [dicom.tls] to listen on",
                        hint: "add [dicom.tls] (certificate, key, ca), or give the clear port: port = 11112")
        }
    }

    /// `[[ae]] tls` and `ca` of the entry at `prefix` ("ae.0"), after `[dicom.tls]`.
    func parsePeerTLS(_ prefix: String, dicom: GatewayConfiguration.DICOM) throws(ConfigurationError) -> PeerTLS? {
        let ca = self["\(prefix).ca"]?.value.string
        guard self["\(prefix).tls"]?.value.bool == true else {
            if ca != nil {
                throw error("\(prefix).ca", "only applies with tls = true", hint: "add tls = true, or remove ca")
            }
            return nil
        }
        guard let caFile = ca ?? dicom.tls?.listener.caFile else {
            throw error("\(prefix).tls", "needs a CA to check the peer's certificate",
                        hint: "ca = \"/etc/passerelle/tls/pacs-ca.pem\" in this [[ae]], or ca in [dicom.tls]")
        }
        if ca != nil, !FileManager.default.isReadableFile(atPath: caFile) {
            throw error("\(prefix).ca", "cannot read \(caFile)", hint: "check the path and that the passerelle user can read it")
        }
        return PeerTLS(caFile: caFile, certificateFile: dicom.tls?.listener.certificateFile,
                       privateKeyFile: dicom.tls?.listener.privateKeyFile)
    }
}
