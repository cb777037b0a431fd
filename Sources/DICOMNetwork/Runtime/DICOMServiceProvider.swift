import NIOCore

/// What the application above the upper layer decides and does for an acceptor
/// (DICOMNetwork knows the protocol; the Gateway holds the policy).
public protocol DICOMServiceProvider: Sendable {
    /// Accept (with the negotiated presentation contexts) or reject an A-ASSOCIATE-RQ.
    /// Called on the event loop: must not block.
    func associationRequested(_ request: AssociateRQ, peer: String) -> AssociationDecision

    /// The association that `associationRequested` accepted has ended (released, aborted or lost).
    func associationEnded(_ association: AssociationContext, reason: AssociationEndReason)

    /// A C-ECHO-RQ on an accepted Verification context.
    func verify(_ association: AssociationContext) -> DIMSEStatus

    /// A C-STORE-RQ: returns the receiver its data set is streamed to.
    func beginStore(_ request: CStoreRQ, transferSyntax: String, association: AssociationContext) -> any StoreReceiver

    /// A C-FIND, C-MOVE or C-GET with its identifier, on an accepted context of its SOP class.
    /// Called on the event loop: start the work elsewhere and answer through `responder`
    /// (pending responses, then one final). The returned operation is cancelled on C-CANCEL
    /// and when the association ends.
    func beginQueryRetrieve(_ request: QueryRetrieveRequest, association: AssociationContext,
                            responder: QueryRetrieveResponder) -> any QueryRetrieveOperation

    /// A TLS connection refused before any association (no client certificate, another CA's,
    /// an old TLS version); `peer` is "address:port", `reason` plain words. Already logged.
    func secureConnectionRefused(peer: String, reason: String)
}

extension DICOMServiceProvider {
    /// Nothing to record beyond the log line.
    public func secureConnectionRefused(peer: String, reason: String) {}

    /// Providers without query/retrieve never accept its contexts; answer anyway.
    public func beginQueryRetrieve(_ request: QueryRetrieveRequest, association: AssociationContext,
                                   responder: QueryRetrieveResponder) -> any QueryRetrieveOperation {
        responder.respond(QueryRetrieveResponder.message(for: request, status: .sopClassNotSupported,
                                                       errorComment: "query/retrieve is not provided here"))
        return FinishedOperation()
    }
}

/// An operation that had nothing left to cancel.
public struct FinishedOperation: QueryRetrieveOperation {
    public init() {}
    public func cancel() {}
}

public enum AssociationDecision: Sendable {
    case accept(presentationContexts: [PresentationContextResult], roleSelections: [RoleSelection])
    case reject(AssociateRJ)
}

public enum AssociationEndReason: Sendable, Hashable {
    case released
    case aborted(String)
}

/// An accepted association, as the application sees it.
public struct AssociationContext: Sendable, Hashable {
    public var callingAETitle: String
    public var calledAETitle: String
    public var peer: String
    /// Accepted presentation contexts by ID.
    public var acceptedContexts: [UInt8: PresentationContext]
    /// A number identifying the association in logs.
    public var id: UInt64
    /// The user name of a User Identity sub-item of type 1 or 2 (PS3.7 D.3.3.7), never its
    /// passcode; nil when none was negotiated.
    public var userName: String? = nil

    public init(callingAETitle: String, calledAETitle: String, peer: String,
                acceptedContexts: [UInt8: PresentationContext], id: UInt64, userName: String? = nil) {
        self.callingAETitle = callingAETitle
        self.calledAETitle = calledAETitle
        self.peer = peer
        self.acceptedContexts = acceptedContexts
        self.id = id
        self.userName = userName
    }
}

/// Receives one C-STORE data set as it arrives. Its methods block (file I/O, fsync,
/// database commit): the runtime calls them one at a time on a thread pool.
public protocol StoreReceiver: AnyObject, Sendable {
    /// The next bytes of the data set, in order: the received PDV values as they came off
    /// the wire (slices, not copies). Failures are remembered, not thrown: the rest of the
    /// data set still has to be read off the wire.
    func write(_ slices: [ByteBuffer])
    /// The last bytes arrived: make the instance durable (or refuse it). `respond` is called
    /// once, with the status, as soon as it is known (the C-STORE-RSP goes out then);
    /// `settled` once whatever follows is done too (the instance indexed), after `respond`.
    /// The association's release and end wait for `settled`.
    func finish(respond: @escaping @Sendable (StoreOutcome) -> Void, settled: @escaping @Sendable () -> Void)
    /// The association ended mid-data-set: drop everything received.
    func abandon()
}

public struct StoreOutcome: Sendable {
    public var status: DIMSEStatus
    public var errorComment: String?

    public init(status: DIMSEStatus, errorComment: String? = nil) {
        self.status = status
        self.errorComment = errorComment
    }
}
