/// The events of the DICOM Upper Layer protocol machine (PS3.8 §9.2.2, Table 9-10).
/// The raw value is the standard's event number (Evt1 = 1).
public enum AssociationEventID: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case associateRequestPrimitive = 1  // Evt1: A-ASSOCIATE request (local user)
    case transportConnectConfirm = 2  // Evt2: transport connect confirmation
    case associateACReceived = 3  // Evt3: A-ASSOCIATE-AC PDU received
    case associateRJReceived = 4  // Evt4: A-ASSOCIATE-RJ PDU received
    case transportConnectIndication = 5  // Evt5: transport connection indication
    case associateRQReceived = 6  // Evt6: A-ASSOCIATE-RQ PDU received
    case associateAcceptPrimitive = 7  // Evt7: A-ASSOCIATE response primitive (accept)
    case associateRejectPrimitive = 8  // Evt8: A-ASSOCIATE response primitive (reject)
    case pDataRequestPrimitive = 9  // Evt9: P-DATA request primitive
    case pDataTFReceived = 10  // Evt10: P-DATA-TF PDU received
    case releaseRequestPrimitive = 11  // Evt11: A-RELEASE request primitive
    case releaseRQReceived = 12  // Evt12: A-RELEASE-RQ PDU received
    case releaseRPReceived = 13  // Evt13: A-RELEASE-RP PDU received
    case releaseResponsePrimitive = 14  // Evt14: A-RELEASE response primitive
    case abortRequestPrimitive = 15  // Evt15: A-ABORT request primitive
    case abortReceived = 16  // Evt16: A-ABORT PDU received
    case transportClosed = 17  // Evt17: transport connection closed indication
    case artimExpired = 18  // Evt18: ARTIM timer expired
    case invalidPDUReceived = 19  // Evt19: unrecognised or invalid PDU received

    public var description: String { "Evt\(rawValue)" }
}
