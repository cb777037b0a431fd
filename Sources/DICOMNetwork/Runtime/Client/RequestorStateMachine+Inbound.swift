import NIOCore

/// The requestor's inbound traffic during an operation: the data sets of responses (C-FIND
/// identifiers, a C-MOVE/C-GET final list), assembled whole under a cap, and the C-STORE
/// sub-operations of a C-GET, passed through fragment by fragment and answered when the
/// runtime's receiver has.
extension RequestorStateMachine {
    /// The receiver of the C-GET sub-operation whose data set is complete has answered: writes
    /// its C-STORE-RSP (PS3.7 §9.3.1.2: MessageIDBeingRespondedTo and the affected SOP class and
    /// instance of the request) on the request's context, and re-arms the DIMSE timer — or, if
    /// the C-GET's final response came meanwhile, reports it. Nothing when no answer is owed
    /// (the association ended meanwhile).
    mutating func storeResponded(status: DIMSEStatus, errorComment: String?) -> [Action] {
        guard case .established(var established) = state, var operation = established.operation,
              case .awaitingResponse(let request, let contextID) = operation.inboundStore
        else {
            return []
        }
        operation.inboundStore = nil
        let final = operation.finalAfterStore
        established.operation = final == nil ? operation : nil
        state = .established(established)
        let response = CStoreRSP(respondingTo: request, status: status, errorComment: errorComment)
        let actions = sendCommand(response.commandSet, contextID: contextID,
                                  peerMaximumPDULength: established.peerMaximumPDULength)
        guard case .established = state else { return actions }
        if let final { return actions + [.cancelTimer, .operationSucceeded(final)] }
        return actions + [.startTimer(.dimse)]
    }

    /// A C-STORE-RQ from the peer: a C-GET sub-operation (PS3.4 §C.4.3.3). Outside a C-GET, on a
    /// context we did not accept, or before our answer to the previous one, it is a protocol
    /// error (A-ABORT): the stream cannot be trusted. On an accepted context of another SOP
    /// class it is refused (0x0122, its data set dropped), as an SCP would.
    mutating func storeRequestReceived(_ commandSet: CommandSet, contextID: UInt8) -> [Action] {
        guard case .established(var established) = state, var operation = established.operation,
              operation.receivesSubOperations, !operation.sendingDataSet
        else {
            return abort(with: .protocolError("C-STORE-RQ while no C-GET is outstanding"),
                         reason: .unexpectedPDUParameter)
        }
        let request: CStoreRQ
        do {
            request = try CStoreRQ(commandSet: commandSet)
        } catch {
            return abort(with: .protocolError(error.description), reason: .unexpectedPDUParameter)
        }
        if case .awaitingResponse(let previous, _) = operation.inboundStore {
            return abort(with: .protocolError(
                "C-STORE-RQ \(request.messageID) before our C-STORE-RSP to message \(previous.messageID)"),
                         reason: .unexpectedPDUParameter)
        }
        guard let presentation = established.acceptedContexts[contextID] else {
            return abort(with: .protocolError(
                "C-STORE-RQ on presentation context \(contextID), which was not accepted"), reason: .unexpectedPDUParameter)
        }
        guard commandSet.hasDataSet else {
            // A C-STORE-RQ must carry a data set (PS3.7 §9.3.1.1): answered at once.
            let response = CStoreRSP(respondingTo: request, status: .cannotUnderstand,
                                     errorComment: "C-STORE-RQ without a data set")
            return sendCommand(response.commandSet, contextID: contextID,
                               peerMaximumPDULength: established.peerMaximumPDULength) + [.startTimer(.dimse)]
        }
        if request.affectedSOPClassUID != presentation.abstractSyntax {
            operation.inboundStore = .refusing(
                request, contextID: contextID, status: .sopClassNotSupported,
                errorComment: "SOP class \(request.affectedSOPClassUID) on a context of \(presentation.abstractSyntax)")
            established.operation = operation
            state = .established(established)
            return [.startTimer(.dimse)]
        }
        operation.inboundStore = .receiving(request, contextID: contextID)
        established.operation = operation
        state = .established(established)
        return [.startTimer(.dimse), .storeRequested(request, contextID: contextID)]
    }

    /// A fragment of the data set of the inbound C-STORE-RQ in progress: passed through.
    mutating func storeFragmentReceived(_ fragment: ByteBuffer, isLast: Bool) -> [Action] {
        guard case .established(var established) = state, var operation = established.operation else { return [] }
        switch operation.inboundStore {
        case .receiving(let request, let contextID):
            guard isLast else { return [.startTimer(.dimse), .storeFragment(fragment, isLast: false)] }
            operation.inboundStore = .awaitingResponse(request, contextID: contextID)
            established.operation = operation
            state = .established(established)
            return [.cancelTimer, .storeFragment(fragment, isLast: true)]
        case .refusing(let request, let contextID, let status, let errorComment):
            guard isLast else { return [.startTimer(.dimse)] }
            operation.inboundStore = nil
            established.operation = operation
            state = .established(established)
            let response = CStoreRSP(respondingTo: request, status: status, errorComment: errorComment)
            return sendCommand(response.commandSet, contextID: contextID,
                               peerMaximumPDULength: established.peerMaximumPDULength) + [.startTimer(.dimse)]
        case .awaitingResponse, nil:
            return abort(with: .protocolError("data set while no response is outstanding"),
                         reason: .unexpectedPDUParameter)
        }
    }

    mutating func dataFragmentReceived(_ fragment: ByteBuffer, isLast: Bool) -> [Action] {
        if case .established(let established) = state, let operation = established.operation,
           operation.incoming == nil, operation.inboundStore != nil {
            return storeFragmentReceived(fragment, isLast: isLast)
        }
        guard case .established(var established) = state, var operation = established.operation,
              var incoming = operation.incoming
        else {
            return abort(with: .protocolError("data set while no response is outstanding"),
                         reason: .unexpectedPDUParameter)
        }
        guard incoming.dataSet.readableBytes + fragment.readableBytes <= maximumResponseDataSetLength else {
            return abort(with: .protocolError(
                "response data set exceeds \(maximumResponseDataSetLength) bytes"), reason: .unexpectedPDUParameter)
        }
        // The state lets go of the buffer first, so that appending grows it in place.
        operation.incoming = nil
        established.operation = operation
        state = .established(established)
        if isLast, incoming.dataSet.readableBytes == 0 {
            return responseReceived(incoming.message, dataSet: fragment)  // one fragment, the usual case: no copy
        }
        var fragment = fragment
        incoming.dataSet.writeBuffer(&fragment)
        guard isLast else {
            operation.incoming = incoming
            established.operation = operation
            state = .established(established)
            return [.startTimer(.dimse)]
        }
        return responseReceived(incoming.message, dataSet: incoming.dataSet)
    }

    /// A complete response (command and data set) to the operation in progress.
    mutating func responseReceived(_ message: DIMSEMessage, dataSet: ByteBuffer?) -> [Action] {
        guard case .established(var established) = state, var operation = established.operation else { return [] }
        let owesStoreResponse = if case .awaitingResponse = operation.inboundStore { true } else { false }
        if let status = message.commandSet.uint16(.status), DIMSEStatus(status).kind == .pending {
            // The final one follows. (While the peer waits for our C-STORE-RSP, no timer.)
            return (owesStoreResponse ? [] : [.startTimer(.dimse)]) + [.operationPending(message, dataSet: dataSet)]
        }
        if owesStoreResponse {
            // C-GET's final response before our last C-STORE-RSP: reported right after it.
            operation.finalAfterStore = message
            established.operation = operation
            state = .established(established)
            return []
        }
        if operation.sendingDataSet {
            // The peer answered before the whole data set was sent (e.g. an early failure):
            // finish sending it so the stream stays valid, then report the response.
            operation.earlyResponse = message
            established.operation = operation
            state = .established(established)
            return []
        }
        established.operation = nil
        state = .established(established)
        return [.cancelTimer, .operationSucceeded(message)]
    }
}
