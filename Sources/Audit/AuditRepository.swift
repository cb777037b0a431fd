import Foundation

/// `[audit] repository`: where audit messages go, `tls://host:6514` (RFC 5425),
/// `tcp://host:601` (RFC 6587 octet counting) or `udp://host:514` (RFC 5426).
public struct AuditRepository: Sendable, Equatable, CustomStringConvertible {
    public enum Transport: String, Sendable, Equatable { case tls, tcp, udp }

    public var transport: Transport
    public var host: String
    public var port: Int
    /// TLS only: the CA that signed the repository's certificate (else the system's).
    public var caFile: String?
    public var certificateFile: String?
    public var privateKeyFile: String?

    public init(transport: Transport, host: String, port: Int, caFile: String? = nil,
                certificateFile: String? = nil, privateKeyFile: String? = nil) {
        self.transport = transport
        self.host = host
        self.port = port
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.privateKeyFile = privateKeyFile
    }

    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// Parses `scheme://host:port`; the port defaults to the scheme's registered one
    /// (6514, 601, 514). IPv6 hosts are written in brackets.
    public init(url text: String) throws(ParseError) {
        guard let schemeEnd = text.range(of: "://") else {
            throw ParseError(description: "\(text) has no scheme: write tls://host:6514, tcp://host:601 or udp://host:514")
        }
        guard let transport = Transport(rawValue: text[..<schemeEnd.lowerBound].lowercased()) else {
            throw ParseError(description: "unknown scheme in \(text): use tls, tcp or udp")
        }
        var rest = text[schemeEnd.upperBound...]
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("@") else {
            throw ParseError(description: "\(text): expected scheme://host:port and nothing else")
        }
        let host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw ParseError(description: "\(text): unclosed [") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw ParseError(description: "\(text): expected :port after ]") }
                portText = after.dropFirst()
            }
        } else if let colon = rest.firstIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        guard !host.isEmpty else { throw ParseError(description: "\(text) has no host") }
        var port: Int
        switch transport {
        case .tls: port = 6514
        case .tcp: port = 601
        case .udp: port = 514
        }
        if let portText {
            guard let value = Int(portText), (1...65_535).contains(value) else {
                throw ParseError(description: "\(text): \(portText) is not a port (1 to 65535)")
            }
            port = value
        }
        self.init(transport: transport, host: String(host), port: port)
    }

    public var description: String {
        "\(transport.rawValue)://\(host.contains(":") ? "[\(host)]" : host):\(port)"
    }
}
