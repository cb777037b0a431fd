import NIOCore

/// An Upper Layer protocol data unit (PS3.8 §9.3).
///
/// Every PDU starts with the same six-byte header:
///
/// ```
///  0        1        2                                   6
/// +--------+--------+--------+--------+--------+--------+----------------------+
/// |  type  |reserved|        PDU-length (UInt32 BE)     |  variable field ...  |
/// +--------+--------+--------+--------+--------+--------+----------------------+
/// ```
///
/// PDU-length counts the bytes that follow the header (the variable field).
public enum PDU: Sendable, Hashable {
    case associateRQ(AssociateRQ)  // 0x01
    case associateAC(AssociateAC)  // 0x02
    case associateRJ(AssociateRJ)  // 0x03
    case pDataTF(PDataTF)  // 0x04
    case releaseRQ  // 0x05
    case releaseRP  // 0x06
    case abort(AAbort)  // 0x07

    /// The PDU-type byte on the wire.
    public var type: PDUType {
        switch self {
        case .associateRQ: .associateRQ
        case .associateAC: .associateAC
        case .associateRJ: .associateRJ
        case .pDataTF: .pDataTF
        case .releaseRQ: .releaseRQ
        case .releaseRP: .releaseRP
        case .abort: .abort
        }
    }
}

/// The PDU-type byte of the PDU header (PS3.8 §9.3.1).
public enum PDUType: UInt8, Sendable, Hashable, CaseIterable {
    case associateRQ = 0x01
    case associateAC = 0x02
    case associateRJ = 0x03
    case pDataTF = 0x04
    case releaseRQ = 0x05
    case releaseRP = 0x06
    case abort = 0x07
}
