import DICOMCore
import Logging
import NIOCore
import NIOPosix

/// An established association, requestor side (from ``DICOMClient/connect(host:port:callingAETitle:calledAETitle:presentationContexts:roleSelections:maximumPDULength:timeouts:group:threadPool:logger:)``).
///
/// Operations run one at a time: concurrent calls wait their turn. End it with
/// ``release()`` (or ``abort()``); an association dropped without either is closed abruptly.
public actor DICOMAssociation {
    /// Accepted presentation contexts by ID.
    public nonisolated let acceptedContexts: [UInt8: PresentationContext]
    /// The peer's A-ASSOCIATE-AC (its user information: maximum length, implementation…).
    public nonisolated let associateAC: AssociateAC
    public nonisolated let callingAETitle: String
    public nonisolated let calledAETitle: String

    nonisolated let channel: any Channel
    /// Completes when the connection is gone, with why the association ended.
    nonisolated let ended: EventLoopFuture<DICOMNetworkError>
    let maximumDataFragmentLength: Int
    let timeouts: DICOMClient.Timeouts
    let threadPool: NIOThreadPool
    let logger: Logger

    /// Message IDs increase per association (PS3.7 §9.1.1.1 only asks for uniqueness).
    private var nextMessageID: UInt16 = 1
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(channel: any Channel, negotiated: RequestorHandler.Negotiated, ended: EventLoopFuture<DICOMNetworkError>,
         callingAETitle: String,
         calledAETitle: String, timeouts: DICOMClient.Timeouts, threadPool: NIOThreadPool, logger: Logger) {
        self.channel = channel
        self.ended = ended
        self.acceptedContexts = negotiated.acceptedContexts
        self.associateAC = negotiated.associateAC
        self.maximumDataFragmentLength = negotiated.maximumDataFragmentLength
        self.callingAETitle = callingAETitle
        self.calledAETitle = calledAETitle
        self.timeouts = timeouts
        self.threadPool = threadPool
        self.logger = logger
    }

    deinit {
        channel.close(promise: nil)
    }

    /// The peer's Maximum Length (0 = unlimited).
    public nonisolated var peerMaximumPDULength: UInt32 { associateAC.userInformation.maximumLength }

    /// The accepted context, lowest ID first, for an abstract syntax (and transfer syntax).
    public nonisolated func acceptedContext(abstractSyntax: String, transferSyntax: String? = nil) -> PresentationContext? {
        acceptedContexts.values.sorted { $0.id < $1.id }.first { context in
            context.abstractSyntax == abstractSyntax && (transferSyntax.map { $0 == context.transferSyntax } ?? true)
        }
    }

    // MARK: Verification

    /// C-ECHO (PS3.7 §9.1.5) on the accepted Verification context.
    public func echo() async throws(DICOMNetworkError) -> DIMSEStatus {
        try await exclusively { () async throws(DICOMNetworkError) -> DIMSEStatus in
            guard let context = acceptedContext(abstractSyntax: UIDRegistry.verificationSOPClassUID) else {
                throw DICOMNetworkError(
                    code: .noAcceptedPresentationContext,
                    message: "no accepted presentation context for Verification (\(UIDRegistry.verificationSOPClassUID))")
            }
            let request = CEchoRQ(messageID: takeMessageID())
            let answer = try await perform(.cEchoRQ(request), contextID: context.id).get()
            guard case .cEchoRSP(let response) = answer else {
                throw DICOMNetworkError.protocolError("C-ECHO answered by another message")
            }
            return response.status
        }
    }

    // MARK: Release and abort

    /// A-RELEASE (PS3.8 §7.2); a release collision is resolved by the state machine.
    public func release() async throws(DICOMNetworkError) {
        try await exclusively { () async throws(DICOMNetworkError) -> Void in
            let promise = channel.eventLoop.makePromise(of: Void.self)
            submit(.release(promise), failing: promise)
            do {
                try await promise.futureResult.get()
            } catch {
                throw error as? DICOMNetworkError ?? .connectionClosed
            }
            logger.debug("association released")
        }
    }

    /// A-ABORT (PS3.8 §7.3): fails the operation in progress, waits (at most the association
    /// timeout) for the connection to close.
    public func abort() async {
        channel.writeAndFlush(RequestorHandler.Request.abort, promise: nil)
        let closed = channel.closeFuture
        let deadline = channel.eventLoop.scheduleTask(in: timeouts.association + .seconds(1)) { [channel] in
            channel.close(promise: nil)
        }
        try? await closed.get()
        deadline.cancel()
    }

    // MARK: Runtime

    func takeMessageID() -> UInt16 {
        defer { nextMessageID = nextMessageID == .max ? 1 : nextMessageID + 1 }
        return nextMessageID
    }

    /// Sends a DIMSE request; the future is its final response, `pending` sees the pending
    /// ones before it (on the event loop), `store` makes the receivers of a C-GET's sub-operations.
    func perform(_ message: DIMSEMessage, contextID: UInt8,
                 pending: RequestorHandler.PendingHandler? = nil,
                 store: RequestorHandler.StoreSink? = nil) -> Answer<DIMSEMessage> {
        let promise = channel.eventLoop.makePromise(of: DIMSEMessage.self)
        submit(.operation(message, contextID: contextID, response: promise, pending: pending, store: store),
               failing: promise)
        return Answer(future: promise.futureResult)
    }

    /// C-CANCEL-RQ for the operation in progress; callable from any thread, the event loop included.
    nonisolated func requestCancel() {
        channel.writeAndFlush(RequestorHandler.Request.cancel, promise: nil)
    }

    /// Sends the next data set fragment and waits until the channel takes more.
    func sendDataSetBlock(_ bytes: ByteBuffer, fragmentLength: Int, isLast: Bool) async throws(DICOMNetworkError) {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        submit(.dataSetBlock(bytes, fragmentLength: fragmentLength, isLast: isLast, ready: promise), failing: promise)
        try await Answer(future: promise.futureResult).get()
    }

    /// Writes a request to the handler; if it never gets there (channel closed), fails `promise`
    /// with the reason the association ended.
    private nonisolated func submit<T>(_ request: RequestorHandler.Request, failing promise: EventLoopPromise<T>) {
        let written = channel.eventLoop.makePromise(of: Void.self)
        let ended = self.ended
        written.futureResult.whenFailure { _ in
            ended.whenSuccess { promise.fail($0) }
        }
        channel.writeAndFlush(request, promise: written)
    }

    /// Runs `body` when no other operation runs (FIFO).
    func exclusively<T: Sendable>(_ body: () async throws(DICOMNetworkError) -> T) async throws(DICOMNetworkError) -> T {
        if busy {
            await withCheckedContinuation { waiters.append($0) }
        }
        busy = true
        defer {
            if waiters.isEmpty {
                busy = false
            } else {
                waiters.removeFirst().resume()  // hands `busy` over
            }
        }
        return try await body()
    }
}
