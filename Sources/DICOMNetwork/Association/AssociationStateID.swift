/// The states of the DICOM Upper Layer protocol machine (PS3.8 §9.2.1, Table 9-1…9-5).
/// The raw value is the standard's state number (Sta1 = 1).
public enum AssociationStateID: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case idle = 1  // Sta1
    case awaitingAssociateRQ = 2  // Sta2: transport open, awaiting A-ASSOCIATE-RQ PDU
    case awaitingLocalAssociateResponse = 3  // Sta3: awaiting local A-ASSOCIATE response primitive
    case awaitingTransportOpen = 4  // Sta4: awaiting transport connection opening to complete
    case awaitingAssociateACOrRJ = 5  // Sta5: awaiting A-ASSOCIATE-AC or -RJ PDU
    case established = 6  // Sta6: association established, ready for data transfer
    case awaitingReleaseRP = 7  // Sta7: awaiting A-RELEASE-RP PDU
    case awaitingLocalReleaseResponse = 8  // Sta8: awaiting local A-RELEASE response primitive
    case collisionRequestorAwaitingLocalResponse = 9  // Sta9: release collision requestor side
    case collisionAcceptorAwaitingReleaseRP = 10  // Sta10: release collision acceptor side
    case collisionRequestorAwaitingReleaseRP = 11  // Sta11: release collision requestor side
    case collisionAcceptorAwaitingLocalResponse = 12  // Sta12: release collision acceptor side
    case awaitingTransportClose = 13  // Sta13: awaiting transport connection close indication

    public var description: String { "Sta\(rawValue)" }
}
