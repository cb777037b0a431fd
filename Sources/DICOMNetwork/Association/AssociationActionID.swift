/// The actions of the DICOM Upper Layer protocol machine (PS3.8 §9.2.2, Tables 9-6…9-9).
public enum AssociationActionID: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    // Table 9-6, association establishment
    case ae1 = "AE-1"  // issue TRANSPORT CONNECT request → Sta4
    case ae2 = "AE-2"  // send A-ASSOCIATE-RQ PDU → Sta5
    case ae3 = "AE-3"  // issue A-ASSOCIATE confirmation (accept) → Sta6
    case ae4 = "AE-4"  // issue A-ASSOCIATE confirmation (reject), close transport → Sta1
    case ae5 = "AE-5"  // issue transport connection response, start ARTIM → Sta2
    case ae6 = "AE-6"  // stop ARTIM; indicate A-ASSOCIATE (→ Sta3) or send RJ, start ARTIM (→ Sta13)
    case ae7 = "AE-7"  // send A-ASSOCIATE-AC PDU → Sta6
    case ae8 = "AE-8"  // send A-ASSOCIATE-RJ PDU, start ARTIM → Sta13
    // Table 9-7, data transfer
    case dt1 = "DT-1"  // send P-DATA-TF PDU → Sta6
    case dt2 = "DT-2"  // issue P-DATA indication → Sta6
    // Table 9-8, association release
    case ar1 = "AR-1"  // send A-RELEASE-RQ PDU → Sta7
    case ar2 = "AR-2"  // issue A-RELEASE indication → Sta8
    case ar3 = "AR-3"  // issue A-RELEASE confirmation, close transport → Sta1
    case ar4 = "AR-4"  // send A-RELEASE-RP PDU, start ARTIM → Sta13
    case ar5 = "AR-5"  // stop ARTIM → Sta1
    case ar6 = "AR-6"  // issue P-DATA indication → Sta7
    case ar7 = "AR-7"  // send P-DATA-TF PDU → Sta8
    case ar8 = "AR-8"  // issue A-RELEASE indication (collision) → Sta9 (requestor) / Sta10 (acceptor)
    case ar9 = "AR-9"  // send A-RELEASE-RP PDU → Sta11
    case ar10 = "AR-10"  // issue A-RELEASE confirmation → Sta12
    // Table 9-9, association abort
    case aa1 = "AA-1"  // send A-ABORT PDU, (re)start ARTIM → Sta13
    case aa2 = "AA-2"  // stop ARTIM if running, close transport → Sta1
    case aa3 = "AA-3"  // issue A-ABORT / A-P-ABORT indication, close transport → Sta1
    case aa4 = "AA-4"  // issue A-P-ABORT indication → Sta1
    case aa5 = "AA-5"  // stop ARTIM → Sta1
    case aa6 = "AA-6"  // ignore PDU → Sta13
    case aa7 = "AA-7"  // send A-ABORT PDU → Sta13
    case aa8 = "AA-8"  // send A-ABORT PDU (provider), issue A-P-ABORT indication, start ARTIM → Sta13

    public var description: String { rawValue }
}
