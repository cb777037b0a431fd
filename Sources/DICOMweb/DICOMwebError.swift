/// A DICOMweb request that did not give a usable answer.
///
/// `kind` is what the uploader acts on; `code` says what happened (open set of static codes, so
/// new ones don't break clients); `description` is a sentence for a person, with URL and status.
public struct DICOMwebError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What the caller should do about it.
    public enum Kind: Sendable, Hashable, CustomStringConvertible {
        /// Try again later (backoff): 408, 429, 5xx, refused or reset connections, timeouts.
        case retryable
        /// The same request will fail again: 400, 404, 409 without results, 413, 415, bad bodies.
        case permanent
        /// Fix the configuration: 401/403, TLS (certificates, keys, CA), a bad URL, redirects.
        case configuration

        public var description: String {
            switch self {
            case .retryable: "retryable"
            case .permanent: "permanent"
            case .configuration: "configuration"
            }
        }
    }

    /// What happened, as a stable name.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let name: String
        public var description: String { name }
        init(_ name: String) { self.name = name }

        /// The server answered with a status that is not a success for this request.
        public static let httpStatus = Code("httpStatus")
        /// 413: the request body is too large for the server; split the chunk.
        public static let payloadTooLarge = Code("payloadTooLarge")
        /// 401/403: credentials (bearer token, client certificate) refused.
        public static let unauthorized = Code("unauthorized")
        /// The connection could not be made, or broke.
        public static let connection = Code("connection")
        /// The server closed the connection before answering (e.g. an idle keep-alive one).
        public static let connectionClosed = Code("connectionClosed")
        /// Connect, read or overall deadline passed.
        public static let timeout = Code("timeout")
        /// TLS handshake or TLS configuration (certificate, key, CA files).
        public static let tls = Code("tls")
        /// The base URL (or a URL built from it) is unusable.
        public static let invalidURL = Code("invalidURL")
        /// A body that could not be parsed (JSON, XML, multipart).
        public static let invalidResponse = Code("invalidResponse")
        /// A local file to send could not be read, or changed size while it was sent.
        public static let localFile = Code("localFile")
        /// A response body larger than the client accepts.
        public static let responseTooLarge = Code("responseTooLarge")
    }

    public var kind: Kind
    public var code: Code
    /// The request's URL, when there was one.
    public var url: String?
    /// The HTTP status, when the server answered.
    public var status: Int?
    /// What went wrong, in words.
    public var message: String

    public init(kind: Kind, code: Code, url: String?, status: Int? = nil, message: String) {
        self.kind = kind
        self.code = code
        self.url = url
        self.status = status
        self.message = message
    }

    public var description: String {
        var text = "\(message)"
        if let status { text += " (HTTP \(status))" }
        if let url { text += " [\(url)]" }
        return text + " — \(kind)"
    }

    /// The error for a final HTTP status that the request cannot use (PS3.18 §8.6 status codes).
    ///
    /// | status | kind | why |
    /// |---|---|---|
    /// | 408, 429, 5xx | retryable | the server is busy, slow or broken for now |
    /// | 401, 403 | configuration | token or client certificate refused |
    /// | 3xx | configuration | the base URL points elsewhere; redirects are not followed |
    /// | 413 | permanent (`payloadTooLarge`) | send fewer bytes per request |
    /// | other 4xx (400, 404, 409, 415, …) | permanent | the same request fails again |
    public static func forStatus(_ status: Int, url: String?, detail: String? = nil) -> DICOMwebError {
        let reason = detail.map { ": \($0)" } ?? ""
        switch status {
        case 408, 429, 500...599:
            return DICOMwebError(kind: .retryable, code: .httpStatus, url: url, status: status,
                                 message: "server unavailable or overloaded\(reason)")
        case 401, 403:
            return DICOMwebError(kind: .configuration, code: .unauthorized, url: url, status: status,
                                 message: "credentials refused (bearer token or client certificate)\(reason)")
        case 300...399:
            return DICOMwebError(kind: .configuration, code: .httpStatus, url: url, status: status,
                                 message: "redirected; configure the final URL\(reason)")
        case 413:
            return DICOMwebError(kind: .permanent, code: .payloadTooLarge, url: url, status: status,
                                 message: "request too large for the server; send smaller chunks\(reason)")
        case 404:
            return DICOMwebError(kind: .permanent, code: .httpStatus, url: url, status: status,
                                 message: "not found (check the DICOMweb base URL)\(reason)")
        case 415:
            return DICOMwebError(kind: .permanent, code: .httpStatus, url: url, status: status,
                                 message: "media type not supported by the server\(reason)")
        default:
            return DICOMwebError(kind: .permanent, code: .httpStatus, url: url, status: status,
                                 message: "request refused\(reason)")
        }
    }
}
