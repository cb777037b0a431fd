import NIOCore
import Testing

@testable import DICOMNetwork

/// The requestor machine without I/O: inputs in, actions out, time driven by hand.
struct RequestorStateMachineTests {
    typealias Machine = RequestorStateMachine

    static let request = AssociateRQ(
        calledAETitle: "PACS", callingAETitle: "PASSERELLE",
        presentationContexts: [
            PresentationContextProposal(id: 1, abstractSyntax: Fixtures.verification, transferSyntaxes: [Fixtures.implicitLE]),
            PresentationContextProposal(id: 3, abstractSyntax: Fixtures.ctImageStorage,
                                        transferSyntaxes: [Fixtures.explicitLE, Fixtures.implicitLE]),
            PresentationContextProposal(id: 5, abstractSyntax: "1.2.840.10008.5.1.4.1.1.4", transferSyntaxes: [Fixtures.jpegLossless]),
        ],
        userInformation: UserInformation(maximumLength: 262144))

    static func accept(maximumLength: UInt32 = 16384) -> AssociateAC {
        AssociateAC(
            calledAETitle: "PACS", callingAETitle: "PASSERELLE",
            presentationContexts: [
                PresentationContextResult(id: 1, result: .acceptance, transferSyntax: Fixtures.implicitLE),
                PresentationContextResult(id: 3, result: .acceptance, transferSyntax: Fixtures.explicitLE),
                PresentationContextResult(id: 5, result: .abstractSyntaxNotSupported, transferSyntax: Fixtures.jpegLossless),
            ],
            userInformation: UserInformation(maximumLength: maximumLength))
    }

    static let accepted: [UInt8: PresentationContext] = [
        1: .init(id: 1, abstractSyntax: Fixtures.verification, transferSyntax: Fixtures.implicitLE),
        3: .init(id: 3, abstractSyntax: Fixtures.ctImageStorage, transferSyntax: Fixtures.explicitLE),
    ]

    /// A machine with an established association.
    static func established(maximumLength: UInt32 = 16384) -> Machine {
        var machine = Machine(request: request)
        _ = machine.connected()
        _ = machine.pduReceived(.associateAC(accept(maximumLength: maximumLength)))
        return machine
    }

    static func command(_ message: DIMSEMessage, contextID: UInt8) -> PDU {
        .pDataTF(PDataTF(values: [
            PresentationDataValue(contextID: contextID, isCommand: true, isLast: true, data: message.commandSet.encoded())
        ]))
    }

    static func commandWrite(_ message: DIMSEMessage, contextID: UInt8) -> Machine.Action {
        .write(command(message, contextID: contextID))
    }

    static let echoRQ = DIMSEMessage.cEchoRQ(CEchoRQ(messageID: 7))
    static let echoRSP = DIMSEMessage.cEchoRSP(CEchoRSP(messageIDBeingRespondedTo: 7))
    static let storeRQ = DIMSEMessage.cStoreRQ(CStoreRQ(messageID: 8, affectedSOPClassUID: Fixtures.ctImageStorage,
                                                        affectedSOPInstanceUID: "2.25.1"))
    static func storeRSP(_ status: DIMSEStatus, comment: String? = nil) -> DIMSEMessage {
        .cStoreRSP(CStoreRSP(messageIDBeingRespondedTo: 8, affectedSOPClassUID: Fixtures.ctImageStorage,
                             affectedSOPInstanceUID: "2.25.1", status: status, errorComment: comment))
    }

    // MARK: Establishment

    @Test func connectingSendsTheRequestAndArmsTheAssociationTimer() {
        var machine = Machine(request: Self.request)
        #expect(machine.connected() == [.write(.associateRQ(Self.request)), .startTimer(.association)])
        #expect(machine.state == .associating)
        #expect(machine.association.state == .awaitingAssociateACOrRJ)  // Sta5
        #expect(machine.connected() == [])
    }

    @Test func acceptanceMapsAcceptedContextsOnly() {
        var machine = Machine(request: Self.request)
        _ = machine.connected()
        let ac = Self.accept()
        #expect(machine.pduReceived(.associateAC(ac)) == [.cancelTimer, .associateSucceeded(ac, acceptedContexts: Self.accepted)])
        #expect(machine.maximumDataFragmentLength == 16384 - 6)
    }

    @Test func unlimitedPeerLengthFragmentsAtTheDefault() {
        let machine = Self.established(maximumLength: 0)
        #expect(machine.maximumDataFragmentLength == Int(PDataTF.defaultMaximumPDULengthForUnlimited) - 6)
    }

    @Test func rejectionFailsWithTheRJAndCloses() throws {
        var machine = Machine(request: Self.request)
        _ = machine.connected()
        let rj = AssociateRJ(result: .rejectedPermanent, reason: .serviceUser(.calledAETitleNotRecognized))
        let actions = machine.pduReceived(.associateRJ(rj))
        #expect(actions == [.associateFailed(.rejected(rj)), .close])
        let error = DICOMNetworkError.rejected(rj)
        #expect(error.code == .associationRejected)
        #expect(error.rejection == rj)
        #expect(error.description.hasPrefix("association rejected permanently by the called AE: called AE title not recognized"))
        // Later requests fail with the same error.
        #expect(machine.operationRequested(Self.echoRQ, contextID: 1) == [.operationFailed(error)])
    }

    @Test(arguments: [
        (AssociateRJ.Reason.serviceProviderACSE(.protocolVersionNotSupported), AssociateRJ.Result.rejectedPermanent,
         "rejected permanently by the called AE's upper layer (ACSE): protocol version not supported"),
        (.serviceProviderPresentation(.localLimitExceeded), .rejectedTransient,
         "rejected transiently by the called AE's upper layer (presentation): local limit exceeded"),
        (.serviceUser(.callingAETitleNotRecognized), .rejectedPermanent,
         "rejected permanently by the called AE: calling AE title not recognized"),
    ])
    func rejectionDescriptions(reason: AssociateRJ.Reason, result: AssociateRJ.Result, text: String) {
        #expect(DICOMNetworkError.rejected(AssociateRJ(result: result, reason: reason)).description.contains(text))
    }

    @Test func associationTimeoutAbortsThenARTIMCloses() {
        var machine = Machine(request: Self.request)
        _ = machine.connected()
        #expect(machine.timeoutFired(.association) == [
            .write(.abort(AAbort(source: .serviceUser))), .startTimer(.artim), .associateFailed(.timedOut(.association)),
        ])
        #expect(machine.association.state == .awaitingTransportClose)  // Sta13
        #expect(machine.timeoutFired(.artim) == [.cancelTimer, .close])  // AA-2
        #expect(machine.connectionClosed() == [])
    }

    @Test func peerAbortWhileAssociating() {
        var machine = Machine(request: Self.request)
        _ = machine.connected()
        let abort = AAbort(source: .serviceProvider, reason: .unexpectedPDU)
        #expect(machine.pduReceived(.abort(abort)) == [.associateFailed(.peerAborted(abort)), .close])
    }

    @Test func connectionLostWhileAssociating() {
        var machine = Machine(request: Self.request)
        _ = machine.connected()
        #expect(machine.connectionClosed() == [.associateFailed(.connectionClosed)])
    }

    // MARK: Operations

    @Test func echoRoundTrip() {
        var machine = Self.established()
        #expect(machine.operationRequested(Self.echoRQ, contextID: 1) == [
            Self.commandWrite(Self.echoRQ, contextID: 1), .startTimer(.dimse),
        ])
        #expect(machine.pduReceived(Self.command(Self.echoRSP, contextID: 1)) == [.cancelTimer, .operationSucceeded(Self.echoRSP)])
        // Idle again: a stale DIMSE timer does nothing.
        #expect(machine.timeoutFired(.dimse) == [])
    }

    @Test func oneOperationAtATime() {
        var machine = Self.established()
        _ = machine.operationRequested(Self.echoRQ, contextID: 1)
        let actions = machine.operationRequested(.cEchoRQ(CEchoRQ(messageID: 9)), contextID: 1)
        #expect(actions.count == 1)
        guard case .operationFailed(let error) = actions.first else {
            Issue.record("expected a failure, got \(actions)")
            return
        }
        #expect(error.code == .associationNotEstablished)
    }

    @Test func operationOnAContextNotAccepted() {
        var machine = Self.established()
        let actions = machine.operationRequested(Self.echoRQ, contextID: 5)
        guard case .operationFailed(let error) = actions.first else {
            Issue.record("expected a failure, got \(actions)")
            return
        }
        #expect(error.code == .noAcceptedPresentationContext)
    }

    @Test func storeSendsCommandThenDataFragments() {
        var machine = Self.established()
        #expect(machine.operationRequested(Self.storeRQ, contextID: 3) == [
            Self.commandWrite(Self.storeRQ, contextID: 3), .startTimer(.dimse),
        ])
        let first = ByteBuffer(bytes: [1, 2, 3, 4])
        let last = ByteBuffer(bytes: [5, 6])
        #expect(machine.dataSetFragment(first, isLast: false) == [
            .write(.pDataTF(PDataTF(values: [PresentationDataValue(contextID: 3, isCommand: false, isLast: false, data: first)]))),
            .startTimer(.dimse),
        ])
        #expect(machine.dataSetFragment(last, isLast: true) == [
            .write(.pDataTF(PDataTF(values: [PresentationDataValue(contextID: 3, isCommand: false, isLast: true, data: last)]))),
            .startTimer(.dimse),
        ])
        let rsp = Self.storeRSP(.success)
        #expect(machine.pduReceived(Self.command(rsp, contextID: 3)) == [.cancelTimer, .operationSucceeded(rsp)])
    }

    @Test func earlyResponseIsReportedAfterTheLastFragment() {
        var machine = Self.established()
        _ = machine.operationRequested(Self.storeRQ, contextID: 3)
        let rsp = Self.storeRSP(.outOfResources, comment: "disk full")
        #expect(machine.pduReceived(Self.command(rsp, contextID: 3)) == [])
        _ = machine.dataSetFragment(ByteBuffer(bytes: [1, 2]), isLast: false)
        let actions = machine.dataSetFragment(ByteBuffer(bytes: [3, 4]), isLast: true)
        #expect(actions.suffix(2) == [.cancelTimer, .operationSucceeded(rsp)])
    }

    @Test func pendingStatusKeepsWaiting() {
        var machine = Self.established()
        _ = machine.operationRequested(Self.echoRQ, contextID: 1)
        let pending = DIMSEMessage.cEchoRSP(CEchoRSP(messageIDBeingRespondedTo: 7, status: .pending))
        #expect(machine.pduReceived(Self.command(pending, contextID: 1)) == [
            .startTimer(.dimse), .operationPending(pending, dataSet: nil),
        ])
        #expect(machine.pduReceived(Self.command(Self.echoRSP, contextID: 1)) == [.cancelTimer, .operationSucceeded(Self.echoRSP)])
    }

    @Test func responseToAnotherMessageIDAbortsAsProvider() {
        var machine = Self.established()
        _ = machine.operationRequested(Self.echoRQ, contextID: 1)
        let wrong = DIMSEMessage.cEchoRSP(CEchoRSP(messageIDBeingRespondedTo: 99))
        let actions = machine.pduReceived(Self.command(wrong, contextID: 1))
        let abort = AAbort(source: .serviceProvider, reason: .unexpectedPDUParameter)
        #expect(actions.first == .write(.abort(abort)))
        #expect(actions.contains(.startTimer(.artim)))
        guard case .operationFailed(let error) = actions.last else {
            Issue.record("expected a failure, got \(actions)")
            return
        }
        #expect(error.code == .protocolError)
        #expect(error.abort == abort)
    }

    @Test func unsolicitedCommandAborts() {
        var machine = Self.established()
        let actions = machine.pduReceived(Self.command(Self.echoRQ, contextID: 1))
        #expect(actions == [.write(.abort(AAbort(source: .serviceProvider, reason: .unexpectedPDUParameter))), .startTimer(.artim)])
        guard case .failed(let error) = machine.state else {
            Issue.record("expected failed, got \(machine.state)")
            return
        }
        #expect(error.code == .protocolError)
    }

    @Test func dimseTimeoutAbortsAndFailsTheOperation() {
        var machine = Self.established()
        _ = machine.operationRequested(Self.echoRQ, contextID: 1)
        #expect(machine.timeoutFired(.dimse) == [
            .write(.abort(AAbort(source: .serviceUser))), .startTimer(.artim), .operationFailed(.timedOut(.dimse)),
        ])
        // The peer then closes (Sta13, AR-5).
        #expect(machine.connectionClosed() == [.cancelTimer])
    }

    @Test func peerAbortDuringAnOperation() {
        var machine = Self.established()
        _ = machine.operationRequested(Self.storeRQ, contextID: 3)
        let abort = AAbort(source: .serviceUser)
        #expect(machine.pduReceived(.abort(abort)) == [.operationFailed(.peerAborted(abort)), .close])
        #expect(machine.dataSetFragment(ByteBuffer(bytes: [1]), isLast: true) == [.operationFailed(.peerAborted(abort))])
    }

    @Test func invalidPDUAbortsWithTheDecodersReason() {
        var machine = Self.established()
        _ = machine.operationRequested(Self.echoRQ, contextID: 1)
        let error = PDUDecodingError(code: .pduTooLarge, message: "too big", abortReason: .invalidPDUParameterValue)
        let actions = machine.invalidPDUReceived(error)
        let abort = AAbort(source: .serviceProvider, reason: .invalidPDUParameterValue)
        #expect(actions.first == .write(.abort(abort)))  // AA-8
        #expect(actions.contains(.operationFailed(.protocolError(error.description, abort: abort))))
    }

    @Test func connectionLostWhileIdleFailsTheNextOperation() {
        var machine = Self.established()
        #expect(machine.connectionClosed() == [])
        #expect(machine.operationRequested(Self.echoRQ, contextID: 1) == [.operationFailed(.connectionClosed)])
    }

    @Test func localAbort() {
        var machine = Self.established()
        _ = machine.operationRequested(Self.echoRQ, contextID: 1)
        #expect(machine.abortRequested() == [
            .write(.abort(AAbort(source: .serviceUser))), .startTimer(.artim), .operationFailed(.abortedLocally),
        ])
        #expect(machine.abortRequested() == [])
    }

    // MARK: Release

    @Test func release() {
        var machine = Self.established()
        #expect(machine.releaseRequested() == [.write(.releaseRQ), .startTimer(.association)])
        #expect(machine.pduReceived(.releaseRP) == [.cancelTimer, .releaseSucceeded, .close])  // AR-3
        #expect(machine.state == .closed)
        #expect(machine.operationRequested(Self.echoRQ, contextID: 1) == [.operationFailed(.released)])
        #expect(machine.releaseRequested() == [.releaseSucceeded])
    }

    @Test func releaseCollision() {
        var machine = Self.established()
        _ = machine.releaseRequested()
        // Sta7 + A-RELEASE-RQ → AR-8 (Sta9) → we answer at once: AR-9 (Sta11).
        #expect(machine.pduReceived(.releaseRQ) == [.write(.releaseRP)])
        #expect(machine.association.state == .collisionRequestorAwaitingReleaseRP)
        #expect(machine.pduReceived(.releaseRP) == [.cancelTimer, .releaseSucceeded, .close])  // AR-3
    }

    @Test func releaseTimeout() {
        var machine = Self.established()
        _ = machine.releaseRequested()
        #expect(machine.timeoutFired(.association) == [
            .write(.abort(AAbort(source: .serviceUser))), .startTimer(.artim), .releaseFailed(.timedOut(.release)),
        ])
    }

    @Test func releaseWhileBusyIsRefused() {
        var machine = Self.established()
        _ = machine.operationRequested(Self.echoRQ, contextID: 1)
        let actions = machine.releaseRequested()
        guard case .releaseFailed = actions.first, actions.count == 1 else {
            Issue.record("expected a refusal, got \(actions)")
            return
        }
    }

    @Test func peerReleasesFirst() {
        var machine = Self.established()
        // Sta6 + A-RELEASE-RQ → AR-2 → we answer: AR-4, ARTIM until the peer closes.
        #expect(machine.pduReceived(.releaseRQ) == [.write(.releaseRP), .startTimer(.artim)])
        #expect(machine.connectionClosed() == [.cancelTimer])
    }
}
