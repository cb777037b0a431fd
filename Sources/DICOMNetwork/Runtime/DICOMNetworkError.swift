/// Why a requestor (SCU) operation failed.
///
/// A struct with static codes so new codes never break clients. The association-level
/// details travel with the error: the peer's ``AssociateRJ`` for a rejection, the
/// ``AAbort`` for an abort, the ``DICOMClient/TimeoutKind`` for a timeout.
public struct DICOMNetworkError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let name: String
        public var description: String { name }

        /// The TCP connection could not be opened (refused, unreachable, name lookup).
        public static let connectionFailed = Code(name: "connectionFailed")
        /// The called AE answered A-ASSOCIATE-RJ; see ``DICOMNetworkError/rejection``.
        public static let associationRejected = Code(name: "associationRejected")
        /// The peer sent an A-ABORT; see ``DICOMNetworkError/abort``.
        public static let aborted = Code(name: "aborted")
        /// We aborted because the peer broke the protocol (invalid PDU, unexpected message).
        public static let protocolError = Code(name: "protocolError")
        /// The connection closed without a release or an abort.
        public static let connectionClosed = Code(name: "connectionClosed")
        /// A timeout expired; see ``DICOMNetworkError/timeout``. The association was aborted.
        public static let timeout = Code(name: "timeout")
        /// The association is not (or no longer) established: released, aborted, or lost.
        public static let associationNotEstablished = Code(name: "associationNotEstablished")
        /// No accepted presentation context fits the operation (SOP class, transfer syntax).
        public static let noAcceptedPresentationContext = Code(name: "noAcceptedPresentationContext")
        /// The file to send is not a usable Part-10 file, or could not be read.
        public static let invalidFile = Code(name: "invalidFile")
        /// More presentation contexts than an A-ASSOCIATE-RQ can carry (128).
        public static let tooManyPresentationContexts = Code(name: "tooManyPresentationContexts")
        /// A calling or called AE title that PS3.5 §6.2 (AE) does not allow: 1–16 characters
        /// of printable ASCII without backslash, not all spaces.
        public static let invalidAETitle = Code(name: "invalidAETitle")
        /// The TLS handshake failed (certificate refused either way, TLS version); the
        /// message says why.
        public static let tlsHandshakeFailed = Code(name: "tlsHandshakeFailed")
        /// The local user aborted the association.
        public static let abortedLocally = Code(name: "abortedLocally")
    }

    public var code: Code
    public var message: String
    /// The A-ASSOCIATE-RJ, for ``Code/associationRejected``.
    public var rejection: AssociateRJ?
    /// The A-ABORT received (``Code/aborted``) or sent (``Code/protocolError``).
    public var abort: AAbort?
    /// Which timer expired, for ``Code/timeout``.
    public var timeout: DICOMClient.TimeoutKind?

    public init(code: Code, message: String, rejection: AssociateRJ? = nil, abort: AAbort? = nil,
                timeout: DICOMClient.TimeoutKind? = nil) {
        self.code = code
        self.message = message
        self.rejection = rejection
        self.abort = abort
        self.timeout = timeout
    }

    public var description: String { message }

    static func rejected(_ rejection: AssociateRJ) -> Self {
        .init(code: .associationRejected, message: "association " + rejection.explanation, rejection: rejection)
    }

    static func peerAborted(_ abort: AAbort) -> Self {
        .init(code: .aborted, message: "association aborted by the peer: " + abort.explanation, abort: abort)
    }

    static func protocolError(_ message: String, abort: AAbort? = nil) -> Self {
        .init(code: .protocolError, message: "protocol error, association aborted: \(message)", abort: abort)
    }

    static func timedOut(_ kind: DICOMClient.TimeoutKind) -> Self {
        .init(code: .timeout, message: "\(kind.explanation) timed out, association aborted", timeout: kind)
    }

    static let connectionClosed = Self(code: .connectionClosed, message: "the peer closed the connection")
    static let abortedLocally = Self(code: .abortedLocally, message: "association aborted by the local user")
    static let released = Self(code: .associationNotEstablished, message: "the association was released")

    static func notEstablished(_ message: String) -> Self {
        .init(code: .associationNotEstablished, message: message)
    }
}
