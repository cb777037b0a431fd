/// A-ASSOCIATE-RQ PDU, type 0x01 (PS3.8 §9.3.2).
///
/// ```
///  0      1      2             6        8        10          26          42         74
/// +------+------+-------------+--------+--------+-----------+-----------+----------+-----------
/// | 0x01 | rsvd | length      |protocol| rsvd   | called AE | calling AE| reserved | items ...
/// |      |      | (UInt32 BE) |version |        | 16 bytes  | 16 bytes  | 32 bytes | 0x10 app ctx
/// +------+------+-------------+--------+--------+-----------+-----------+----------+ 0x20 pres ctx*
///                                                                                    0x50 user info
/// ```
///
/// AE titles are space-padded to 16 bytes on the wire and trimmed in this model.
public struct AssociateRQ: Sendable, Hashable {
    /// Bit 0 set = protocol version 1, the only one defined.
    public var protocolVersion: UInt16
    public var calledAETitle: String
    public var callingAETitle: String
    public var applicationContextName: String
    public var presentationContexts: [PresentationContextProposal]
    public var userInformation: UserInformation

    /// The DICOM application context name (PS3.7 Annex A.2.1).
    public static let dicomApplicationContextName = "1.2.840.10008.3.1.1.1"

    public init(
        protocolVersion: UInt16 = 1,
        calledAETitle: String,
        callingAETitle: String,
        applicationContextName: String = AssociateRQ.dicomApplicationContextName,
        presentationContexts: [PresentationContextProposal],
        userInformation: UserInformation = UserInformation()
    ) {
        self.protocolVersion = protocolVersion
        self.calledAETitle = calledAETitle
        self.callingAETitle = callingAETitle
        self.applicationContextName = applicationContextName
        self.presentationContexts = presentationContexts
        self.userInformation = userInformation
    }
}
