import Audit
import Foundation

/// `[audit]`: the audit trail and its IHE ATNA repository (docs/audit.md).
public struct AuditSettings: Sendable, Equatable {
    /// false only to measure what auditing costs (bench/ingest): warned at start.
    public var enabled = true
    /// nil: rows are kept in the spool and nothing is sent.
    public var repository: AuditRepository?
}

extension Settings {
    func parseAudit(into configuration: inout GatewayConfiguration) throws(ConfigurationError) {
        if let enabled = self["audit.enabled"]?.value.bool { configuration.audit.enabled = enabled }
        for key in ["ca", "client_cert", "client_key"] where self["audit.\(key)"] != nil {
            guard self["audit.repository"] != nil else {
                throw error("audit.\(key)", "is set without a repository", hint: "add repository = \"tls://host:6514\"")
            }
        }
        guard let text = self["audit.repository"]?.value.string else { return }
        var repository: AuditRepository
        do {
            repository = try AuditRepository(url: text)
        } catch {
            throw self.error("audit.repository", error.description,
                             hint: "write it as \"tls://host:6514\", \"tcp://host:601\" or \"udp://host:514\"")
        }
        repository.caFile = self["audit.ca"]?.value.string
        repository.certificateFile = self["audit.client_cert"]?.value.string
        repository.privateKeyFile = self["audit.client_key"]?.value.string
        if repository.transport != .tls {
            for key in ["ca", "client_cert", "client_key"] where self["audit.\(key)"] != nil {
                throw error("audit.\(key)", "only applies to a tls:// repository",
                            hint: "use tls://host:6514, or remove \(key)")
            }
        }
        if (repository.certificateFile == nil) != (repository.privateKeyFile == nil) {
            throw error(repository.certificateFile == nil ? "audit.client_key" : "audit.client_cert",
                        "client_cert and client_key go together", hint: "set both or neither")
        }
        for (key, path) in [("ca", repository.caFile), ("client_cert", repository.certificateFile),
                            ("client_key", repository.privateKeyFile)] {
            if let path, !FileManager.default.isReadableFile(atPath: path) {
                throw error("audit.\(key)", "cannot read \(path)", hint: "check the path and that the passerelle user can read it")
            }
        }
        configuration.audit.repository = repository
    }
}
