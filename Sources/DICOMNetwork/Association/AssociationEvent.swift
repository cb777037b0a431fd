/// An input to the ``AssociationStateMachine``: a PDU received, a local primitive, or a
/// transport/timer notification (PS3.8 §9.2.2, Table 9-10).
public enum AssociationEvent: Sendable, Hashable {
    /// Evt1: the local user asks to open an association (requestor / SCU).
    case associateRequestPrimitive(AssociateRQ)
    /// Evt2: the transport connection the runtime opened is up.
    case transportConnectConfirm
    /// Evt3
    case associateACReceived(AssociateAC)
    /// Evt4
    case associateRJReceived(AssociateRJ)
    /// Evt5: a peer connected to us (acceptor / SCP).
    case transportConnectIndication
    /// Evt6
    case associateRQReceived(AssociateRQ)
    /// Evt7: the local user accepts the association.
    case associateACPrimitive(AssociateAC)
    /// Evt8: the local user rejects the association.
    case associateRJPrimitive(AssociateRJ)
    /// Evt9: the local user sends data.
    case pDataRequestPrimitive(PDataTF)
    /// Evt10
    case pDataTFReceived(PDataTF)
    /// Evt11: the local user asks to release the association.
    case releaseRequestPrimitive
    /// Evt12
    case releaseRQReceived
    /// Evt13
    case releaseRPReceived
    /// Evt14: the local user answers a release indication.
    case releaseResponsePrimitive
    /// Evt15: the local user aborts (its A-ABORT PDU is sent as given).
    case abortRequestPrimitive(AAbort)
    /// Evt16
    case abortReceived(AAbort)
    /// Evt17
    case transportClosed
    /// Evt18
    case artimExpired
    /// Evt19: the decoder threw; the error carries the A-ABORT reason.
    case invalidPDUReceived(PDUDecodingError)

    /// The event for a decoded PDU (Evt3, 4, 6, 10, 12, 13 or 16).
    public static func pduReceived(_ pdu: PDU) -> AssociationEvent {
        switch pdu {
        case .associateRQ(let rq): .associateRQReceived(rq)
        case .associateAC(let ac): .associateACReceived(ac)
        case .associateRJ(let rj): .associateRJReceived(rj)
        case .pDataTF(let data): .pDataTFReceived(data)
        case .releaseRQ: .releaseRQReceived
        case .releaseRP: .releaseRPReceived
        case .abort(let abort): .abortReceived(abort)
        }
    }

    /// The standard's event number.
    public var id: AssociationEventID {
        switch self {
        case .associateRequestPrimitive: .associateRequestPrimitive
        case .transportConnectConfirm: .transportConnectConfirm
        case .associateACReceived: .associateACReceived
        case .associateRJReceived: .associateRJReceived
        case .transportConnectIndication: .transportConnectIndication
        case .associateRQReceived: .associateRQReceived
        case .associateACPrimitive: .associateAcceptPrimitive
        case .associateRJPrimitive: .associateRejectPrimitive
        case .pDataRequestPrimitive: .pDataRequestPrimitive
        case .pDataTFReceived: .pDataTFReceived
        case .releaseRequestPrimitive: .releaseRequestPrimitive
        case .releaseRQReceived: .releaseRQReceived
        case .releaseRPReceived: .releaseRPReceived
        case .releaseResponsePrimitive: .releaseResponsePrimitive
        case .abortRequestPrimitive: .abortRequestPrimitive
        case .abortReceived: .abortReceived
        case .transportClosed: .transportClosed
        case .artimExpired: .artimExpired
        case .invalidPDUReceived: .invalidPDUReceived
        }
    }
}
