import DICOMCore
import NIOCore
import Testing

@testable import DICOMNetwork

/// The acceptor's DIMSE layer without a socket: inputs in, actions out, chained.
@Suite struct AcceptorStateMachineTests {
    typealias Machine = AcceptorStateMachine
    static let findSOPClass = "1.2.840.10008.5.1.4.1.2.2.1"
    static let getSOPClass = "1.2.840.10008.5.1.4.1.2.2.3"

    /// Contexts 1 (Verification), 3 (CT Image Storage), 5 (Study Root FIND), 7 (Study Root GET).
    static let request = AssociateRQ(
        calledAETitle: "PASSERELLE", callingAETitle: "CT1",
        presentationContexts: [
            PresentationContextProposal(id: 1, abstractSyntax: Fixtures.verification, transferSyntaxes: [Fixtures.implicitLE]),
            PresentationContextProposal(id: 3, abstractSyntax: Fixtures.ctImageStorage, transferSyntaxes: [Fixtures.explicitLE]),
            PresentationContextProposal(id: 5, abstractSyntax: findSOPClass, transferSyntaxes: [Fixtures.implicitLE]),
            PresentationContextProposal(id: 7, abstractSyntax: getSOPClass, transferSyntaxes: [Fixtures.implicitLE]),
        ],
        userInformation: UserInformation(
            maximumLength: 16384,
            asynchronousOperationsWindow: AsynchronousOperationsWindow(maximumOperationsInvoked: 0,
                                                                       maximumOperationsPerformed: 0)))

    static let results = request.presentationContexts.map {
        PresentationContextResult(id: $0.id, result: .acceptance, transferSyntax: $0.transferSyntaxes[0])
    }

    static func machine(maximumIdentifierLength: Int = 1024 * 1024) -> Machine {
        Machine(configuration: .init(maximumPDULength: 32768, maximumIdentifierLength: maximumIdentifierLength),
                associationID: 42)
    }

    /// A machine with an established association.
    static func established(maximumIdentifierLength: Int = 1024 * 1024) -> Machine {
        var machine = machine(maximumIdentifierLength: maximumIdentifierLength)
        _ = machine.connected(peer: "127.0.0.1:4000")
        _ = machine.pduReceived(.associateRQ(request))
        _ = machine.associationAccepted(results, roleSelections: [])
        return machine
    }

    static func command(_ message: DIMSEMessage, contextID: UInt8) -> PDU {
        .pDataTF(PDataTF(values: [PresentationDataValue(contextID: contextID, isCommand: true, isLast: true,
                                                        data: message.commandSet.encoded())]))
    }

    static func data(_ bytes: [UInt8], contextID: UInt8, isLast: Bool) -> PDU {
        .pDataTF(PDataTF(values: [PresentationDataValue(contextID: contextID, isCommand: false, isLast: isLast,
                                                        data: ByteBuffer(bytes: bytes))]))
    }

    /// The DIMSE messages written by these actions.
    static func messages(_ actions: [Machine.Action]) throws -> [DIMSEMessage] {
        var assembler = DIMSEMessageAssembler()
        var messages: [DIMSEMessage] = []
        for case .write(.pDataTF(let pData)) in actions {
            for event in try assembler.receive(pData) {
                if case .command(_, let set) = event { messages.append(try DIMSEMessage(commandSet: set)) }
            }
        }
        return messages
    }

    static func isAbort(_ action: Machine.Action) -> Bool {
        if case .write(.abort) = action { true } else { false }
    }

    static func endReason(_ actions: [Machine.Action]) -> AssociationEndReason? {
        for case .associationEnded(_, let reason) in actions { return reason }
        return nil
    }

    // MARK: Negotiation

    @Test func negotiationAsksTheProviderAndAnswersWithItsDecision() throws {
        var machine = Self.machine()
        #expect(machine.connected(peer: "127.0.0.1:4000") == [.startTimer(.artim)])  // AE-5
        #expect(machine.pduReceived(.associateRQ(Self.request)) == [.cancelTimer(.artim), .decideAssociation(Self.request)])  // AE-6
        let actions = machine.associationAccepted(Self.results, roleSelections: [])  // AE-7
        guard actions.count == 1, case .write(.associateAC(let ac)) = actions[0] else {
            Issue.record("expected one A-ASSOCIATE-AC, got \(actions)")
            return
        }
        #expect(ac.userInformation.maximumLength == 32768)
        #expect(ac.userInformation.implementationClassUID == Implementation.classUID)
        // One operation at a time, said back when the requestor proposed a window.
        #expect(ac.userInformation.asynchronousOperationsWindow
                == AsynchronousOperationsWindow(maximumOperationsInvoked: 1, maximumOperationsPerformed: 1))
        let association = try #require(machine.association)
        #expect(association.callingAETitle == "CT1" && association.peer == "127.0.0.1:4000" && association.id == 42)
        #expect(association.acceptedContexts[3]?.transferSyntax == Fixtures.explicitLE)
        #expect(machine.peerMaximumPDULength == 16384)
    }

    @Test func aRejectionIsSentAndNothingEnds() {
        var machine = Self.machine()
        _ = machine.connected(peer: "p")
        _ = machine.pduReceived(.associateRQ(Self.request))
        let rejection = AssociateRJ(result: .rejectedPermanent, reason: .serviceUser(.calledAETitleNotRecognized))
        // AE-8: the rejection, then ARTIM until the peer closes; no association, so no end to tell.
        #expect(machine.associationRejected(rejection) == [.write(.associateRJ(rejection)), .startTimer(.artim)])
        #expect(machine.connectionClosed().allSatisfy { Self.endReason([$0]) == nil })
    }

    // MARK: C-ECHO and C-STORE

    @Test func echoAsksTheProviderThenAnswers() throws {
        var machine = Self.established()
        let echo = CEchoRQ(messageID: 1, affectedSOPClassUID: Fixtures.verification)
        let association = try #require(machine.association)
        #expect(machine.pduReceived(Self.command(.cEchoRQ(echo), contextID: 1))
                == [.verify(echo, contextID: 1, association: association)])
        let response = machine.respond(.cEchoRSP(CEchoRSP(respondingTo: echo)), contextID: 1)
        #expect(try Self.messages(response) == [.cEchoRSP(CEchoRSP(respondingTo: echo))])
    }

    @Test func storeStreamsItsDataSetThenAnswersOnceDurable() throws {
        var machine = Self.established()
        let store = CStoreRQ(messageID: 3, affectedSOPClassUID: Fixtures.ctImageStorage, affectedSOPInstanceUID: "1.2.3")
        let association = try #require(machine.association)
        #expect(machine.pduReceived(Self.command(.cStoreRQ(store), contextID: 3))
                == [.beginStore(store, transferSyntax: Fixtures.explicitLE, association: association)])
        #expect(machine.pduReceived(Self.data([1, 2], contextID: 3, isLast: false))
                == [.storeData(ByteBuffer(bytes: [1, 2]), isLast: false)])
        #expect(machine.pduReceived(Self.data([3], contextID: 3, isLast: true))
                == [.storeData(ByteBuffer(bytes: [3]), isLast: true)])
        // Silence while the instance is made durable is ours, not the peer's.
        #expect(machine.readTimeoutFired() == [])
        let answer = machine.storeFinished(StoreOutcome(status: .success))
        #expect(try Self.messages(answer) == [.cStoreRSP(CStoreRSP(respondingTo: store, status: .success))])
        #expect(machine.storeFinished(StoreOutcome(status: .success)) == [])  // answered once
    }

    @Test func storeOfAnotherSOPClassIsDrainedAndRefused() {
        var machine = Self.established()
        let store = CStoreRQ(messageID: 4, affectedSOPClassUID: "1.2.840.10008.5.1.4.1.1.4", affectedSOPInstanceUID: "1.2.4")
        #expect(machine.pduReceived(Self.command(.cStoreRQ(store), contextID: 3)) == [
            .refuseStore(.init(status: .sopClassNotSupported, errorComment: Machine.sopClassMismatch)),
        ])
    }

    @Test func storeWithoutDataSetIsAnsweredWithoutTheProvider() throws {
        var machine = Self.established()
        let store = CStoreRQ(messageID: 5, affectedSOPClassUID: Fixtures.ctImageStorage, affectedSOPInstanceUID: "1.2.5")
        let commandSet = CommandSet.make(.cStoreRQ, hasDataSet: false, [
            (.messageID, .uint16(5)), (.affectedSOPClassUID, .string(Fixtures.ctImageStorage)),
            (.affectedSOPInstanceUID, .string("1.2.5")), (.priority, .uint16(0)),
        ])
        let pdu = PDU.pDataTF(PDataTF(values: [PresentationDataValue(contextID: 3, isCommand: true, isLast: true,
                                                                     data: commandSet.encoded())]))
        let actions = machine.pduReceived(pdu)
        #expect(try Self.messages(actions) == [.cStoreRSP(CStoreRSP(respondingTo: store, status: .cannotUnderstand))])
        #expect(actions.count == 1)
    }

    // MARK: Protocol errors

    @Test(arguments: [
        ("a command on a context not accepted", [command(.cEchoRQ(CEchoRQ(messageID: 1, affectedSOPClassUID: Fixtures.verification)), contextID: 9)]),
        ("a data set without a command", [data([1], contextID: 3, isLast: true)]),
        ("a request while a data set is being stored", [
            command(.cStoreRQ(CStoreRQ(messageID: 1, affectedSOPClassUID: Fixtures.ctImageStorage, affectedSOPInstanceUID: "1")), contextID: 3),
            data([1], contextID: 3, isLast: true),
            command(.cEchoRQ(CEchoRQ(messageID: 2, affectedSOPClassUID: Fixtures.verification)), contextID: 1),
        ]),
        ("a C-STORE-RSP nobody waits for", [
            command(.cStoreRSP(CStoreRSP(messageIDBeingRespondedTo: 9, affectedSOPClassUID: Fixtures.ctImageStorage,
                                         affectedSOPInstanceUID: "1", status: .success)), contextID: 3),
        ]),
        ("a response where a request is expected", [
            command(.cEchoRSP(CEchoRSP(respondingTo: CEchoRQ(messageID: 1, affectedSOPClassUID: Fixtures.verification))), contextID: 1),
        ]),
    ] as [(String, [PDU])])
    func protocolErrorsAbortAndEnd(_ case: String, _ pdus: [PDU]) {
        var machine = Self.established()
        var actions: [Machine.Action] = []
        for pdu in pdus { actions = machine.pduReceived(pdu) }
        #expect(actions.contains { if case .protocolError = $0 { true } else { false } }, "\(`case`)")
        #expect(actions.contains(where: Self.isAbort), "\(`case`)")
        guard case .aborted = Self.endReason(actions) else {
            Issue.record("\(`case`): the association did not end: \(actions)")
            return
        }
        #expect(machine.pduReceived(Self.data([1], contextID: 3, isLast: true)).allSatisfy { Self.endReason([$0]) == nil })
    }

    @Test func anAbortMidDataSetAbandonsTheInstance() throws {
        var machine = Self.established()
        let store = CStoreRQ(messageID: 3, affectedSOPClassUID: Fixtures.ctImageStorage, affectedSOPInstanceUID: "1.2.3")
        _ = machine.pduReceived(Self.command(.cStoreRQ(store), contextID: 3))
        _ = machine.pduReceived(Self.data([1, 2], contextID: 3, isLast: false))
        let association = try #require(machine.association)
        let actions = machine.pduReceived(.abort(AAbort(source: .serviceUser)))
        #expect(actions.contains(.abandonStore))
        #expect(actions.contains(.associationEnded(
            association, .aborted("\(AssociationAbortIndication.peerAborted(AAbort(source: .serviceUser)))"))))
        #expect(actions.last == .close)  // AA-3
    }

    // MARK: Query/retrieve

    func identifier(_ count: Int = 20) -> [UInt8] { Array(repeating: 0x41, count: count) }

    @Test func identifierIsGatheredThenTheOperationStarts() throws {
        var machine = Self.established()
        let find = CFindRQ(messageID: 7, affectedSOPClassUID: Self.findSOPClass)
        let association = try #require(machine.association)
        #expect(machine.pduReceived(Self.command(.cFindRQ(find), contextID: 5)) == [])
        #expect(machine.pduReceived(Self.data(identifier(10), contextID: 5, isLast: false)) == [])
        let expected = QueryRetrieveRequest(command: .find(find), contextID: 5, transferSyntax: Fixtures.implicitLE,
                                            identifier: ByteBuffer(bytes: identifier(15)))
        #expect(machine.pduReceived(Self.data(identifier(5), contextID: 5, isLast: true))
                == [.beginQueryRetrieve(expected, association: association)])
        // Pending answers go out; the final one ends the operation; later ones are dropped.
        let pending = CFindRSP(messageIDBeingRespondedTo: 7, affectedSOPClassUID: Self.findSOPClass, status: .pending,
                               hasIdentifier: true)
        let pendingActions = machine.respond(.cFindRSP(pending), identifier: ByteBuffer(bytes: identifier(4)),
                                             messageID: 7, contextID: 5)
        #expect(try Self.messages(pendingActions) == [.cFindRSP(pending)])
        #expect(pendingActions.count == 2)  // the command and its identifier
        let final = CFindRSP(messageIDBeingRespondedTo: 7, affectedSOPClassUID: Self.findSOPClass, status: .success,
                             hasIdentifier: false)
        let finalActions = machine.respond(.cFindRSP(final), messageID: 7, contextID: 5)
        #expect(finalActions.last == .operationEnded(messageID: 7))
        #expect(machine.respond(.cFindRSP(final), messageID: 7, contextID: 5) == [])
    }

    @Test func tooLargeAnIdentifierIsRefusedWithoutTheProvider() throws {
        var machine = Self.established(maximumIdentifierLength: 8)
        let find = CFindRQ(messageID: 8, affectedSOPClassUID: Self.findSOPClass)
        _ = machine.pduReceived(Self.command(.cFindRQ(find), contextID: 5))
        _ = machine.pduReceived(Self.data(identifier(6), contextID: 5, isLast: false))
        let actions = machine.pduReceived(Self.data(identifier(6), contextID: 5, isLast: true))
        let messages = try Self.messages(actions)
        guard messages.count == 1, case .cFindRSP(let rsp) = messages[0] else {
            Issue.record("expected one C-FIND-RSP, got \(actions)")
            return
        }
        #expect(rsp.status == .cannotUnderstand)
        #expect(rsp.errorComment == "identifier larger than 8 bytes")
        #expect(!actions.contains { if case .beginQueryRetrieve = $0 { true } else { false } })
    }

    @Test func cancelReachesARunningOperationOnly() {
        var machine = Self.established()
        _ = machine.pduReceived(Self.command(.cFindRQ(CFindRQ(messageID: 9, affectedSOPClassUID: Self.findSOPClass)), contextID: 5))
        _ = machine.pduReceived(Self.data(identifier(), contextID: 5, isLast: true))
        #expect(machine.pduReceived(Self.command(.cCancelRQ(CCancelRQ(messageIDBeingRespondedTo: 8)), contextID: 5)) == [])
        #expect(machine.pduReceived(Self.command(.cCancelRQ(CCancelRQ(messageIDBeingRespondedTo: 9)), contextID: 5))
                == [.cancelOperation(messageID: 9)])
    }

    @Test func releaseWaitsForTheLastResponse() throws {
        var machine = Self.established()
        let association = try #require(machine.association)
        _ = machine.pduReceived(Self.command(.cFindRQ(CFindRQ(messageID: 2, affectedSOPClassUID: Self.findSOPClass)), contextID: 5))
        _ = machine.pduReceived(Self.data(identifier(), contextID: 5, isLast: true))
        #expect(machine.pduReceived(.releaseRQ) == [])  // busy: PS3.8 §7.2
        #expect(machine.readTimeoutFired() == [])  // answering a query is not idleness
        let final = CFindRSP(messageIDBeingRespondedTo: 2, affectedSOPClassUID: Self.findSOPClass, status: .success,
                             hasIdentifier: false)
        let actions = machine.respond(.cFindRSP(final), messageID: 2, contextID: 5)
        #expect(Array(actions.suffix(4)) == [
            .operationEnded(messageID: 2), .write(.releaseRP), .startTimer(.artim),
            .associationEnded(association, .released),
        ])
    }

    @Test func getSubOperationsAreNumberedSentAndAnswered() throws {
        var machine = Self.established()
        let get = CGetRQ(messageID: 11, affectedSOPClassUID: Self.getSOPClass)
        _ = machine.pduReceived(Self.command(.cGetRQ(get), contextID: 7))
        _ = machine.pduReceived(Self.data(identifier(), contextID: 7, isLast: true))
        let (first, started) = machine.subOperationRequested(sopClassUID: Fixtures.ctImageStorage, sopInstanceUID: "1.9",
                                                             contextID: 3)
        #expect(first == 1)
        #expect(try Self.messages(started) == [.cStoreRQ(CStoreRQ(messageID: 1, affectedSOPClassUID: Fixtures.ctImageStorage,
                                                                  affectedSOPInstanceUID: "1.9"))])
        // A block larger than the peer's maximum is cut into fragments; only the very last is marked last.
        let block = machine.subOperationData(messageID: 1, ByteBuffer(repeating: 7, count: 40_000), isLast: false)
        let lastFlags = block.compactMap { action -> Bool? in
            if case .write(.pDataTF(let pData)) = action { pData.values[0].isLast } else { nil }
        }
        #expect(lastFlags == [false, false, false])
        // The requestor answers before the data set is all sent: kept until the last block.
        let response = CStoreRSP(messageIDBeingRespondedTo: 1, affectedSOPClassUID: Fixtures.ctImageStorage,
                                 affectedSOPInstanceUID: "1.9", status: .success)
        #expect(machine.pduReceived(Self.command(.cStoreRSP(response), contextID: 3)) == [])
        let last = machine.subOperationData(messageID: 1, ByteBuffer(bytes: [1]), isLast: true)
        #expect(last.last == .subOperationAnswered(messageID: 1, response))
        #expect(machine.subOperationRequested(sopClassUID: Fixtures.ctImageStorage, sopInstanceUID: "2.9",
                                              contextID: 3).messageID == 2)
    }

    @Test func subOperationsFailWhenTheAssociationEnds() throws {
        var machine = Self.established()
        _ = machine.pduReceived(Self.command(.cGetRQ(CGetRQ(messageID: 11, affectedSOPClassUID: Self.getSOPClass)), contextID: 7))
        _ = machine.pduReceived(Self.data(identifier(), contextID: 7, isLast: true))
        _ = machine.subOperationRequested(sopClassUID: Fixtures.ctImageStorage, sopInstanceUID: "1.9", contextID: 3)
        let actions = machine.connectionClosed()
        #expect(actions.contains { if case .subOperationFailed(messageID: 1, _) = $0 { true } else { false } })
        #expect(machine.subOperationData(messageID: 1, ByteBuffer(bytes: [1]), isLast: true)
                == [.subOperationFailed(messageID: 1, reason: "the association ended")])
        #expect(machine.subOperationRequested(sopClassUID: Fixtures.ctImageStorage, sopInstanceUID: "2", contextID: 3).messageID == nil)
    }

    @Test func unreadableSubOperationFileAbortsAsProvider() {
        var machine = Self.established()
        let actions = machine.subOperationFileFailed("EIO")
        #expect(actions.first == .write(.abort(AAbort(source: .serviceProvider, reason: .notSpecified))))
        #expect(Self.endReason(actions) == .aborted("file read failed: EIO"))
    }

    // MARK: Timers and the end

    @Test func idleSilenceAbortsAnIdleAssociation() {
        var machine = Self.established()
        let actions = machine.readTimeoutFired()
        #expect(actions.first == .write(.abort(AAbort(source: .serviceUser, reason: .notSpecified))))
        #expect(Self.endReason(actions) == .aborted("idle timeout"))
    }

    @Test func aPeerSilentMidRequestIsIdle() {
        var machine = Self.established()
        _ = machine.pduReceived(Self.command(.cFindRQ(CFindRQ(messageID: 3, affectedSOPClassUID: Self.findSOPClass)), contextID: 5))
        _ = machine.pduReceived(Self.data(identifier(4), contextID: 5, isLast: false))
        // Half an identifier, then nothing: the peer owes us the rest, we are not working.
        #expect(Self.endReason(machine.readTimeoutFired()) == .aborted("idle timeout"))
    }

    @Test func silenceBeforeTheRequestIsARTIMExpiry() {
        var machine = Self.machine()
        _ = machine.connected(peer: "p")
        #expect(machine.readTimeoutFired() == [.cancelTimer(.artim), .close])  // Sta2 + Evt18: AA-2
    }

    @Test func shutdownAbortsAnEstablishedAssociation() {
        var machine = Self.established()
        let actions = machine.shutdownRequested()
        #expect(actions.first == .write(.abort(AAbort(source: .serviceUser, reason: .notSpecified))))
        #expect(actions.last == .close)
        #expect(Self.endReason(actions) == .aborted("shutting down"))
        #expect(machine.connectionClosed().allSatisfy { Self.endReason([$0]) == nil })  // ended once
    }
}
