import NIOCore
import Testing

import DICOMNetwork

@Suite struct AssociationScenarioTests {
    @Test func normalSCPAssociation() {
        var machine = AssociationStateMachine()
        #expect(machine.handle(.transportConnectIndication) == [.startARTIM])  // Evt5 → AE-5
        #expect(machine.handle(.pduReceived(.associateRQ(Fixtures.associateRQ)))
            == [.stopARTIM, .indicateAssociateRQ(Fixtures.associateRQ)])  // AE-6
        #expect(machine.state == .awaitingLocalAssociateResponse)
        #expect(machine.handle(.associateACPrimitive(Fixtures.associateAC)) == [.send(.associateAC(Fixtures.associateAC))])
        #expect(machine.isEstablished)
        #expect(machine.handle(.pduReceived(.pDataTF(Fixtures.pData))) == [.indicatePData(Fixtures.pData)])
        #expect(machine.handle(.pDataRequestPrimitive(Fixtures.pData)) == [.send(.pDataTF(Fixtures.pData))])
        #expect(machine.handle(.pduReceived(.releaseRQ)) == [.indicateReleaseRQ])  // AR-2
        #expect(machine.handle(.releaseResponsePrimitive) == [.send(.releaseRP), .startARTIM])  // AR-4
        #expect(machine.state == .awaitingTransportClose)
        #expect(machine.handle(.transportClosed) == [.stopARTIM])  // AR-5
        #expect(machine.state == .idle)
    }

    @Test func normalSCUAssociation() {
        var machine = AssociationStateMachine()
        #expect(machine.handle(.associateRequestPrimitive(Fixtures.associateRQ)) == [.openTransport])
        #expect(machine.role == .requestor)
        #expect(machine.handle(.transportConnectConfirm) == [.send(.associateRQ(Fixtures.associateRQ))])
        #expect(machine.handle(.pduReceived(.associateAC(Fixtures.associateAC))) == [.indicateAssociateAC(Fixtures.associateAC)])
        #expect(machine.handle(.releaseRequestPrimitive) == [.send(.releaseRQ)])
        #expect(machine.handle(.pduReceived(.pDataTF(Fixtures.pData))) == [.indicatePData(Fixtures.pData)])  // AR-6
        #expect(machine.handle(.pduReceived(.releaseRP)) == [.indicateReleaseConfirmed, .closeTransport])
        #expect(machine.state == .idle)
    }

    @Test func rejectedBySCP() {
        var machine = AssociationStateMachine()
        _ = machine.handle(.transportConnectIndication)
        _ = machine.handle(.associateRQReceived(Fixtures.associateRQ))
        #expect(machine.handle(.associateRJPrimitive(Fixtures.associateRJ)) == [.send(.associateRJ(Fixtures.associateRJ)), .startARTIM])
        #expect(machine.handle(.artimExpired) == [.stopARTIM, .closeTransport])  // AA-2
        #expect(machine.state == .idle)
    }

    @Test func unsupportedProtocolVersionIsRejectedByTheProvider() {
        var machine = AssociationStateMachine()
        _ = machine.handle(.transportConnectIndication)
        var rq = Fixtures.associateRQ
        rq.protocolVersion = 2
        let rj = AssociateRJ(result: .rejectedPermanent, reason: .serviceProviderACSE(.protocolVersionNotSupported))
        #expect(machine.handle(.associateRQReceived(rq)) == [.stopARTIM, .send(.associateRJ(rj)), .startARTIM])
        #expect(machine.state == .awaitingTransportClose)
    }

    @Test func releaseCollisionRequestorSide() {
        // Requestor sent A-RELEASE-RQ and receives the peer's A-RELEASE-RQ.
        var machine = AssociationStateMachine(state: .established, role: .requestor)
        #expect(machine.handle(.releaseRequestPrimitive) == [.send(.releaseRQ)])  // AR-1 → Sta7
        #expect(machine.handle(.releaseRQReceived) == [.indicateReleaseRQ])  // AR-8 → Sta9
        #expect(machine.state == .collisionRequestorAwaitingLocalResponse)
        #expect(machine.handle(.releaseResponsePrimitive) == [.send(.releaseRP)])  // AR-9 → Sta11
        #expect(machine.state == .collisionRequestorAwaitingReleaseRP)
        #expect(machine.handle(.releaseRPReceived) == [.indicateReleaseConfirmed, .closeTransport])  // AR-3 → Sta1
        #expect(machine.state == .idle)
    }

    @Test func releaseCollisionAcceptorSide() {
        var machine = AssociationStateMachine(state: .established, role: .acceptor)
        #expect(machine.handle(.releaseRequestPrimitive) == [.send(.releaseRQ)])  // AR-1 → Sta7
        #expect(machine.handle(.releaseRQReceived) == [.indicateReleaseRQ])  // AR-8 → Sta10
        #expect(machine.state == .collisionAcceptorAwaitingReleaseRP)
        // Answering too early is refused (blank cell), the machine waits for the RP.
        #expect(machine.handle(.releaseResponsePrimitive) == [.eventNotAllowed(.releaseResponsePrimitive, in: .collisionAcceptorAwaitingReleaseRP)])
        #expect(machine.handle(.releaseRPReceived) == [.indicateReleaseConfirmed])  // AR-10 → Sta12
        #expect(machine.handle(.releaseResponsePrimitive) == [.send(.releaseRP), .startARTIM])  // AR-4 → Sta13
        #expect(machine.handle(.transportClosed) == [.stopARTIM])  // AR-5
        #expect(machine.state == .idle)
    }

    @Test func artimInSta13() {
        var machine = AssociationStateMachine(state: .established, role: .acceptor)
        let abort = AAbort(source: .serviceProvider, reason: .unexpectedPDU)
        // An A-ASSOCIATE-RQ in Sta6 is a protocol error: AA-8.
        #expect(machine.handle(.associateRQReceived(Fixtures.associateRQ))
            == [.send(.abort(abort)), .indicateAbort(.protocolError(abort)), .startARTIM])
        #expect(machine.state == .awaitingTransportClose)
        // PDUs arriving while we wait for the close are ignored (AA-6)…
        #expect(machine.handle(.pDataTFReceived(Fixtures.pData)) == [])
        // …the peer does not close: ARTIM fires and we close (AA-2).
        #expect(machine.handle(.artimExpired) == [.stopARTIM, .closeTransport])
        #expect(machine.state == .idle)
        // A late expiry or close after that is harmless.
        #expect(machine.handle(.artimExpired) == [.eventNotAllowed(.artimExpired, in: .idle)])
        #expect(machine.handle(.transportClosed) == [.eventNotAllowed(.transportClosed, in: .idle)])
    }

    @Test func invalidPDUAbortsWithTheDecodersReason() throws {
        var machine = AssociationStateMachine(state: .established, role: .acceptor)
        var decoder = PDUDecoder(maximumPDULength: 16)
        var buffer = ByteBuffer(bytes: [4, 0, 0xFF, 0xFF, 0xFF, 0xFF])
        do {
            _ = try decoder.decode(buffer: &buffer)
            Issue.record("expected a decoding error")
        } catch let error as PDUDecodingError {
            let abort = AAbort(source: .serviceProvider, reason: .invalidPDUParameterValue)
            #expect(machine.handle(.invalidPDUReceived(error)) == [.send(.abort(abort)), .indicateAbort(.protocolError(abort)), .startARTIM])
        }
    }

    @Test func peerAbortAndTransportLoss() {
        var machine = AssociationStateMachine(state: .established, role: .acceptor)
        let abort = AAbort(source: .serviceUser)
        #expect(machine.handle(.abortReceived(abort)) == [.indicateAbort(.peerAborted(abort)), .closeTransport])
        machine = AssociationStateMachine(state: .established, role: .acceptor)
        #expect(machine.handle(.transportClosed) == [.indicateAbort(.transportClosed)])
        #expect(machine.state == .idle)
    }
}
