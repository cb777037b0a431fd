import NIOCore

// MARK: - Release, abort, sending, and the Upper Layer's actions

extension AcceptorStateMachine {
    /// A-RELEASE-RP only once the last response is out (PS3.8 §7.2: no release while busy).
    mutating func releaseIfIdle() -> [Action] {
        guard case .established(let established) = state, established.releaseRequested, established.isIdle else {
            return []
        }
        return translate(upperLayer.handle(.releaseResponsePrimitive))  // Evt14 → AR-4
            + end(.released)
    }

    mutating func releaseIndicated() -> [Action] {
        guard case .established(var established) = state else { return [] }
        established.releaseRequested = true
        state = .established(established)
        return releaseIfIdle()
    }

    mutating func protocolError(_ message: String) -> [Action] {
        [.protocolError(message)]
            + abort(source: .serviceProvider, reason: .unexpectedPDUParameter, because: message)
    }

    /// Sends an A-ABORT (Evt15) and ends the association.
    mutating func abort(source: AAbort.Source, reason: AAbort.Reason, because message: String) -> [Action] {
        let actions = translate(upperLayer.handle(.abortRequestPrimitive(AAbort(source: source, reason: reason))))
        return actions + end(.aborted(message))
    }

    /// Ends the association once: drops a C-STORE being received, fails what is outstanding.
    mutating func end(_ reason: AssociationEndReason) -> [Action] {
        let previous = state
        switch previous {
        case .ended: return []
        case .idle, .awaitingAssociateRQ, .negotiating:
            state = .ended
            return []
        case .established(let established):
            state = .ended
            var actions: [Action] = []
            if case .storeDataSet = established.inbound { actions.append(.abandonStore) }
            for messageID in established.subOperations.keys.sorted() {
                actions.append(.subOperationFailed(messageID: messageID, reason: "the association ended: \(reason)"))
            }
            return actions + [.associationEnded(established.association, reason)]
        }
    }

    mutating func send(_ message: DIMSEMessage, contextID: UInt8) -> [Action] {
        guard case .established(let established) = state else { return [] }
        var actions: [Action] = []
        for pData in PDataTF.fragments(of: message.commandSet.encoded(), contextID: contextID, isCommand: true,
                                       maximumPDULength: established.peerMaximumPDULength) {
            actions += translate(upperLayer.handle(.pDataRequestPrimitive(pData)))  // Evt9 → DT-1
        }
        return actions
    }

    /// Data set bytes as P-DATA-TF fragments; the last fragment is marked last only when `isLast`.
    mutating func sendData(_ bytes: ByteBuffer, contextID: UInt8, isLast: Bool,
                                   peerMaximum: UInt32) -> [Action] {
        var actions: [Action] = []
        for pData in PDataTF.fragments(of: bytes, contextID: contextID, isCommand: false, maximumPDULength: peerMaximum) {
            var pData = pData
            if !isLast { pData.values[0].isLast = false }
            actions += translate(upperLayer.handle(.pDataRequestPrimitive(pData)))
        }
        return actions
    }

    // MARK: Upper Layer actions → runtime actions

    mutating func translate(_ actions: [AssociationAction]) -> [Action] {
        var result: [Action] = []
        for action in actions {
            switch action {
            case .send(let pdu):
                result.append(.write(pdu))
            case .closeTransport:
                result.append(.close)
            case .startARTIM:
                result.append(.startTimer(.artim))
            case .stopARTIM:
                result.append(.cancelTimer(.artim))
            case .indicateAssociateRQ(let request):
                state = .negotiating(request)
                result.append(.decideAssociation(request))
            case .indicatePData(let pData):
                result += received(pData)
            case .indicateReleaseRQ:
                result += releaseIndicated()
            case .indicateAbort(let indication):
                result += end(.aborted("\(indication)"))
            case .eventNotAllowed(let event, let state):
                result.append(.eventNotAllowed(event, in: state))
            case .openTransport, .indicateAssociateAC, .indicateAssociateRJ, .indicateReleaseConfirmed:
                break  // requestor-side actions
            }
        }
        return result
    }

    static let sopClassMismatch = "SOP class differs from the presentation context's abstract syntax"
}

extension DIMSEMessage {
    /// The status of a response (nil for a request).
    var status: DIMSEStatus? {
        switch self {
        case .cEchoRSP(let rsp): rsp.status
        case .cStoreRSP(let rsp): rsp.status
        case .cFindRSP(let rsp): rsp.status
        case .cMoveRSP(let rsp): rsp.fields.status
        case .cGetRSP(let rsp): rsp.fields.status
        case .cEchoRQ, .cStoreRQ, .cFindRQ, .cMoveRQ, .cGetRQ, .cCancelRQ: nil
        }
    }
}
