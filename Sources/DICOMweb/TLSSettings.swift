/// Files for mutual TLS with the data center (PEM).
public struct TLSSettings: Sendable, Hashable {
    /// Trust only this CA bundle (else the system's roots).
    public var caFile: String?
    /// This site's certificate chain, presented to the server.
    public var certificateFile: String?
    /// The key of `certificateFile`.
    public var privateKeyFile: String?

    public init(caFile: String? = nil, certificateFile: String? = nil, privateKeyFile: String? = nil) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.privateKeyFile = privateKeyFile
    }
}
