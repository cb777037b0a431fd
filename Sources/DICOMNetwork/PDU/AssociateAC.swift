/// A-ASSOCIATE-AC PDU, type 0x02 (PS3.8 §9.3.3).
///
/// ```
///  0      1      2             6        8        10          26          42         74
/// +------+------+-------------+--------+--------+-----------+-----------+----------+-----------
/// | 0x02 | rsvd | length      |protocol| rsvd   | called AE | calling AE| reserved | items ...
/// |      |      | (UInt32 BE) |version |        | (echoed)  | (echoed)  | 32 bytes | 0x10 app ctx
/// +------+------+-------------+--------+--------+-----------+-----------+----------+ 0x21 pres ctx*
///                                                                                    0x50 user info
/// ```
///
/// The AE title fields are reserved in the AC: sent with the values received in the RQ,
/// not tested on receipt.
public struct AssociateAC: Sendable, Hashable {
    public var protocolVersion: UInt16
    public var calledAETitle: String
    public var callingAETitle: String
    public var applicationContextName: String
    public var presentationContexts: [PresentationContextResult]
    public var userInformation: UserInformation

    public init(
        protocolVersion: UInt16 = 1,
        calledAETitle: String,
        callingAETitle: String,
        applicationContextName: String = AssociateRQ.dicomApplicationContextName,
        presentationContexts: [PresentationContextResult],
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
