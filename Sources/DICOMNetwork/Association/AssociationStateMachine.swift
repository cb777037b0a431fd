/// The DICOM Upper Layer protocol machine (PS3.8 §9.2), as a pure value.
///
/// Feed every event to ``handle(_:)`` and execute the returned actions in order. The
/// transition is looked up in ``AssociationStateTable`` (Table 9-10); blank cells never
/// trap, they return ``AssociationAction/eventNotAllowed(_:in:)``.
///
/// Acceptor (SCP): `init()`, then `.transportConnectIndication` (Evt5) on accept.
/// Requestor (SCU): `init()`, then `.associateRequestPrimitive(rq)` (Evt1).
public struct AssociationStateMachine: Sendable {
    public enum Role: Sendable, Hashable {
        case requestor
        case acceptor
    }

    /// The current state (Sta1…Sta13).
    public private(set) var state: AssociationStateID
    /// Set by Evt1 (requestor) or Evt5 (acceptor); decides AR-8's next state.
    public private(set) var role: Role?
    /// The action of the last handled event's cell (`nil` for a blank cell).
    public private(set) var lastActionID: AssociationActionID?
    /// The A-ASSOCIATE-RQ to send once the transport is up (held in Sta4).
    private var pendingRequest: AssociateRQ?

    public init() {
        self.state = .idle
    }

    /// Puts the machine in any state (tests, and runtimes resuming a known state).
    public init(state: AssociationStateID, role: Role?, pendingRequest: AssociateRQ? = nil) {
        self.state = state
        self.role = role
        self.pendingRequest = pendingRequest
    }

    public var isEstablished: Bool { state == .established }

    /// Whether we may still send P-DATA: established, or the peer asked for the release and
    /// awaits our last responses before its A-RELEASE-RP (Sta8, Evt9 → AR-7).
    public var canSendData: Bool { state == .established || state == .awaitingLocalReleaseResponse }

    /// Applies one event and returns the actions the runtime must execute, in order.
    public mutating func handle(_ event: AssociationEvent) -> [AssociationAction] {
        guard let actionID = AssociationStateTable.action(for: event.id, in: state) else {
            lastActionID = nil
            return [.eventNotAllowed(event.id, in: state)]
        }
        lastActionID = actionID
        return perform(actionID, event)
    }

    // MARK: - Actions (PS3.8 Tables 9-6…9-9)

    private mutating func perform(_ action: AssociationActionID, _ event: AssociationEvent) -> [AssociationAction] {
        switch action {
        case .ae1:
            if case .associateRequestPrimitive(let rq) = event { pendingRequest = rq }
            role = .requestor
            state = .awaitingTransportOpen
            return [.openTransport]
        case .ae2:
            state = .awaitingAssociateACOrRJ
            guard let rq = pendingRequest else {
                // Cannot happen: Sta4 is only entered through AE-1. Abort rather than trap.
                return abortAsProvider(reason: .notSpecified)
            }
            pendingRequest = nil
            return [.send(.associateRQ(rq))]
        case .ae3:
            state = .established
            guard case .associateACReceived(let ac) = event else { return [] }
            return [.indicateAssociateAC(ac)]
        case .ae4:
            state = .idle
            guard case .associateRJReceived(let rj) = event else { return [.closeTransport] }
            return [.indicateAssociateRJ(rj), .closeTransport]
        case .ae5:
            role = .acceptor
            state = .awaitingAssociateRQ
            return [.startARTIM]
        case .ae6:
            guard case .associateRQReceived(let rq) = event else { return [] }
            // "Acceptable by the service provider": protocol version 1 (bit 0) supported.
            if rq.protocolVersion & 0x0001 == 0 {
                state = .awaitingTransportClose
                let rj = AssociateRJ(result: .rejectedPermanent, reason: .serviceProviderACSE(.protocolVersionNotSupported))
                return [.stopARTIM, .send(.associateRJ(rj)), .startARTIM]
            }
            state = .awaitingLocalAssociateResponse
            return [.stopARTIM, .indicateAssociateRQ(rq)]
        case .ae7:
            state = .established
            guard case .associateACPrimitive(let ac) = event else { return [] }
            return [.send(.associateAC(ac))]
        case .ae8:
            state = .awaitingTransportClose
            guard case .associateRJPrimitive(let rj) = event else { return [.startARTIM] }
            return [.send(.associateRJ(rj)), .startARTIM]
        case .dt1, .ar7:
            state = action == .dt1 ? .established : .awaitingLocalReleaseResponse
            guard case .pDataRequestPrimitive(let data) = event else { return [] }
            return [.send(.pDataTF(data))]
        case .dt2, .ar6:
            state = action == .dt2 ? .established : .awaitingReleaseRP
            guard case .pDataTFReceived(let data) = event else { return [] }
            return [.indicatePData(data)]
        case .ar1:
            state = .awaitingReleaseRP
            return [.send(.releaseRQ)]
        case .ar2:
            state = .awaitingLocalReleaseResponse
            return [.indicateReleaseRQ]
        case .ar3:
            state = .idle
            return [.indicateReleaseConfirmed, .closeTransport]
        case .ar4:
            state = .awaitingTransportClose
            return [.send(.releaseRP), .startARTIM]
        case .ar5:
            state = .idle
            return [.stopARTIM]
        case .ar8:
            state = role == .requestor ? .collisionRequestorAwaitingLocalResponse : .collisionAcceptorAwaitingReleaseRP
            return [.indicateReleaseRQ]
        case .ar9:
            state = .collisionRequestorAwaitingReleaseRP
            return [.send(.releaseRP)]
        case .ar10:
            state = .collisionAcceptorAwaitingLocalResponse
            return [.indicateReleaseConfirmed]
        case .aa1:
            state = .awaitingTransportClose
            let abort: AAbort
            if case .abortRequestPrimitive(let requested) = event {
                abort = requested
            } else {
                // Sta2 + unexpected or invalid PDU. We report the provider as source with a
                // useful reason (the standard's AA-1 says service-user source, reason 0).
                abort = AAbort(source: .serviceProvider, reason: Self.abortReason(for: event))
            }
            return [.send(.abort(abort)), .startARTIM]
        case .aa2:
            state = .idle
            return [.stopARTIM, .closeTransport]
        case .aa3:
            state = .idle
            guard case .abortReceived(let abort) = event else { return [.closeTransport] }
            return [.indicateAbort(.peerAborted(abort)), .closeTransport]
        case .aa4:
            state = .idle
            return [.indicateAbort(.transportClosed)]
        case .aa5:
            state = .idle
            return [.stopARTIM]
        case .aa6:
            state = .awaitingTransportClose
            return []
        case .aa7:
            state = .awaitingTransportClose
            return [.send(.abort(AAbort(source: .serviceProvider, reason: Self.abortReason(for: event))))]
        case .aa8:
            return abortAsProvider(reason: Self.abortReason(for: event))
        }
    }

    /// AA-8: send A-ABORT (service-provider source), issue A-P-ABORT, start ARTIM → Sta13.
    private mutating func abortAsProvider(reason: AAbort.Reason) -> [AssociationAction] {
        state = .awaitingTransportClose
        let abort = AAbort(source: .serviceProvider, reason: reason)
        return [.send(.abort(abort)), .indicateAbort(.protocolError(abort)), .startARTIM]
    }

    /// The A-ABORT reason for an event that triggers a provider abort.
    static func abortReason(for event: AssociationEvent) -> AAbort.Reason {
        switch event {
        case .invalidPDUReceived(let error): error.abortReason
        case .associateACReceived, .associateRJReceived, .associateRQReceived, .pDataTFReceived,
            .releaseRQReceived, .releaseRPReceived, .abortReceived:
            .unexpectedPDU
        default: .notSpecified
        }
    }
}
