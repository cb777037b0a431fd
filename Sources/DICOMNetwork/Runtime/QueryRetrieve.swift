import DICOMCore
import NIOCore
import NIOPosix

/// A C-FIND, C-MOVE or C-GET request with its identifier, as the provider receives it.
public struct QueryRetrieveRequest: Sendable, Hashable {
    public enum Command: Sendable, Hashable {
        case find(CFindRQ)
        case move(CMoveRQ)
        case get(CGetRQ)
    }

    public var command: Command
    public var contextID: UInt8
    /// The presentation context's transfer syntax: the identifier's encoding, and the answers'.
    public var transferSyntax: String
    /// The identifier data set (small: the runtime refuses more than 1 MiB).
    public var identifier: ByteBuffer

    public var messageID: UInt16 {
        switch command {
        case .find(let rq): rq.messageID
        case .move(let rq): rq.messageID
        case .get(let rq): rq.messageID
        }
    }

    public var affectedSOPClassUID: String {
        switch command {
        case .find(let rq): rq.affectedSOPClassUID
        case .move(let rq): rq.affectedSOPClassUID
        case .get(let rq): rq.affectedSOPClassUID
        }
    }
}

/// A running query or retrieval; the runtime cancels it on C-CANCEL and when the association ends.
public protocol QueryRetrieveOperation: Sendable {
    func cancel()
}

/// How a provider answers one query/retrieve request, from any thread. Pending responses go
/// out in order; the first final (non-pending) response ends the operation and later calls
/// are ignored. For C-GET, `store` runs a C-STORE sub-operation on the same association.
public final class QueryRetrieveResponder: Sendable {
    let eventLoop: any EventLoop
    let handler: NIOLoopBound<AssociationHandler>
    public let request: QueryRetrieveRequest
    /// Accepted contexts of the association (C-GET sends on those with the SCP role).
    public let association: AssociationContext

    let threadPool: NIOThreadPool
    /// The requestor's Maximum Length: sub-operation data sets are cut for it.
    let peerMaximumPDULength: UInt32

    init(eventLoop: any EventLoop, handler: AssociationHandler, request: QueryRetrieveRequest,
         association: AssociationContext, peerMaximumPDULength: UInt32) {
        self.eventLoop = eventLoop
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
        self.threadPool = handler.threadPool
        self.peerMaximumPDULength = peerMaximumPDULength
        self.request = request
        self.association = association
    }

    /// Sends a response (C-FIND-RSP, C-MOVE-RSP or C-GET-RSP) with its identifier, if any.
    /// Returns when it is written, so a fast producer cannot outrun the connection.
    @discardableResult
    public func respond(_ message: DIMSEMessage, identifier: ByteBuffer? = nil) -> EventLoopFuture<Void> {
        let handler = self.handler
        let messageID = request.messageID
        let contextID = request.contextID
        return eventLoop.flatSubmit {
            handler.value.respond(message, identifier: identifier, messageID: messageID, contextID: contextID)
        }
    }

    /// A response to `request` with `status` (C-MOVE/C-GET with counts when given; an
    /// identifier follows when `hasIdentifier`: a C-FIND match, a Failed SOP Instance UID List).
    public static func message(for request: QueryRetrieveRequest, status: DIMSEStatus, errorComment: String? = nil,
                               counts: SubOperationCounts? = nil, hasIdentifier: Bool = false) -> DIMSEMessage {
        let comment = errorComment.map { String($0.prefix(64)) }  // Error Comment is LO (PS3.7 §C.4)
        switch request.command {
        case .find(let rq):
            return .cFindRSP(CFindRSP(messageIDBeingRespondedTo: rq.messageID, affectedSOPClassUID: rq.affectedSOPClassUID,
                                      status: status, hasIdentifier: hasIdentifier, errorComment: comment))
        case .move(let rq):
            return .cMoveRSP(CMoveRSP(counts.fields(rq.messageID, rq.affectedSOPClassUID, status, comment, hasIdentifier: hasIdentifier)))
        case .get(let rq):
            return .cGetRSP(CGetRSP(counts.fields(rq.messageID, rq.affectedSOPClassUID, status, comment, hasIdentifier: hasIdentifier)))
        }
    }

    /// C-GET: sends the Part-10 file at `path` as a C-STORE sub-operation on this association,
    /// on an accepted context of its SOP class and transfer syntax (no transcoding). The
    /// provider accepts storage contexts on a query/retrieve association only with the SCP role.
    /// Returns the requestor's C-STORE-RSP; throws when no context fits or the association ended.
    public func store(fileAt path: String) async throws(DICOMNetworkError) -> CStoreResult {
        let handler = self.handler
        let file = try await DataSetSender.open(path, threadPool: threadPool, eventLoop: eventLoop)
        let candidates = association.acceptedContexts.values
            .filter { $0.abstractSyntax == file.sopClassUID && $0.transferSyntax == file.transferSyntaxUID }
            .map(\.id).sorted()
        guard let contextID = candidates.first else {
            throw file.noFittingContext("no presentation context with the SCP role")
        }
        let started = eventLoop.submit { handler.value.beginSubOperation(file, contextID: contextID) }
        guard let (messageID, response) = try await Self.value(of: started) else {
            throw DICOMNetworkError(code: .associationNotEstablished, message: "the association ended")
        }
        let fragmentLength = PDataTF.maximumDataFragmentLength(peerMaximumPDULength: peerMaximumPDULength)
        do {
            try await DataSetSender.send(file, fragmentLength: fragmentLength, threadPool: threadPool,
                                         eventLoop: eventLoop) {
                (bytes, isLast) async throws(DICOMNetworkError) in
                try await Self.value(of: eventLoop.flatSubmit {
                    handler.value.subOperationData(messageID: messageID, bytes, isLast: isLast)
                })
            }
        } catch where error.code == .invalidFile {
            eventLoop.execute { handler.value.subOperationFileFailed(error) }
            throw error
        } catch {
            // The association ended: the response's future says how.
        }
        let rsp = try await Self.value(of: response)
        return CStoreResult(rsp, file: file, contextID: contextID)
    }

    private static func value<T: Sendable>(of future: EventLoopFuture<T>) async throws(DICOMNetworkError) -> T {
        do {
            return try await future.get()
        } catch let error as DICOMNetworkError {
            throw error
        } catch {
            throw DICOMNetworkError(code: .connectionClosed, message: "\(error)")
        }
    }
}

/// Sub-operation counts of a C-MOVE or C-GET (PS3.7 §9.3.3.2, §9.3.4.2).
public struct SubOperationCounts: Sendable, Hashable {
    public var remaining: Int
    public var completed = 0
    public var failed = 0
    public var warning = 0

    public init(remaining: Int, completed: Int = 0, failed: Int = 0, warning: Int = 0) {
        self.remaining = remaining
        self.completed = completed
        self.failed = failed
        self.warning = warning
    }

    static func clamp(_ value: Int) -> UInt16 { UInt16(clamping: value) }
}

extension Optional where Wrapped == SubOperationCounts {
    /// PS3.4 C.4.2.3.1: pending and cancel responses carry the remaining count; final ones do not.
    func fields(_ messageID: UInt16, _ sopClass: String, _ status: DIMSEStatus, _ comment: String?,
                hasIdentifier: Bool = false) -> RetrieveResponseFields {
        let counts = self
        let pending = status.kind == .pending || status.kind == .cancel
        return RetrieveResponseFields(
            messageIDBeingRespondedTo: messageID, affectedSOPClassUID: sopClass, status: status,
            remaining: pending ? counts.map { SubOperationCounts.clamp($0.remaining) } : nil,
            completed: counts.map { SubOperationCounts.clamp($0.completed) },
            failed: counts.map { SubOperationCounts.clamp($0.failed) },
            warning: counts.map { SubOperationCounts.clamp($0.warning) },
            hasIdentifier: hasIdentifier, errorComment: comment)
    }
}
