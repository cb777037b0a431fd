import DICOMCore
import NIOCore
import Testing

@testable import DICOMNetwork

/// C-FIND and C-MOVE on the requestor machine: pending responses, their data sets, C-CANCEL.
struct RequestorStateMachineQueryTests {
    typealias Machine = RequestorStateMachine

    static let find = UIDRegistry.studyRootQueryRetrieveInformationModelFindSOPClassUID
    static let move = UIDRegistry.studyRootQueryRetrieveInformationModelMoveSOPClassUID

    static let request = AssociateRQ(
        calledAETitle: "QRSCP", callingAETitle: "PASSERELLE",
        presentationContexts: [
            PresentationContextProposal(id: 1, abstractSyntax: find, transferSyntaxes: [Fixtures.explicitLE]),
            PresentationContextProposal(id: 3, abstractSyntax: move, transferSyntaxes: [Fixtures.explicitLE]),
        ],
        userInformation: UserInformation(maximumLength: 262144))

    static func established(maximumResponseDataSetLength: Int = Machine.defaultMaximumResponseDataSetLength) -> Machine {
        var machine = Machine(request: request, maximumResponseDataSetLength: maximumResponseDataSetLength)
        _ = machine.connected()
        _ = machine.pduReceived(.associateAC(AssociateAC(
            calledAETitle: "QRSCP", callingAETitle: "PASSERELLE",
            presentationContexts: [
                PresentationContextResult(id: 1, result: .acceptance, transferSyntax: Fixtures.explicitLE),
                PresentationContextResult(id: 3, result: .acceptance, transferSyntax: Fixtures.explicitLE),
            ],
            userInformation: UserInformation(maximumLength: 16384))))
        return machine
    }

    static let findRQ = DIMSEMessage.cFindRQ(CFindRQ(messageID: 7, affectedSOPClassUID: find))
    static let moveRQ = DIMSEMessage.cMoveRQ(CMoveRQ(messageID: 7, affectedSOPClassUID: move, moveDestination: "DEST"))
    static let identifier = ByteBuffer(bytes: [0x08, 0x00, 0x52, 0x00, 0x43, 0x53, 0x06, 0x00] + Array("STUDY ".utf8))

    static func findRSP(_ status: DIMSEStatus, messageID: UInt16 = 7, identifier: Bool) -> DIMSEMessage {
        .cFindRSP(CFindRSP(messageIDBeingRespondedTo: messageID, affectedSOPClassUID: find, status: status,
                           hasIdentifier: identifier))
    }

    static func moveRSP(_ status: DIMSEStatus, remaining: UInt16?, completed: UInt16, identifier: Bool = false) -> DIMSEMessage {
        .cMoveRSP(CMoveRSP(RetrieveResponseFields(
            messageIDBeingRespondedTo: 7, affectedSOPClassUID: move, status: status, remaining: remaining,
            completed: completed, failed: 0, warning: 0, hasIdentifier: identifier)))
    }

    static func commandPDV(_ message: DIMSEMessage, contextID: UInt8) -> PresentationDataValue {
        PresentationDataValue(contextID: contextID, isCommand: true, isLast: true, data: message.commandSet.encoded())
    }

    static func dataPDV(_ bytes: [UInt8], contextID: UInt8, isLast: Bool) -> PresentationDataValue {
        PresentationDataValue(contextID: contextID, isCommand: false, isLast: isLast, data: ByteBuffer(bytes: bytes))
    }

    static func pData(_ values: PresentationDataValue...) -> PDU {
        .pDataTF(PDataTF(values: values))
    }

    /// A machine whose C-FIND (message 7, context 1) and identifier are sent.
    static func finding(maximumResponseDataSetLength: Int = Machine.defaultMaximumResponseDataSetLength) -> Machine {
        var machine = established(maximumResponseDataSetLength: maximumResponseDataSetLength)
        #expect(machine.operationRequested(findRQ, contextID: 1) == [
            RequestorStateMachineTests.commandWrite(findRQ, contextID: 1), .startTimer(.dimse),
        ])
        #expect(machine.dataSetFragment(identifier, isLast: true) == [
            .write(pData(PresentationDataValue(contextID: 1, isCommand: false, isLast: true, data: identifier))),
            .startTimer(.dimse),
        ])
        return machine
    }

    @Test func pendingResponsesCarryTheirDataSetsWhole() {
        var machine = Self.finding()
        // First match: command, then its data set over three P-DATA-TFs.
        let pending = Self.findRSP(.pending, identifier: true)
        #expect(machine.pduReceived(Self.pData(Self.commandPDV(pending, contextID: 1))) == [.startTimer(.dimse)])
        #expect(machine.pduReceived(Self.pData(Self.dataPDV([1, 2, 3], contextID: 1, isLast: false))) == [.startTimer(.dimse)])
        #expect(machine.pduReceived(Self.pData(Self.dataPDV([4, 5], contextID: 1, isLast: false))) == [.startTimer(.dimse)])
        #expect(machine.pduReceived(Self.pData(Self.dataPDV([6], contextID: 1, isLast: true))) == [
            .startTimer(.dimse), .operationPending(pending, dataSet: ByteBuffer(bytes: [1, 2, 3, 4, 5, 6])),
        ])
        // Second match (with warnings): command and data set in one P-DATA-TF.
        let second = Self.findRSP(.pendingWithWarnings, identifier: true)
        #expect(machine.pduReceived(Self.pData(
            Self.commandPDV(second, contextID: 1), Self.dataPDV([9, 9], contextID: 1, isLast: true))) == [
            .startTimer(.dimse), .startTimer(.dimse), .operationPending(second, dataSet: ByteBuffer(bytes: [9, 9])),
        ])
        // Still busy: no release in between.
        guard case .releaseFailed = machine.releaseRequested().first else {
            Issue.record("release allowed during a C-FIND")
            return
        }
        let final = Self.findRSP(.success, identifier: false)
        #expect(machine.pduReceived(Self.pData(Self.commandPDV(final, contextID: 1))) == [
            .cancelTimer, .operationSucceeded(final),
        ])
        #expect(machine.releaseRequested() == [.write(.releaseRQ), .startTimer(.association)])
    }

    @Test func moveProgressThenAFinalResponseWithADataSet() {
        var machine = Self.established()
        _ = machine.operationRequested(Self.moveRQ, contextID: 3)
        _ = machine.dataSetFragment(Self.identifier, isLast: true)
        let progress = Self.moveRSP(.pending, remaining: 1, completed: 1)
        #expect(machine.pduReceived(Self.pData(Self.commandPDV(progress, contextID: 3))) == [
            .startTimer(.dimse), .operationPending(progress, dataSet: nil),
        ])
        // A final response with a Failed SOP Instance UID List: reported once it is whole.
        let final = Self.moveRSP(.subOperationsCompleteWithFailures, remaining: nil, completed: 1, identifier: true)
        #expect(machine.pduReceived(Self.pData(Self.commandPDV(final, contextID: 3))) == [.startTimer(.dimse)])
        #expect(machine.pduReceived(Self.pData(Self.dataPDV([1, 2], contextID: 3, isLast: false))) == [.startTimer(.dimse)])
        #expect(machine.pduReceived(Self.pData(Self.dataPDV([3], contextID: 3, isLast: true))) == [
            .cancelTimer, .operationSucceeded(final),
        ])
        // Idle again: the next operation goes.
        #expect(machine.operationRequested(Self.findRQ, contextID: 1).last == .startTimer(.dimse))
    }

    @Test func aDataSetBeyondTheCapAborts() {
        var machine = Self.finding(maximumResponseDataSetLength: 8)
        _ = machine.pduReceived(Self.pData(Self.commandPDV(Self.findRSP(.pending, identifier: true), contextID: 1)))
        #expect(machine.pduReceived(Self.pData(Self.dataPDV([1, 2, 3, 4, 5], contextID: 1, isLast: false)))
                == [.startTimer(.dimse)])
        let actions = machine.pduReceived(Self.pData(Self.dataPDV([6, 7, 8, 9], contextID: 1, isLast: true)))
        let abort = AAbort(source: .serviceProvider, reason: .unexpectedPDUParameter)
        #expect(actions.first == .write(.abort(abort)))
        guard case .operationFailed(let error) = actions.last else {
            Issue.record("expected a failure, got \(actions)")
            return
        }
        #expect(error.code == .protocolError)
        #expect(error.message.contains("exceeds 8 bytes"))
        guard case .failed = machine.state else {
            Issue.record("expected failed, got \(machine.state)")
            return
        }
    }

    @Test func cancelWritesACCancelRQOnceOnTheOperationsContext() {
        var machine = Self.finding()
        let pending = Self.findRSP(.pending, identifier: true)
        _ = machine.pduReceived(Self.pData(Self.commandPDV(pending, contextID: 1), Self.dataPDV([1], contextID: 1, isLast: true)))
        let cancel = DIMSEMessage.cCancelRQ(CCancelRQ(messageIDBeingRespondedTo: 7))
        #expect(machine.cancelRequested() == [RequestorStateMachineTests.commandWrite(cancel, contextID: 1)])
        #expect(machine.cancelRequested() == [])
        // Responses already in flight are still reported, then the final one.
        #expect(machine.pduReceived(Self.pData(Self.commandPDV(pending, contextID: 1), Self.dataPDV([2], contextID: 1, isLast: true)))
                .contains(.operationPending(pending, dataSet: ByteBuffer(bytes: [2]))))
        let final = Self.findRSP(.cancel, identifier: false)
        #expect(machine.pduReceived(Self.pData(Self.commandPDV(final, contextID: 1))) == [
            .cancelTimer, .operationSucceeded(final),
        ])
        // Nothing in progress: nothing to cancel.
        #expect(machine.cancelRequested() == [])
    }

    @Test func cancelDuringTheIdentifierWaitsForItsLastFragment() {
        var machine = Self.established()
        _ = machine.operationRequested(Self.findRQ, contextID: 1)
        #expect(machine.cancelRequested() == [])
        let cancel = DIMSEMessage.cCancelRQ(CCancelRQ(messageIDBeingRespondedTo: 7))
        let first = ByteBuffer(bytes: [1, 2])
        #expect(machine.dataSetFragment(first, isLast: false) == [
            .write(Self.pData(PresentationDataValue(contextID: 1, isCommand: false, isLast: false, data: first))),
            .startTimer(.dimse),
        ])
        let last = ByteBuffer(bytes: [3])
        #expect(machine.dataSetFragment(last, isLast: true) == [
            .write(Self.pData(PresentationDataValue(contextID: 1, isCommand: false, isLast: true, data: last))),
            .startTimer(.dimse),
            RequestorStateMachineTests.commandWrite(cancel, contextID: 1),
        ])
        #expect(machine.cancelRequested() == [])
    }

    @Test func aPendingResponseToAnotherMessageAborts() {
        var machine = Self.finding()
        let wrong = Self.findRSP(.pending, messageID: 8, identifier: true)
        let actions = machine.pduReceived(Self.pData(Self.commandPDV(wrong, contextID: 1)))
        let abort = AAbort(source: .serviceProvider, reason: .unexpectedPDUParameter)
        #expect(actions.first == .write(.abort(abort)))
        guard case .operationFailed(let error) = actions.last else {
            Issue.record("expected a failure, got \(actions)")
            return
        }
        #expect(error.code == .protocolError)
        #expect(error.message.contains("awaiting the response to message 7"))
    }

    @Test func aPendingResponseOnAnotherContextAborts() {
        var machine = Self.finding()
        let actions = machine.pduReceived(Self.pData(Self.commandPDV(Self.findRSP(.pending, identifier: true), contextID: 3)))
        #expect(actions.first == .write(.abort(AAbort(source: .serviceProvider, reason: .unexpectedPDUParameter))))
        guard case .operationFailed(let error) = actions.last else {
            Issue.record("expected a failure, got \(actions)")
            return
        }
        #expect(error.code == .protocolError)
    }

    @Test func theDIMSETimeoutStillAppliesBetweenPendingResponses() {
        var machine = Self.finding()
        _ = machine.pduReceived(Self.pData(Self.commandPDV(Self.findRSP(.pending, identifier: true), contextID: 1)))
        #expect(machine.timeoutFired(.dimse) == [
            .write(.abort(AAbort(source: .serviceUser))), .startTimer(.artim), .operationFailed(.timedOut(.dimse)),
        ])
    }
}
