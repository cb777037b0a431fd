/// Something the runtime must do, returned by ``AssociationStateMachine/handle(_:)``.
/// The machine performs no I/O; actions are executed in order.
public enum AssociationAction: Sendable, Hashable {
    /// Write this PDU (one write per PDU).
    case send(PDU)
    /// Open the transport connection to the peer (AE-1); answer with
    /// `.transportConnectConfirm` or, on failure, `.transportClosed`.
    case openTransport
    /// Close the transport connection.
    case closeTransport
    /// Start (or restart) the ARTIM timer; on expiry feed `.artimExpired`.
    case startARTIM
    /// Stop the ARTIM timer (a late expiry is harmless: it hits a blank cell).
    case stopARTIM
    /// A-ASSOCIATE indication (AE-6): ask the user (negotiate), then feed
    /// `.associateACPrimitive(ac)` or `.associateRJPrimitive(rj)`.
    case indicateAssociateRQ(AssociateRQ)
    /// A-ASSOCIATE confirmation, accepted (AE-3).
    case indicateAssociateAC(AssociateAC)
    /// A-ASSOCIATE confirmation, rejected (AE-4; a `.closeTransport` follows).
    case indicateAssociateRJ(AssociateRJ)
    /// P-DATA indication (DT-2, AR-6).
    case indicatePData(PDataTF)
    /// A-RELEASE indication (AR-2, AR-8). The user answers with `.releaseResponsePrimitive`
    /// — except in a release collision on the acceptor side (state Sta10), where the
    /// answer must wait for `.indicateReleaseConfirmed` (Sta12).
    case indicateReleaseRQ
    /// A-RELEASE confirmation (AR-3, AR-10): our release request was answered.
    case indicateReleaseConfirmed
    /// A-ABORT or A-P-ABORT indication (AA-3, AA-4, AA-8).
    case indicateAbort(AssociationAbortIndication)
    /// A blank cell of Table 9-10: the event is not valid in this state and was ignored
    /// (state unchanged). For a local primitive this is a runtime bug or a race (e.g.
    /// P-DATA request after the peer started releasing): fail the user's request.
    /// Stale timer expiries and transport events in Sta1 also land here.
    case eventNotAllowed(AssociationEventID, in: AssociationStateID)
}

/// Why the association ended abnormally, as told to the user.
public enum AssociationAbortIndication: Sendable, Hashable {
    /// AA-3: the peer sent an A-ABORT PDU (A-ABORT indication when its source is the
    /// service user, A-P-ABORT otherwise).
    case peerAborted(AAbort)
    /// AA-4: the transport connection closed unexpectedly (A-P-ABORT).
    case transportClosed
    /// AA-8: a protocol error; the machine sent this A-ABORT to the peer (A-P-ABORT).
    case protocolError(AAbort)
}
