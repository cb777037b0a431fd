import NIOCore

// MARK: - DIMSE

extension AcceptorStateMachine {
    mutating func received(_ pData: PDataTF) -> [Action] {
        var actions: [Action] = []
        for value in pData.values {
            let events: [DIMSEAssemblyEvent]
            do {
                events = try assembler.receive(value)
            } catch {
                return actions + protocolError("\(error)")
            }
            for event in events {
                switch event {
                case .command(let contextID, let commandSet):
                    actions += commandReceived(commandSet, contextID: contextID)
                case .dataFragment(_, let bytes, let isLast):
                    actions += dataReceived(bytes, isLast: isLast)
                }
                guard case .established = state else { return actions }
            }
        }
        return actions
    }

    private mutating func commandReceived(_ commandSet: CommandSet, contextID: UInt8) -> [Action] {
        guard case .established(var established) = state else { return [] }
        guard let presentation = established.association.acceptedContexts[contextID] else {
            return protocolError("command on presentation context \(contextID), which was not accepted")
        }
        let message: DIMSEMessage
        do {
            message = try DIMSEMessage(commandSet: commandSet)
        } catch {
            return protocolError("\(error)")
        }
        let association = established.association
        switch (message, established.inbound) {
        case (.cCancelRQ, _), (.cStoreRSP, _), (_, .none): break
        default:
            // One operation at a time (the window we negotiate): nothing new before the answer.
            return protocolError("DIMSE request while the previous one's data set is being received or stored")
        }
        switch message {
        case .cEchoRQ(let request):
            return [.verify(request, contextID: contextID, association: association)]
        case .cStoreRQ(let request):
            guard commandSet.hasDataSet else {
                // A C-STORE-RQ must carry a data set (PS3.7 §9.3.1.1).
                return send(.cStoreRSP(CStoreRSP(respondingTo: request, status: .cannotUnderstand)), contextID: contextID)
            }
            established.inbound = .storeDataSet(request, contextID: contextID, finishing: false)
            state = .established(established)
            if request.affectedSOPClassUID != presentation.abstractSyntax {
                return [.refuseStore(Refusal(status: .sopClassNotSupported, errorComment: Self.sopClassMismatch))]
            }
            return [.beginStore(request, transferSyntax: presentation.transferSyntax, association: association)]
        case .cFindRQ(let request):
            return identifierAnnounced(.find(request), sopClass: request.affectedSOPClassUID,
                                       hasDataSet: commandSet.hasDataSet, contextID: contextID, presentation: presentation)
        case .cMoveRQ(let request):
            return identifierAnnounced(.move(request), sopClass: request.affectedSOPClassUID,
                                       hasDataSet: commandSet.hasDataSet, contextID: contextID, presentation: presentation)
        case .cGetRQ(let request):
            return identifierAnnounced(.get(request), sopClass: request.affectedSOPClassUID,
                                       hasDataSet: commandSet.hasDataSet, contextID: contextID, presentation: presentation)
        case .cCancelRQ(let request):
            // PS3.7 §9.3.2.3: a C-CANCEL for an operation already finished is ignored.
            let messageID = request.messageIDBeingRespondedTo
            return established.operations.contains(messageID) ? [.cancelOperation(messageID: messageID)] : []
        case .cStoreRSP(let response):
            let messageID = response.messageIDBeingRespondedTo
            guard var operation = established.subOperations[messageID] else {
                return protocolError("C-STORE-RSP for message \(messageID), which is not outstanding")
            }
            if operation.sendingDataSet {
                // Answered before its data set was all sent: finish sending it so the stream stays valid.
                operation.earlyResponse = response
                established.subOperations[messageID] = operation
                state = .established(established)
                return []
            }
            established.subOperations[messageID] = nil
            state = .established(established)
            return [.subOperationAnswered(messageID: messageID, response)] + releaseIfIdle()
        default:
            let field = commandSet.commandField.map { String($0, radix: 16) } ?? "?"
            return protocolError("DIMSE message \(field) not expected on this association")
        }
    }

    private mutating func identifierAnnounced(_ command: QueryRetrieveRequest.Command, sopClass: String, hasDataSet: Bool,
                                              contextID: UInt8, presentation: PresentationContext) -> [Action] {
        guard case .established(var established) = state else { return [] }
        var reception = IdentifierReception(command: command, contextID: contextID,
                                            transferSyntax: presentation.transferSyntax, buffer: ByteBuffer())
        if sopClass != presentation.abstractSyntax {
            reception.refusal = Refusal(status: .sopClassNotSupported, errorComment: Self.sopClassMismatch)
        }
        guard hasDataSet else {
            // PS3.7 §9.3.2.1: the identifier is mandatory.
            reception.refusal = Refusal(status: .cannotUnderstand, errorComment: "request without an identifier")
            return identifierComplete(reception)
        }
        established.inbound = .identifier(reception)
        state = .established(established)
        return []
    }

    private mutating func dataReceived(_ bytes: ByteBuffer, isLast: Bool) -> [Action] {
        guard case .established(var established) = state else { return [] }
        switch established.inbound {
        case .identifier(var reception):
            established.inbound = .none  // (no copy-on-write of the buffer while appending)
            state = .established(established)
            var bytes = bytes
            if reception.buffer.readableBytes + bytes.readableBytes > configuration.maximumIdentifierLength {
                reception.refusal = Refusal(
                    status: .cannotUnderstand,
                    errorComment: "identifier larger than \(configuration.maximumIdentifierLength) bytes")
                reception.buffer.clear()
            } else if reception.refusal == nil {
                reception.buffer.writeBuffer(&bytes)
            }
            if isLast { return identifierComplete(reception) }
            established.inbound = .identifier(reception)
            state = .established(established)
            return []
        case .storeDataSet(let request, let contextID, finishing: false):
            if isLast {
                established.inbound = .storeDataSet(request, contextID: contextID, finishing: true)
                state = .established(established)
            }
            return [.storeData(bytes, isLast: isLast)]
        case .storeDataSet(_, _, finishing: true), .none:
            return protocolError("data set without a C-STORE-RQ")
        }
    }

    private mutating func identifierComplete(_ reception: IdentifierReception) -> [Action] {
        guard case .established(var established) = state else { return [] }
        let request = QueryRetrieveRequest(command: reception.command, contextID: reception.contextID,
                                           transferSyntax: reception.transferSyntax, identifier: reception.buffer)
        if let refusal = reception.refusal {
            let response = QueryRetrieveResponder.message(for: request, status: refusal.status,
                                                          errorComment: refusal.errorComment)
            return send(response, contextID: reception.contextID) + releaseIfIdle()
        }
        established.operations.insert(request.messageID)
        state = .established(established)
        return [.beginQueryRetrieve(request, association: established.association)]
    }
}
