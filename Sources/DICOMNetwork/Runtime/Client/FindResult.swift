import NIOCore

/// The outcome of one C-FIND sent by the client (PS3.7 §9.1.2): the identifiers of the
/// pending responses, in order, and the final response's status, whatever it is.
public struct FindResult: Sendable, Hashable {
    /// The final status: Success, Cancel (after a C-CANCEL), or a failure.
    public var status: DIMSEStatus
    /// Each pending response's identifier, encoded in the context's transfer syntax.
    public var identifiers: [ByteBuffer]
    /// Error Comment (0000,0902) of the final response.
    public var errorComment: String?
    /// A C-CANCEL-RQ was sent (the limit was reached).
    public var cancelled: Bool

    public init(status: DIMSEStatus, identifiers: [ByteBuffer], errorComment: String? = nil, cancelled: Bool = false) {
        self.status = status
        self.identifiers = identifiers
        self.errorComment = errorComment
        self.cancelled = cancelled
    }
}
