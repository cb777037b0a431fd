import DICOMCore
import NIOCore

/// The acceptor (SCP) side of one association, as a pure value: the Upper Layer machine
/// (``AssociationStateMachine``, acceptor role) plus the DIMSE layer above it — which
/// messages are served on which context, where the data that follows a command goes (a
/// C-STORE data set, a query identifier), which query/retrieve operations and C-GET
/// sub-operations are outstanding, and when the association may be released.
///
/// Every input is a `mutating func` returning the ``Action``s the runtime executes in order
/// (`AssociationHandler`). No I/O, no logging, no clock: the ARTIM timer is an action and its
/// expiry an input; the provider (the Gateway's policy) is consulted through actions whose
/// answers come back as inputs.
///
/// ```
///  connected() ─► awaitingAssociateRQ ─RQ─► negotiating ─accepted─► established ─release, idle─► ended(.released)
///                        └──────────── rejected / abort / timeout / close ──────────────┴───────► ended(.aborted)
/// ```
struct AcceptorStateMachine: Sendable {
    struct Configuration: Sendable, Hashable {
        /// The Maximum Length we advertise (PS3.8 §D.1).
        var maximumPDULength: UInt32
        /// Identifiers are a few keys; anything larger is refused rather than buffered.
        var maximumIdentifierLength = 1024 * 1024
    }

    enum Timer: Sendable, Hashable {
        /// PS3.8 §9.1.5: waiting for the A-ASSOCIATE-RQ, or for the peer to close.
        case artim
    }

    enum Action: Sendable, Hashable {
        /// Write this PDU; flush after the batch.
        case write(PDU)
        /// Close the TCP connection.
        case close
        case startTimer(Timer)
        case cancelTimer(Timer)
        /// Ask the provider; answer with ``associationAccepted(_:roleSelections:)`` or ``associationRejected(_:)``.
        case decideAssociation(AssociateRQ)
        /// Ask the provider for the C-ECHO status; answer with ``respond(_:contextID:)``.
        case verify(CEchoRQ, contextID: UInt8, association: AssociationContext)
        /// Open the provider's receiver for this C-STORE: its data set follows as ``storeData(_:isLast:)``.
        case beginStore(CStoreRQ, transferSyntax: String, association: AssociationContext)
        /// The data set of this C-STORE is read and dropped, then answered with this refusal.
        case refuseStore(Refusal)
        /// The next bytes of the C-STORE data set. On the last, make it durable and answer with
        /// ``storeFinished(_:)`` (reading pauses meanwhile: one operation at a time).
        case storeData(ByteBuffer, isLast: Bool)
        /// The association ended mid-data-set: drop what the receiver has.
        case abandonStore
        /// Start the operation; it answers through ``respond(_:identifier:messageID:)`` from any thread.
        case beginQueryRetrieve(QueryRetrieveRequest, association: AssociationContext)
        /// C-CANCEL of a running operation (PS3.7 §9.3.2.3).
        case cancelOperation(messageID: UInt16)
        /// The operation answered its final response: forget its handle.
        case operationEnded(messageID: UInt16)
        /// The peer answered a C-GET sub-operation (after its whole data set was sent).
        case subOperationAnswered(messageID: UInt16, CStoreRSP)
        /// A C-GET sub-operation cannot go on (the association is ending).
        case subOperationFailed(messageID: UInt16, reason: String)
        /// The peer broke the DIMSE protocol; the association is being aborted.
        case protocolError(String)
        /// An event the Upper Layer table leaves blank here (logged; state unchanged).
        case eventNotAllowed(AssociationEventID, in: AssociationStateID)
        /// The accepted association ended: cancel what runs, tell the provider (once).
        case associationEnded(AssociationContext, AssociationEndReason)
    }

    /// A request refused by the protocol layer, without the provider: a C-STORE (whose data
    /// set must still be drained) or a query/retrieve (answered once its identifier is read).
    struct Refusal: Sendable, Hashable {
        var status: DIMSEStatus
        var errorComment: String
    }

    /// Where the data that follows a command goes.
    enum Inbound: Sendable, Hashable {
        case none
        /// The data set of a C-STORE (refused or not): `finishing` once its last byte came.
        case storeDataSet(CStoreRQ, contextID: UInt8, finishing: Bool)
        /// A C-FIND, C-MOVE or C-GET identifier being gathered.
        case identifier(IdentifierReception)
    }

    struct IdentifierReception: Sendable, Hashable {
        var command: QueryRetrieveRequest.Command
        var contextID: UInt8
        var transferSyntax: String
        var buffer: ByteBuffer
        /// Set when the request cannot be served: answered with this failure once the identifier is read.
        var refusal: Refusal?
    }

    /// A C-GET C-STORE sub-operation we sent, awaiting its C-STORE-RSP.
    struct SubOperation: Sendable, Hashable {
        var contextID: UInt8
        var sendingDataSet = true
        /// A response that came before the last data set fragment was sent.
        var earlyResponse: CStoreRSP?
    }

    struct Established: Sendable, Hashable {
        var association: AssociationContext
        var peerMaximumPDULength: UInt32
        var inbound: Inbound = .none
        /// Running C-FIND/C-MOVE/C-GET by Message ID.
        var operations: Set<UInt16> = []
        var subOperations: [UInt16: SubOperation] = [:]
        var nextSubOperationMessageID: UInt16 = 1
        /// The peer asked for the release: answered once nothing is outstanding (PS3.8 §7.2).
        var releaseRequested = false

        /// Nothing outstanding either way: the release may be answered (PS3.8 §7.2).
        var isIdle: Bool {
            inbound == .none && operations.isEmpty && subOperations.isEmpty
        }

        /// We are the ones working (answering, sending, making an instance durable): the
        /// peer's silence then is not idleness. A peer that stops mid-data-set is idle.
        var isWorking: Bool {
            if case .storeDataSet(_, _, finishing: true) = inbound { return true }
            return !operations.isEmpty || !subOperations.isEmpty
        }
    }

    enum State: Sendable, Hashable {
        case idle
        case awaitingAssociateRQ
        /// The provider is deciding on this request.
        case negotiating(AssociateRQ)
        case established(Established)
        /// Rejected, released or aborted; only the transport's end is left.
        case ended
    }

    var state: State = .idle
    var upperLayer = AssociationStateMachine()
    var assembler = DIMSEMessageAssembler()
    let configuration: Configuration
    /// Identifies the association in logs and in its ``AssociationContext``.
    let associationID: UInt64
    private var peer = "unknown"

    init(configuration: Configuration, associationID: UInt64) {
        self.configuration = configuration
        self.associationID = associationID
    }

    /// The accepted association, while established.
    var association: AssociationContext? {
        if case .established(let established) = state { established.association } else { nil }
    }

    /// The requestor's Maximum Length, once established (0: unlimited).
    var peerMaximumPDULength: UInt32 {
        if case .established(let established) = state { established.peerMaximumPDULength } else { 0 }
    }

    // MARK: Transport and timers

    /// A peer connected (Evt5): ARTIM runs until its A-ASSOCIATE-RQ.
    mutating func connected(peer: String) -> [Action] {
        guard case .idle = state else { return [] }
        self.peer = peer
        state = .awaitingAssociateRQ
        return translate(upperLayer.handle(.transportConnectIndication))
    }

    mutating func pduReceived(_ pdu: PDU) -> [Action] {
        translate(upperLayer.handle(.pduReceived(pdu)))
    }

    /// The decoder threw (Evt19).
    mutating func invalidPDUReceived(_ error: PDUDecodingError) -> [Action] {
        translate(upperLayer.handle(.invalidPDUReceived(error)))
    }

    mutating func timerFired(_ timer: Timer) -> [Action] {
        translate(upperLayer.handle(.artimExpired))  // Evt18
    }

    /// Nothing came from the peer for the idle timeout. Silence while we are the ones working
    /// (writing, fsyncing, answering a query) is not the peer's idleness.
    mutating func readTimeoutFired() -> [Action] {
        switch state {
        case .established(let established):
            guard !established.isWorking else { return [] }
            return abort(source: .serviceUser, reason: .notSpecified, because: "idle timeout")
        case .idle, .awaitingAssociateRQ, .negotiating, .ended:
            // No association (or one being torn down): the silence counts as ARTIM expiry.
            return translate(upperLayer.handle(.artimExpired))  // Evt18
        }
    }

    /// The TCP connection closed (Evt17).
    mutating func connectionClosed() -> [Action] {
        translate(upperLayer.handle(.transportClosed)) + end(.aborted("connection closed"))
    }

    /// The daemon stops and the grace period is over: A-ABORT whatever is left.
    mutating func shutdownRequested() -> [Action] {
        guard case .established = state else { return [.close] }
        return abort(source: .serviceUser, reason: .notSpecified, because: "shutting down") + [.close]
    }

    // MARK: Negotiation

    /// The provider accepted: send the A-ASSOCIATE-AC (Evt7).
    mutating func associationAccepted(_ contexts: [PresentationContextResult],
                                      roleSelections: [RoleSelection]) -> [Action] {
        guard case .negotiating(let request) = state else { return [] }
        var accepted: [UInt8: PresentationContext] = [:]
        for result in contexts where result.result == .acceptance {
            if let proposal = request.presentationContexts.first(where: { $0.id == result.id }) {
                accepted[result.id] = PresentationContext(id: result.id, abstractSyntax: proposal.abstractSyntax,
                                                          transferSyntax: result.transferSyntax)
            }
        }
        let association = AssociationContext(
            callingAETitle: request.callingAETitle, calledAETitle: request.calledAETitle, peer: peer,
            acceptedContexts: accepted, id: associationID, userName: request.userInformation.auditUserName)
        var userInformation = UserInformation()
        userInformation.maximumLength = configuration.maximumPDULength
        userInformation.implementationClassUID = Implementation.classUID
        userInformation.implementationVersionName = Implementation.versionName
        userInformation.roleSelections = roleSelections
        if request.userInformation.asynchronousOperationsWindow != nil {
            // One operation at a time: each response follows its instance being durable.
            userInformation.asynchronousOperationsWindow = AsynchronousOperationsWindow(
                maximumOperationsInvoked: 1, maximumOperationsPerformed: 1)
        }
        state = .established(Established(association: association,
                                         peerMaximumPDULength: request.userInformation.maximumLength))
        let acceptance = AssociateAC(calledAETitle: request.calledAETitle, callingAETitle: request.callingAETitle,
                                     presentationContexts: contexts, userInformation: userInformation)
        return translate(upperLayer.handle(.associateACPrimitive(acceptance)))  // Evt7 → AE-7
    }

    /// The provider rejected: send the A-ASSOCIATE-RJ (Evt8).
    mutating func associationRejected(_ rejection: AssociateRJ) -> [Action] {
        guard case .negotiating = state else { return [] }
        state = .ended
        return translate(upperLayer.handle(.associateRJPrimitive(rejection)))  // Evt8 → AE-8
    }

    // MARK: Answers of the runtime

    /// The receiver made the C-STORE data set durable (or not): answer it.
    mutating func storeFinished(_ outcome: StoreOutcome) -> [Action] {
        guard case .established(var established) = state,
              case .storeDataSet(let request, let contextID, finishing: true) = established.inbound else { return [] }
        established.inbound = .none
        state = .established(established)
        let response = CStoreRSP(respondingTo: request, status: outcome.status, errorComment: outcome.errorComment)
        return send(.cStoreRSP(response), contextID: contextID) + releaseIfIdle()
    }

    /// A response of ours: C-ECHO-RSP, or a response of a running query/retrieve operation
    /// (`messageID`) with its identifier; a final one ends the operation. Ignored when the
    /// operation already ended or the association can no longer carry data.
    mutating func respond(_ message: DIMSEMessage, identifier: ByteBuffer? = nil, messageID: UInt16? = nil,
                          contextID: UInt8) -> [Action] {
        guard case .established(var established) = state, upperLayer.canSendData else { return [] }
        if let messageID, !established.operations.contains(messageID) { return [] }
        var actions = send(message, contextID: contextID)
        if let identifier {
            actions += sendData(identifier, contextID: contextID, isLast: true, peerMaximum: established.peerMaximumPDULength)
        }
        guard let messageID, let status = message.status, status.kind != .pending else { return actions }
        established.operations.remove(messageID)
        state = .established(established)
        return actions + [.operationEnded(messageID: messageID)] + releaseIfIdle()
    }

    /// C-GET: starts a C-STORE sub-operation on `contextID`; its data set follows through
    /// ``subOperationData(messageID:_:isLast:)``. Returns the sub-operation's Message ID,
    /// nil when the association can no longer carry it.
    mutating func subOperationRequested(sopClassUID: String, sopInstanceUID: String,
                                        contextID: UInt8) -> (messageID: UInt16?, actions: [Action]) {
        guard case .established(var established) = state, upperLayer.canSendData else { return (nil, []) }
        let messageID = established.nextSubOperationMessageID
        established.nextSubOperationMessageID = messageID == .max ? 1 : messageID + 1
        established.subOperations[messageID] = SubOperation(contextID: contextID)
        state = .established(established)
        let request = CStoreRQ(messageID: messageID, affectedSOPClassUID: sopClassUID,
                               affectedSOPInstanceUID: sopInstanceUID)
        return (messageID, send(.cStoreRQ(request), contextID: contextID))
    }

    /// The next block of a sub-operation's data set (cut into P-DATA-TF fragments here).
    mutating func subOperationData(messageID: UInt16, _ bytes: ByteBuffer, isLast: Bool) -> [Action] {
        guard case .established(var established) = state, var operation = established.subOperations[messageID],
              operation.sendingDataSet, upperLayer.canSendData
        else {
            return [.subOperationFailed(messageID: messageID, reason: "the association ended")]
        }
        var actions = sendData(bytes, contextID: operation.contextID, isLast: isLast,
                               peerMaximum: established.peerMaximumPDULength)
        guard isLast else { return actions }
        operation.sendingDataSet = false
        if let response = operation.earlyResponse {
            established.subOperations[messageID] = nil
            state = .established(established)
            actions.append(.subOperationAnswered(messageID: messageID, response))
            return actions + releaseIfIdle()
        }
        established.subOperations[messageID] = operation
        state = .established(established)
        return actions
    }

    /// A data set cannot be cut short: when a sub-operation's file cannot be read, the only
    /// way out is an abort (PS3.7 §9.1.1).
    mutating func subOperationFileFailed(_ message: String) -> [Action] {
        abort(source: .serviceProvider, reason: .notSpecified, because: "file read failed: \(message)")
    }
}
