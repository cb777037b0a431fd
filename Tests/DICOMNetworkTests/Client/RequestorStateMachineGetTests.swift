import DICOMCore
import NIOCore
import Testing

@testable import DICOMNetwork

/// C-GET on the requestor machine: the peer's C-STORE sub-operations on the same association,
/// our C-STORE-RSPs, the pending and final C-GET-RSPs, and what is refused or aborted.
struct RequestorStateMachineGetTests {
    typealias Machine = RequestorStateMachine

    static let get = UIDRegistry.studyRootQueryRetrieveInformationModelGetSOPClassUID
    static let find = UIDRegistry.studyRootQueryRetrieveInformationModelFindSOPClassUID
    static let mrImageStorage = "1.2.840.10008.5.1.4.1.1.4"

    /// 1: GET, 3: CT storage (accepted), 5: MR storage (rejected), 7: FIND.
    static let request = AssociateRQ(
        calledAETitle: "QRSCP", callingAETitle: "PASSERELLE",
        presentationContexts: [
            PresentationContextProposal(id: 1, abstractSyntax: get, transferSyntaxes: [Fixtures.explicitLE]),
            PresentationContextProposal(id: 3, abstractSyntax: Fixtures.ctImageStorage, transferSyntaxes: [Fixtures.explicitLE]),
            PresentationContextProposal(id: 5, abstractSyntax: mrImageStorage, transferSyntaxes: [Fixtures.explicitLE]),
            PresentationContextProposal(id: 7, abstractSyntax: find, transferSyntaxes: [Fixtures.explicitLE]),
        ],
        userInformation: UserInformation(
            maximumLength: 262144,
            roleSelections: [RoleSelection(sopClassUID: Fixtures.ctImageStorage, scuRole: false, scpRole: true)]))

    static func established() -> Machine {
        var machine = Machine(request: request)
        _ = machine.connected()
        _ = machine.pduReceived(.associateAC(AssociateAC(
            calledAETitle: "QRSCP", callingAETitle: "PASSERELLE",
            presentationContexts: [
                PresentationContextResult(id: 1, result: .acceptance, transferSyntax: Fixtures.explicitLE),
                PresentationContextResult(id: 3, result: .acceptance, transferSyntax: Fixtures.explicitLE),
                PresentationContextResult(id: 5, result: .abstractSyntaxNotSupported, transferSyntax: Fixtures.explicitLE),
                PresentationContextResult(id: 7, result: .acceptance, transferSyntax: Fixtures.explicitLE),
            ],
            userInformation: UserInformation(maximumLength: 16384))))
        return machine
    }

    static let getRQ = DIMSEMessage.cGetRQ(CGetRQ(messageID: 7, affectedSOPClassUID: get))
    static let identifier = RequestorStateMachineQueryTests.identifier

    static func storeRQ(_ messageID: UInt16, instance: String, sopClass: String = Fixtures.ctImageStorage) -> CStoreRQ {
        CStoreRQ(messageID: messageID, affectedSOPClassUID: sopClass, affectedSOPInstanceUID: instance)
    }

    static func storeRSP(_ request: CStoreRQ, _ status: DIMSEStatus, comment: String? = nil) -> DIMSEMessage {
        .cStoreRSP(CStoreRSP(respondingTo: request, status: status, errorComment: comment))
    }

    static func getRSP(_ status: DIMSEStatus, remaining: UInt16?, completed: UInt16, failed: UInt16 = 0) -> DIMSEMessage {
        .cGetRSP(CGetRSP(RetrieveResponseFields(
            messageIDBeingRespondedTo: 7, affectedSOPClassUID: get, status: status, remaining: remaining,
            completed: completed, failed: failed, warning: 0)))
    }

    static func command(_ message: DIMSEMessage, contextID: UInt8) -> PresentationDataValue {
        RequestorStateMachineQueryTests.commandPDV(message, contextID: contextID)
    }

    static func data(_ bytes: [UInt8], contextID: UInt8 = 3, isLast: Bool) -> PresentationDataValue {
        RequestorStateMachineQueryTests.dataPDV(bytes, contextID: contextID, isLast: isLast)
    }

    static func pData(_ values: PresentationDataValue...) -> PDU {
        .pDataTF(PDataTF(values: values))
    }

    static func write(_ message: DIMSEMessage, contextID: UInt8) -> Machine.Action {
        RequestorStateMachineTests.commandWrite(message, contextID: contextID)
    }

    /// A machine whose C-GET (message 7, context 1) and identifier are sent.
    static func getting() -> Machine {
        var machine = established()
        #expect(machine.operationRequested(getRQ, contextID: 1) == [write(getRQ, contextID: 1), .startTimer(.dimse)])
        #expect(machine.dataSetFragment(identifier, isLast: true) == [
            .write(pData(PresentationDataValue(contextID: 1, isCommand: false, isLast: true, data: identifier))),
            .startTimer(.dimse),
        ])
        return machine
    }

    static let protocolAbort = Machine.Action.write(.abort(AAbort(source: .serviceProvider, reason: .unexpectedPDUParameter)))

    /// The last action must fail the operation with a protocol error saying `words`.
    static func expectProtocolFailure(_ actions: [Machine.Action], saying words: String,
                                      sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(actions.first == protocolAbort, sourceLocation: sourceLocation)
        guard case .operationFailed(let error) = actions.last else {
            Issue.record("expected a failure, got \(actions)", sourceLocation: sourceLocation)
            return
        }
        #expect(error.code == .protocolError, sourceLocation: sourceLocation)
        #expect(error.message.contains(words), "\(error.message)", sourceLocation: sourceLocation)
    }

    @Test func twoSubOperationsThenTheFinalResponse() {
        var machine = Self.getting()

        // First sub-operation: the command, then its data set over three P-DATA-TFs, passed through.
        let first = Self.storeRQ(1, instance: "2.25.1")
        #expect(machine.pduReceived(Self.pData(Self.command(.cStoreRQ(first), contextID: 3))) == [
            .startTimer(.dimse), .storeRequested(first, contextID: 3),
        ])
        #expect(machine.pduReceived(Self.pData(Self.data([1, 2, 3], isLast: false))) == [
            .startTimer(.dimse), .storeFragment(ByteBuffer(bytes: [1, 2, 3]), isLast: false),
        ])
        #expect(machine.pduReceived(Self.pData(Self.data([4, 5], isLast: false))) == [
            .startTimer(.dimse), .storeFragment(ByteBuffer(bytes: [4, 5]), isLast: false),
        ])
        // The last fragment: the peer now waits for us, so no DIMSE timer.
        #expect(machine.pduReceived(Self.pData(Self.data([6], isLast: true))) == [
            .cancelTimer, .storeFragment(ByteBuffer(bytes: [6]), isLast: true),
        ])
        // Still busy: no release, no other operation.
        guard case .releaseFailed = machine.releaseRequested().first else {
            Issue.record("release allowed during a C-GET")
            return
        }
        // Our C-STORE-RSP, on the sub-operation's context, naming its request.
        #expect(machine.storeResponded(status: .success, errorComment: nil) == [
            Self.write(Self.storeRSP(first, .success), contextID: 3), .startTimer(.dimse),
        ])
        #expect(machine.storeResponded(status: .success, errorComment: nil) == [], "nothing owed any more")

        let progress = Self.getRSP(.pending, remaining: 1, completed: 1)
        #expect(machine.pduReceived(Self.pData(Self.command(progress, contextID: 1))) == [
            .startTimer(.dimse), .operationPending(progress, dataSet: nil),
        ])

        // Second sub-operation: command and whole data set in one P-DATA-TF.
        let second = Self.storeRQ(2, instance: "2.25.2")
        #expect(machine.pduReceived(Self.pData(Self.command(.cStoreRQ(second), contextID: 3),
                                               Self.data([7, 8], isLast: true))) == [
            .startTimer(.dimse), .storeRequested(second, contextID: 3),
            .cancelTimer, .storeFragment(ByteBuffer(bytes: [7, 8]), isLast: true),
        ])
        // A pending response while we owe the C-STORE-RSP: reported, the timer stays off.
        let late = Self.getRSP(.pending, remaining: 0, completed: 1)
        #expect(machine.pduReceived(Self.pData(Self.command(late, contextID: 1))) == [
            .operationPending(late, dataSet: nil),
        ])
        #expect(machine.storeResponded(status: .outOfResources, errorComment: "disk full") == [
            Self.write(Self.storeRSP(second, .outOfResources, comment: "disk full"), contextID: 3), .startTimer(.dimse),
        ])

        let final = Self.getRSP(.subOperationsCompleteWithFailures, remaining: nil, completed: 1, failed: 1)
        #expect(machine.pduReceived(Self.pData(Self.command(final, contextID: 1))) == [
            .cancelTimer, .operationSucceeded(final),
        ])
        // Idle again.
        #expect(machine.releaseRequested() == [.write(.releaseRQ), .startTimer(.association)])
    }

    @Test func aFinalResponseBeforeOurLastCStoreRSPIsReportedAfterIt() {
        var machine = Self.getting()
        let store = Self.storeRQ(1, instance: "2.25.1")
        _ = machine.pduReceived(Self.pData(Self.command(.cStoreRQ(store), contextID: 3), Self.data([1], isLast: true)))
        let final = Self.getRSP(.success, remaining: nil, completed: 1)
        #expect(machine.pduReceived(Self.pData(Self.command(final, contextID: 1))) == [])
        #expect(machine.storeResponded(status: .success, errorComment: nil) == [
            Self.write(Self.storeRSP(store, .success), contextID: 3), .cancelTimer, .operationSucceeded(final),
        ])
    }

    @Test func aCStoreRQWithoutAnOutstandingCGetAborts() {
        // Nothing outstanding.
        var idle = Self.established()
        let store = Self.storeRQ(1, instance: "2.25.1")
        let actions = idle.pduReceived(Self.pData(Self.command(.cStoreRQ(store), contextID: 3)))
        #expect(actions == [Self.protocolAbort, .startTimer(.artim)])
        guard case .failed(let error) = idle.state else {
            Issue.record("expected failed, got \(idle.state)")
            return
        }
        #expect(error.message.contains("no C-GET is outstanding"))

        // A C-FIND outstanding: not a C-GET either.
        var finding = Self.established()
        let findRQ = DIMSEMessage.cFindRQ(CFindRQ(messageID: 7, affectedSOPClassUID: Self.find))
        _ = finding.operationRequested(findRQ, contextID: 7)
        _ = finding.dataSetFragment(Self.identifier, isLast: true)
        Self.expectProtocolFailure(finding.pduReceived(Self.pData(Self.command(.cStoreRQ(store), contextID: 3))),
                                   saying: "no C-GET is outstanding")
    }

    @Test func aCStoreRQOnAContextNotAcceptedAborts() {
        var machine = Self.getting()
        let store = Self.storeRQ(1, instance: "2.25.1", sopClass: Self.mrImageStorage)
        let actions = machine.pduReceived(Self.pData(Self.command(.cStoreRQ(store), contextID: 5)))
        Self.expectProtocolFailure(actions, saying: "context 5, which was not accepted")
        #expect(!actions.contains { if case .storeRequested = $0 { true } else { false } })
    }

    @Test func aCStoreRQOfAnotherSOPClassIsRefusedWithoutAReceiver() {
        var machine = Self.getting()
        // An MR instance on the CT context: its data set is dropped, 0x0122 answered by the machine.
        let store = Self.storeRQ(1, instance: "2.25.1", sopClass: Self.mrImageStorage)
        #expect(machine.pduReceived(Self.pData(Self.command(.cStoreRQ(store), contextID: 3))) == [.startTimer(.dimse)])
        #expect(machine.pduReceived(Self.pData(Self.data([1, 2], isLast: false))) == [.startTimer(.dimse)])
        let refusal = Machine.Action.write(RequestorStateMachineTests.command(.cStoreRSP(CStoreRSP(
            respondingTo: store, status: .sopClassNotSupported,
            errorComment: "SOP class \(Self.mrImageStorage) on a context of \(Fixtures.ctImageStorage)")), contextID: 3))
        #expect(machine.pduReceived(Self.pData(Self.data([3], isLast: true))) == [refusal, .startTimer(.dimse)])
        // The C-GET goes on.
        let final = Self.getRSP(.subOperationsCompleteWithFailures, remaining: nil, completed: 0, failed: 1)
        #expect(machine.pduReceived(Self.pData(Self.command(final, contextID: 1))) == [
            .cancelTimer, .operationSucceeded(final),
        ])
    }

    @Test func anotherCStoreRQBeforeOurResponseAborts() {
        var machine = Self.getting()
        _ = machine.pduReceived(Self.pData(Self.command(.cStoreRQ(Self.storeRQ(1, instance: "2.25.1")), contextID: 3),
                                           Self.data([1], isLast: true)))
        let actions = machine.pduReceived(Self.pData(Self.command(.cStoreRQ(Self.storeRQ(2, instance: "2.25.2")),
                                                                  contextID: 3)))
        Self.expectProtocolFailure(actions, saying: "before our C-STORE-RSP to message 1")
        // The first receiver was finishing: nothing to abandon; its late answer writes nothing.
        #expect(!actions.contains(.storeAbandoned))
        #expect(machine.storeResponded(status: .success, errorComment: nil) == [])
    }

    @Test func inboundStoreTrafficRearmsTheDIMSETimerAndItsExpiryAbandonsTheDataSet() {
        var machine = Self.getting()
        let store = Self.storeRQ(1, instance: "2.25.1")
        #expect(machine.pduReceived(Self.pData(Self.command(.cStoreRQ(store), contextID: 3))).first == .startTimer(.dimse))
        #expect(machine.pduReceived(Self.pData(Self.data([1], isLast: false))).first == .startTimer(.dimse))
        // The peer stalls mid data set: the timer fires, the receiver is abandoned.
        #expect(machine.timeoutFired(.dimse) == [
            .write(.abort(AAbort(source: .serviceUser))), .startTimer(.artim), .storeAbandoned,
            .operationFailed(.timedOut(.dimse)),
        ])
    }

    @Test func theDIMSETimerDoesNotRunWhileWeOweTheCStoreRSP() {
        var machine = Self.getting()
        let store = Self.storeRQ(1, instance: "2.25.1")
        _ = machine.pduReceived(Self.pData(Self.command(.cStoreRQ(store), contextID: 3), Self.data([1], isLast: true)))
        #expect(machine.timeoutFired(.dimse) == [], "a stale expiry while our receiver works")
        #expect(machine.storeResponded(status: .success, errorComment: nil).last == .startTimer(.dimse))
        // Once answered, the peer's silence counts again.
        #expect(machine.timeoutFired(.dimse) == [
            .write(.abort(AAbort(source: .serviceUser))), .startTimer(.artim), .operationFailed(.timedOut(.dimse)),
        ])
    }

    @Test func theConnectionLostMidDataSetAbandonsIt() {
        var machine = Self.getting()
        _ = machine.pduReceived(Self.pData(Self.command(.cStoreRQ(Self.storeRQ(1, instance: "2.25.1")), contextID: 3),
                                           Self.data([1], isLast: false)))
        let actions = machine.connectionClosed()
        #expect(actions.contains(.storeAbandoned))
        #expect(actions.last == .operationFailed(.connectionClosed))
    }
}
