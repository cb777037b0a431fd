import NIOCore

/// The requestor (SCU) side of one association, as a pure value: the Upper Layer machine
/// (``AssociationStateMachine``, requestor role) plus the DIMSE layer above it — one
/// operation at a time, responses matched by Message ID, data set sent fragment by fragment.
/// A response's data set (a C-FIND identifier, a C-MOVE Failed SOP Instance UID List) is
/// gathered whole, within ``maximumResponseDataSetLength``, before the response is reported;
/// pending responses (C-FIND, C-MOVE, C-GET) come out one by one until the final one.
///
/// While a C-GET is outstanding the peer sends its sub-operations on this association
/// (PS3.4 §C.4.3, PS3.7 §9.1.3): each C-STORE-RQ is reported (``Action/storeRequested(_:contextID:)``),
/// its data set passed through fragment by fragment (``Action/storeFragment(_:isLast:)``, never
/// buffered), and its C-STORE-RSP goes once the runtime says how it ended
/// (``storeResponded(status:errorComment:)``). One sub-operation at a time: the peer waits for
/// our C-STORE-RSP before the next C-STORE-RQ (the default Asynchronous Operations Window).
///
/// Every input is a `mutating func` returning the ``Action``s the runtime executes in order
/// (`RequestorHandler`). No I/O, no logging, no clock: timers are actions and their expiry
/// is an input, so tests drive time by hand.
///
/// ```
///  connected() ─► associating ─AC─► established ⇄ operation ─releaseRequested()─► releasing ─RP─► closed
///                      └─RJ/abort/timeout/close─► failed(error) ◄─ abort/timeout/close/protocol error ─┘
/// ```
struct RequestorStateMachine: Sendable {
    /// A timer the runtime arms; its expiry comes back as ``timeoutFired(_:)``.
    enum Timer: Sendable, Hashable {
        /// Waiting for A-ASSOCIATE-AC/RJ or A-RELEASE-RP (the `association` timeout).
        case association
        /// Waiting for a DIMSE response, or for progress while sending a data set.
        case dimse
        /// PS3.8 ARTIM: waiting for the peer to close after our A-ABORT.
        case artim
    }

    enum Action: Sendable, Hashable {
        /// Write this PDU (one write per PDU); flush after the batch.
        case write(PDU)
        /// Close the TCP connection.
        case close
        /// (Re)arm the single timer; any previous timer is cancelled.
        case startTimer(Timer)
        case cancelTimer
        case associateSucceeded(AssociateAC, acceptedContexts: [UInt8: PresentationContext])
        case associateFailed(DICOMNetworkError)
        /// A pending response (status 0xFF00/0xFF01) to the operation in progress, with its
        /// data set if it had one; the final response follows.
        case operationPending(DIMSEMessage, dataSet: ByteBuffer?)
        /// The final response to the operation in progress (its data set, if any, is dropped).
        case operationSucceeded(DIMSEMessage)
        /// The operation in progress (or the one just requested) failed; its data set, if
        /// being sent, must stop.
        case operationFailed(DICOMNetworkError)
        /// C-GET sub-operation: the peer sends this C-STORE-RQ on an accepted context; its data
        /// set follows as ``storeFragment(_:isLast:)``. Answer with ``RequestorStateMachine/storeResponded(status:errorComment:)``
        /// once the instance is received (or refused).
        case storeRequested(CStoreRQ, contextID: UInt8)
        /// The next fragment of the data set of the C-STORE-RQ just reported, as it came off the
        /// wire (not buffered).
        case storeFragment(ByteBuffer, isLast: Bool)
        /// The association ended in the middle of that data set: drop what was received.
        case storeAbandoned
        case releaseSucceeded
        case releaseFailed(DICOMNetworkError)
    }

    /// One DIMSE request awaiting its response.
    struct Operation: Sendable, Hashable {
        var messageID: UInt16
        var contextID: UInt8
        /// The response's CommandField.
        var responseField: UInt16
        /// Fragments of the request's data set are still to be sent.
        var sendingDataSet: Bool
        /// A response that arrived before the last data set fragment was sent.
        var earlyResponse: DIMSEMessage?
        /// A response whose data set is being received.
        var incoming: IncomingResponse?
        var cancel: CancelState = .none
        /// C-GET: the sub-operation the peer is sending us, if any.
        var inboundStore: InboundStore?
        /// C-GET: a final response that came while we still owed a C-STORE-RSP, reported after it.
        var finalAfterStore: DIMSEMessage?

        /// A C-GET: the peer may send C-STORE-RQs on this association until its final response.
        var receivesSubOperations: Bool { responseField == CommandField.cGetRSP.rawValue }
    }

    /// A C-STORE sub-operation of a C-GET, as the peer sends it (PS3.7 §9.1.3).
    enum InboundStore: Sendable, Hashable {
        /// Its data set is arriving, passed to the runtime fragment by fragment.
        case receiving(CStoreRQ, contextID: UInt8)
        /// Its data set is arriving and is dropped: the machine answers `status` on its own
        /// (the SOP class does not match the context's).
        case refusing(CStoreRQ, contextID: UInt8, status: DIMSEStatus, errorComment: String)
        /// The data set is complete; the runtime's ``RequestorStateMachine/storeResponded(status:errorComment:)`` is awaited.
        /// The DIMSE timer is off meanwhile: the peer waits for us, not the other way round.
        case awaitingResponse(CStoreRQ, contextID: UInt8)
    }

    struct IncomingResponse: Sendable, Hashable {
        var message: DIMSEMessage
        var dataSet: ByteBuffer
    }

    /// C-CANCEL-RQ of the operation in progress (PS3.7 §9.3.2.3): at most one, and never
    /// inside the request's own data set (it would split its PDVs).
    enum CancelState: Sendable, Hashable {
        case none
        /// Asked for while the request's data set was being sent: goes after its last fragment.
        case deferred
        case sent
    }

    struct Established: Sendable, Hashable {
        var acceptedContexts: [UInt8: PresentationContext]
        var peerMaximumPDULength: UInt32
        var operation: Operation?
    }

    enum State: Sendable, Hashable {
        case idle
        case associating
        case established(Established)
        case releasing
        /// The association ended abnormally; later requests fail with this error.
        case failed(DICOMNetworkError)
        /// Released.
        case closed
    }

    var state: State = .idle
    private(set) var association = AssociationStateMachine()
    var assembler = DIMSEMessageAssembler()
    private let request: AssociateRQ
    /// Bound on one response's data set; beyond it the association is aborted.
    let maximumResponseDataSetLength: Int

    /// 16 MiB: identifiers are a few KiB; a Failed SOP Instance UID List of thousands of UIDs fits.
    static let defaultMaximumResponseDataSetLength = 16 << 20

    init(request: AssociateRQ, maximumResponseDataSetLength: Int = defaultMaximumResponseDataSetLength) {
        self.request = request
        self.maximumResponseDataSetLength = maximumResponseDataSetLength
    }

    // MARK: Inputs

    /// The TCP connection is up: send the A-ASSOCIATE-RQ (Evt1 then Evt2).
    mutating func connected() -> [Action] {
        guard case .idle = state else { return [] }
        state = .associating
        var actions = translate(association.handle(.associateRequestPrimitive(request)))  // Evt1 → AE-1
        actions.append(.startTimer(.association))
        return actions
    }

    mutating func pduReceived(_ pdu: PDU) -> [Action] {
        translate(association.handle(.pduReceived(pdu)))
    }

    /// The decoder threw (Evt19): abort with the error's reason.
    mutating func invalidPDUReceived(_ error: PDUDecodingError) -> [Action] {
        translate(association.handle(.invalidPDUReceived(error)), protocolErrorMessage: error.description)
    }

    /// Starts a DIMSE request. A data set, if announced by the command, follows through
    /// ``dataSetFragment(_:isLast:)``.
    mutating func operationRequested(_ message: DIMSEMessage, contextID: UInt8) -> [Action] {
        guard case .established(var established) = state else {
            return [.operationFailed(unusableError)]
        }
        guard established.operation == nil else {
            return [.operationFailed(.notEstablished("another operation is in progress on this association"))]
        }
        guard established.acceptedContexts[contextID] != nil else {
            return [.operationFailed(.init(code: .noAcceptedPresentationContext,
                                           message: "presentation context \(contextID) was not accepted"))]
        }
        let commandSet = message.commandSet
        guard let messageID = commandSet.uint16(.messageID), let field = commandSet.commandField,
              field & 0x8000 == 0
        else {
            return [.operationFailed(.notEstablished("not a DIMSE request"))]
        }
        established.operation = Operation(
            messageID: messageID, contextID: contextID, responseField: field | 0x8000,
            sendingDataSet: commandSet.hasDataSet, earlyResponse: nil)
        state = .established(established)
        var actions = sendCommand(commandSet, contextID: contextID,
                                  peerMaximumPDULength: established.peerMaximumPDULength)
        actions.append(.startTimer(.dimse))
        return actions
    }

    /// C-CANCEL-RQ for the operation in progress (C-FIND, C-MOVE, C-GET): sent once, on its
    /// context; the operation goes on until its final response (usually status Cancel). Nothing
    /// to cancel (none in progress, or it just ended) is not an error.
    mutating func cancelRequested() -> [Action] {
        guard case .established(var established) = state, var operation = established.operation,
              operation.cancel == .none
        else {
            return []
        }
        if operation.sendingDataSet {
            operation.cancel = .deferred
            established.operation = operation
            state = .established(established)
            return []
        }
        operation.cancel = .sent
        established.operation = operation
        state = .established(established)
        return sendCancel(for: operation, peerMaximumPDULength: established.peerMaximumPDULength)
    }

    /// The next fragment of the data set of the operation in progress: at most
    /// ``maximumDataFragmentLength`` bytes.
    mutating func dataSetFragment(_ bytes: ByteBuffer, isLast: Bool) -> [Action] {
        guard case .established(var established) = state, var operation = established.operation,
              operation.sendingDataSet
        else {
            return [.operationFailed(unusableError)]
        }
        let pdv = PresentationDataValue(contextID: operation.contextID, isCommand: false, isLast: isLast, data: bytes)
        var actions = translate(association.handle(.pDataRequestPrimitive(PDataTF(values: [pdv]))))
        guard case .established = state else { return actions }  // the send failed the association
        actions.append(.startTimer(.dimse))  // progress re-arms the DIMSE timeout
        if isLast {
            operation.sendingDataSet = false
            if operation.cancel == .deferred, operation.earlyResponse == nil {
                operation.cancel = .sent
                actions += sendCancel(for: operation, peerMaximumPDULength: established.peerMaximumPDULength)
                guard case .established = state else { return actions }
            }
            if let response = operation.earlyResponse {
                established.operation = nil
                state = .established(established)
                return actions + [.cancelTimer, .operationSucceeded(response)]
            }
        }
        established.operation = operation
        state = .established(established)
        return actions
    }

    /// A-RELEASE request (Evt11). Only when no operation is in progress.
    mutating func releaseRequested() -> [Action] {
        guard case .established(let established) = state else {
            if case .closed = state { return [.releaseSucceeded] }
            return [.releaseFailed(unusableError)]
        }
        guard established.operation == nil else {
            return [.releaseFailed(.notEstablished("cannot release while an operation is in progress"))]
        }
        state = .releasing
        return translate(association.handle(.releaseRequestPrimitive)) + [.startTimer(.association)]  // AR-1
    }

    /// A-ABORT request (Evt15) from the local user.
    mutating func abortRequested() -> [Action] {
        switch state {
        case .associating, .established, .releasing:
            let actions = translate(association.handle(.abortRequestPrimitive(.serviceUser)))  // AA-1
            return actions + fail(.abortedLocally)
        case .idle:
            state = .failed(.abortedLocally)
            return [.close]
        case .failed, .closed:
            return []
        }
    }

    mutating func timeoutFired(_ timer: Timer) -> [Action] {
        switch (timer, state) {
        case (.artim, _) where association.state == .awaitingTransportClose:
            return translate(association.handle(.artimExpired))  // Evt18 → AA-2
        case (.association, .associating), (.association, .releasing):
            return abort(with: .timedOut(state == .associating ? .association : .release))
        case (.dimse, .established(let established)) where established.operation != nil:
            if case .awaitingResponse = established.operation?.inboundStore {
                return []  // stale: we are the ones the peer waits for
            }
            return abort(with: .timedOut(.dimse))
        default:
            return []  // stale timer
        }
    }

    /// The TCP connection closed (Evt17).
    mutating func connectionClosed() -> [Action] {
        translate(association.handle(.transportClosed))
    }

    // MARK: Queries

    /// The largest data set fragment one P-DATA-TF may carry for the peer.
    var maximumDataFragmentLength: Int {
        guard case .established(let established) = state else { return 0 }
        return PDataTF.maximumDataFragmentLength(peerMaximumPDULength: established.peerMaximumPDULength)
    }

    // MARK: Upper Layer actions → runtime actions

    var unusableError: DICOMNetworkError {
        switch state {
        case .failed(let error): error
        case .closed: .released
        case .idle, .associating: .notEstablished("the association is not established yet")
        case .releasing: .notEstablished("the association is being released")
        case .established: .notEstablished("the association is established")
        }
    }

    mutating func translate(_ actions: [AssociationAction], protocolErrorMessage: String? = nil) -> [Action] {
        var result: [Action] = []
        for action in actions {
            switch action {
            case .send(let pdu):
                result.append(.write(pdu))
            case .openTransport:
                // AE-1: the runtime connects before the machine exists; confirm at once.
                result += translate(association.handle(.transportConnectConfirm))  // Evt2 → AE-2
            case .closeTransport:
                result.append(.close)
            case .startARTIM:
                result.append(.startTimer(.artim))
            case .stopARTIM:
                result.append(.cancelTimer)
            case .indicateAssociateAC(let ac):
                result += associationAccepted(ac)
            case .indicateAssociateRJ(let rj):
                result += fail(.rejected(rj))
            case .indicatePData(let pData):
                result += received(pData)
            case .indicateReleaseRQ:
                result += releaseIndicated()
            case .indicateReleaseConfirmed:
                result += releaseConfirmed()
            case .indicateAbort(let indication):
                switch indication {
                case .peerAborted(let abort): result += fail(.peerAborted(abort))
                case .transportClosed: result += fail(.connectionClosed)
                case .protocolError(let abort):
                    result += fail(.protocolError(protocolErrorMessage ?? "unexpected PDU", abort: abort))
                }
            case .indicateAssociateRQ:
                // Cannot happen in the requestor role (Evt6 is AA-8 outside Sta2).
                break
            case .eventNotAllowed(let event, let state):
                // A local primitive out of turn: fail whatever asked for it.
                result += fail(.notEstablished("\(event) not allowed in \(state)"))
            }
        }
        return result
    }

    mutating func associationAccepted(_ ac: AssociateAC) -> [Action] {
        var accepted: [UInt8: PresentationContext] = [:]
        for result in ac.presentationContexts where result.result == .acceptance {
            guard let proposal = request.presentationContexts.first(where: { $0.id == result.id }) else { continue }
            accepted[result.id] = PresentationContext(
                id: result.id, abstractSyntax: proposal.abstractSyntax, transferSyntax: result.transferSyntax)
        }
        state = .established(Established(
            acceptedContexts: accepted, peerMaximumPDULength: ac.userInformation.maximumLength, operation: nil))
        return [.cancelTimer, .associateSucceeded(ac, acceptedContexts: accepted)]
    }

    mutating func sendCommand(_ commandSet: CommandSet, contextID: UInt8,
                                      peerMaximumPDULength: UInt32) -> [Action] {
        var actions: [Action] = []
        for pData in PDataTF.fragments(of: commandSet.encoded(), contextID: contextID, isCommand: true,
                                       maximumPDULength: peerMaximumPDULength) {
            actions += translate(association.handle(.pDataRequestPrimitive(pData)))  // Evt9 → DT-1
        }
        return actions
    }

    mutating func sendCancel(for operation: Operation, peerMaximumPDULength: UInt32) -> [Action] {
        let cancel = CCancelRQ(messageIDBeingRespondedTo: operation.messageID)
        return sendCommand(cancel.commandSet, contextID: operation.contextID, peerMaximumPDULength: peerMaximumPDULength)
    }

    mutating func received(_ pData: PDataTF) -> [Action] {
        var actions: [Action] = []
        for value in pData.values {
            let events: [DIMSEAssemblyEvent]
            do {
                events = try assembler.receive(value)
            } catch {
                return actions + abort(with: .protocolError(error.description), reason: .unexpectedPDUParameter)
            }
            for event in events {
                switch event {
                case .command(let contextID, let commandSet):
                    actions += commandReceived(commandSet, contextID: contextID)
                case .dataFragment(_, let fragment, let isLast):
                    // The assembler checked that a command announced it, on the same context.
                    actions += dataFragmentReceived(fragment, isLast: isLast)
                }
                guard case .established = state else { return actions }
            }
        }
        return actions
    }

    mutating func commandReceived(_ commandSet: CommandSet, contextID: UInt8) -> [Action] {
        if commandSet.commandField == CommandField.cStoreRQ.rawValue {
            return storeRequestReceived(commandSet, contextID: contextID)
        }
        guard case .established(var established) = state, var operation = established.operation else {
            return abort(with: .protocolError("DIMSE message while no request is outstanding"),
                         reason: .unexpectedPDUParameter)
        }
        let message: DIMSEMessage
        do {
            message = try DIMSEMessage(commandSet: commandSet)
        } catch {
            return abort(with: .protocolError(error.description), reason: .unexpectedPDUParameter)
        }
        guard commandSet.commandField == operation.responseField,
              commandSet.uint16(.messageIDBeingRespondedTo) == operation.messageID,
              contextID == operation.contextID
        else {
            let field = commandSet.commandField.map { "0x" + String($0, radix: 16) } ?? "?"
            return abort(with: .protocolError(
                "unexpected DIMSE message \(field) on context \(contextID) while awaiting the response "
                    + "to message \(operation.messageID)"), reason: .unexpectedPDUParameter)
        }
        if commandSet.hasDataSet {
            // Reported once its data set is complete.
            operation.incoming = IncomingResponse(message: message, dataSet: ByteBuffer())
            established.operation = operation
            state = .established(established)
            return [.startTimer(.dimse)]
        }
        return responseReceived(message, dataSet: nil)
    }

    /// A-RELEASE-RQ from the peer: in a collision (Sta9) answer at once (AR-9); otherwise the
    /// acceptor is releasing on its own (Sta8, unusual): answer (AR-4) and end.
    mutating func releaseIndicated() -> [Action] {
        if association.state == .collisionRequestorAwaitingLocalResponse {
            return translate(association.handle(.releaseResponsePrimitive))  // Evt14 → AR-9
        }
        let error = DICOMNetworkError.notEstablished("the peer released the association")
        let pending = failPending(error)
        state = .failed(error)
        return pending + translate(association.handle(.releaseResponsePrimitive))  // Evt14 → AR-4
    }

    mutating func releaseConfirmed() -> [Action] {
        guard case .releasing = state else { return [] }
        state = .closed
        return [.cancelTimer, .releaseSucceeded]
    }

    /// Sends an A-ABORT (Evt15) and fails what is pending with `error`.
    mutating func abort(with error: DICOMNetworkError, reason: AAbort.Reason = .notSpecified) -> [Action] {
        let source: AAbort.Source = error.code == .protocolError ? .serviceProvider : .serviceUser
        let abortPDU = AAbort(source: source, reason: source == .serviceProvider ? reason : .notSpecified)
        let error = error.code == .protocolError ? DICOMNetworkError(
            code: error.code, message: error.message, abort: abortPDU) : error
        let pending = fail(error)
        return translate(association.handle(.abortRequestPrimitive(abortPDU))) + pending  // AA-1
    }

    /// Ends the association with `error` (once) and fails the pending request.
    mutating func fail(_ error: DICOMNetworkError) -> [Action] {
        switch state {
        case .failed, .closed:
            return []
        default:
            let actions = failPending(error)
            state = .failed(error)
            return actions
        }
    }

    func failPending(_ error: DICOMNetworkError) -> [Action] {
        switch state {
        case .idle, .failed, .closed: []
        case .associating: [.associateFailed(error)]
        case .established(let established):
            switch established.operation {
            case nil: []
            case let operation?:
                if case .receiving = operation.inboundStore { [.storeAbandoned, .operationFailed(error)] }
                else { [.operationFailed(error)] }
            }
        case .releasing: [.releaseFailed(error)]
        }
    }
}
