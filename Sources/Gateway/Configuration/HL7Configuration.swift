import Foundation

/// `[hl7]`: the MLLP listener for the site's RIS and PAS (docs/hl7.md). Absent: no listener.
public struct HL7Settings: Sendable, Equatable {
    public var port = 2575
    public var bind = "0.0.0.0"
    /// A larger frame is answered AR and dropped (a PDF report in base64 is ~1.4× the PDF).
    public var maxMessageSize = 10 << 20
    /// A connection silent this long is closed (senders reconnect; a frame without end block ends here).
    public var idleTimeout: Duration = .seconds(900)
    /// MSH-3 of our ACKs when the message names no receiving application.
    public var application = "PASSERELLE"
    /// MSH-4 of our ACKs when the message names no receiving facility (default: `[site] emitter`).
    public var facility: String?
    /// Who may send: `APP` (any facility) or `APP^FACILITY` (MSH-3 / MSH-4). Empty: anyone (warned at start).
    public var allowedSenders: [HL7SenderPattern] = []
    /// Peer addresses or networks a connection must come from. Empty: any.
    public var allowedHosts: [AddressRange] = []
    /// TLS on the listener.
    public var tls: ListenerTLS?
    /// Where an ORU^R01 carries the accession number of its study, when it has no ZDS-1
    /// (Study Instance UID): OBR-3 (filler order number, the default) or OBR-18.
    public var accessionField = 3
    /// How long a report may wait for its study before it is given up (`failed`).
    public var reportWait: Duration = .seconds(7 * 86_400)
    /// Messages done with (applied, failed, refused) are deleted this long after their
    /// reception: the window in which a resent control ID is recognized.
    public var retention: Duration = .seconds(90 * 86_400)
}

/// One `allowed_senders` entry.
public struct HL7SenderPattern: Sendable, Equatable, CustomStringConvertible {
    public var application: String
    /// nil: any facility.
    public var facility: String?

    public init?(_ text: String) {
        let parts = text.split(separator: "^", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard (1...2).contains(parts.count), !parts[0].isEmpty else { return nil }
        application = parts[0]
        facility = parts.count == 2 ? parts[1] : nil
        if facility?.isEmpty == true { return nil }
    }

    public func matches(application: String, facility: String) -> Bool {
        self.application == application && (self.facility == nil || self.facility == facility)
    }

    public var description: String { facility.map { "\(application)^\($0)" } ?? application }
}

/// A listener's TLS settings (`[hl7.tls]`): its certificate and key, and the CA that signs
/// the clients' certificates when they must present one.
public struct ListenerTLS: Sendable, Equatable {
    public var certificateFile: String
    public var privateKeyFile: String
    public var caFile: String?
    public var requireClientCertificate = false
}

extension Settings {
    func parseHL7(into configuration: inout GatewayConfiguration) throws(ConfigurationError) {
        guard tables.contains("hl7") else { return }
        var hl7 = HL7Settings()
        if let port = self["hl7.port"]?.value.int {
            guard (1...65_535).contains(port) else {
                throw error("hl7.port", "\(port) is not a TCP port", hint: "1 to 65535; 2575 is HL7's")
            }
            hl7.port = port
        }
        if let bind = self["hl7.bind"]?.value.string { hl7.bind = bind }
        if let text = self["hl7.max_message_size"]?.value.string, let size = ConfigurationValues.size(text) {
            guard size >= 4096, size <= 256 << 20 else {
                throw error("hl7.max_message_size", "\(text) is out of range", hint: "4KiB to 256MiB")
            }
            hl7.maxMessageSize = Int(size)
        }
        if let text = self["hl7.idle_timeout"]?.value.string, let duration = ConfigurationValues.duration(text) {
            guard duration >= .seconds(1) else { throw error("hl7.idle_timeout", "\(text) is too short", hint: "at least 1s") }
            hl7.idleTimeout = duration
        }
        if let application = self["hl7.application"]?.value.string {
            guard !application.isEmpty else { throw error("hl7.application", "is empty", hint: "for example PASSERELLE") }
            hl7.application = application
        }
        hl7.facility = self["hl7.facility"]?.value.string ?? configuration.site.emitter
        for text in self["hl7.allowed_senders"]?.value.array?.compactMap(\.string) ?? [] {
            guard let pattern = HL7SenderPattern(text) else {
                throw error("hl7.allowed_senders", "cannot read \"\(text)\"",
                            hint: "write the sending application (MSH-3), or APPLICATION^FACILITY (MSH-3^MSH-4)")
            }
            hl7.allowedSenders.append(pattern)
        }
        for text in self["hl7.allowed_hosts"]?.value.array?.compactMap(\.string) ?? [] {
            guard let range = AddressRange(text) else {
                throw error("hl7.allowed_hosts", "cannot read \"\(text)\"",
                            hint: "an address or a network: \"10.1.2.3\", \"10.1.2.0/24\", \"::1\"")
            }
            hl7.allowedHosts.append(range)
        }
        if let field = self["hl7.accession_number"]?.value.string {
            switch field.uppercased() {
            case "OBR-3": hl7.accessionField = 3
            case "OBR-18": hl7.accessionField = 18
            default: throw error("hl7.accession_number", "\"\(field)\" is not OBR-3 nor OBR-18", hint: "\"OBR-3\" (filler order number) or \"OBR-18\"")
            }
        }
        if let text = self["hl7.report_wait"]?.value.string, let duration = ConfigurationValues.duration(text) {
            hl7.reportWait = duration
        }
        if let text = self["hl7.retention"]?.value.string, let duration = ConfigurationValues.duration(text) {
            guard duration >= .seconds(86_400) else {
                throw error("hl7.retention", "\(text) is too short", hint: "at least 1d: senders resend for hours")
            }
            hl7.retention = duration
        }
        hl7.tls = try parseListenerTLS(prefix: "hl7.tls")
        configuration.hl7 = hl7
    }

    /// `[PREFIX]`: certificate and key, `ca`, `require_client_certificate` (default
    /// `requireClientCertificateByDefault`: false for HL7, true for DICOM).
    func parseListenerTLS(prefix: String, requireClientCertificateByDefault: Bool = false) throws(ConfigurationError) -> ListenerTLS? {
        guard tables.contains(prefix) else { return nil }
        guard let certificate = self["\(prefix).certificate"]?.value.string,
              let key = self["\(prefix).key"]?.value.string else {
            let present = self["\(prefix).certificate"] != nil ? "\(prefix).certificate" : names(under: prefix).first.map { "\(prefix).\($0)" } ?? prefix
            throw error(present, "[\(prefix)] needs both certificate and key", hint: "certificate = \"/etc/passerelle/tls/hl7.pem\", key = \"…/hl7.key\"")
        }
        var tls = ListenerTLS(certificateFile: certificate, privateKeyFile: key)
        tls.caFile = self["\(prefix).ca"]?.value.string
        let require = self["\(prefix).require_client_certificate"]?.value.bool
        tls.requireClientCertificate = require ?? requireClientCertificateByDefault
        if tls.requireClientCertificate && tls.caFile == nil {
            // Required by default: point at the table's certificate, the key not being written.
            throw error(require == nil ? "\(prefix).certificate" : "\(prefix).require_client_certificate",
                        require == nil ? "[\(prefix)] requires client certificates by default, and needs a ca to check them"
                            : "needs a ca to check the clients' certificates",
                        hint: "ca = \"/etc/passerelle/tls/clients-ca.pem\", or require_client_certificate = false")
        }
        for (key, path) in [("certificate", Optional(certificate)), ("key", Optional(key)), ("ca", tls.caFile)] {
            if let path, !FileManager.default.isReadableFile(atPath: path) {
                throw error("\(prefix).\(key)", "cannot read \(path)", hint: "check the path and that the passerelle user can read it")
            }
        }
        return tls
    }
}
