/// User Information item, type 0x50 (PS3.8 §9.3.2.3, PS3.7 Annex D.3.3).
///
/// ```
/// +------+------+---------+------------------------------------------------------+
/// | 0x50 | rsvd | length  | sub-items: 0x51 max length, 0x52 impl class UID,     |
/// |      |      | UInt16  | 0x53 async window, 0x54 role*, 0x55 impl version,    |
/// |      |      |         | 0x56 ext neg*, 0x57 common ext neg*, 0x58/0x59 ident |
/// +------+------+---------+------------------------------------------------------+
/// ```
/// Unknown sub-items are skipped when decoding.
public struct UserInformation: Sendable, Hashable {
    /// Maximum Length sub-item 0x51 (PS3.8 §D.1): the largest P-DATA-TF variable field
    /// the sender accepts. 0 = no limit. Always sent.
    public var maximumLength: UInt32
    /// Implementation Class UID sub-item 0x52 (PS3.7 §D.3.3.2).
    public var implementationClassUID: String?
    /// Asynchronous Operations Window sub-item 0x53 (PS3.7 §D.3.3.3).
    public var asynchronousOperationsWindow: AsynchronousOperationsWindow?
    /// SCP/SCU Role Selection sub-items 0x54 (PS3.7 §D.3.3.4).
    public var roleSelections: [RoleSelection]
    /// Implementation Version Name sub-item 0x55 (PS3.7 §D.3.3.2), up to 16 characters.
    public var implementationVersionName: String?
    /// SOP Class Extended Negotiation sub-items 0x56 (PS3.7 §D.3.3.5).
    public var sopClassExtendedNegotiations: [SOPClassExtendedNegotiation]
    /// SOP Class Common Extended Negotiation sub-items 0x57 (PS3.7 §D.3.3.6), RQ only.
    public var sopClassCommonExtendedNegotiations: [SOPClassCommonExtendedNegotiation]
    /// User Identity sub-item 0x58 (PS3.7 §D.3.3.7.1), RQ only.
    public var userIdentity: UserIdentity?
    /// User Identity server response sub-item 0x59 (PS3.7 §D.3.3.7.2), AC only.
    public var userIdentityResponse: UserIdentityResponse?

    public init(
        maximumLength: UInt32 = 0,
        implementationClassUID: String? = nil,
        asynchronousOperationsWindow: AsynchronousOperationsWindow? = nil,
        roleSelections: [RoleSelection] = [],
        implementationVersionName: String? = nil,
        sopClassExtendedNegotiations: [SOPClassExtendedNegotiation] = [],
        sopClassCommonExtendedNegotiations: [SOPClassCommonExtendedNegotiation] = [],
        userIdentity: UserIdentity? = nil,
        userIdentityResponse: UserIdentityResponse? = nil
    ) {
        self.maximumLength = maximumLength
        self.implementationClassUID = implementationClassUID
        self.asynchronousOperationsWindow = asynchronousOperationsWindow
        self.roleSelections = roleSelections
        self.implementationVersionName = implementationVersionName
        self.sopClassExtendedNegotiations = sopClassExtendedNegotiations
        self.sopClassCommonExtendedNegotiations = sopClassCommonExtendedNegotiations
        self.userIdentity = userIdentity
        self.userIdentityResponse = userIdentityResponse
    }
}

/// Asynchronous Operations Window sub-item 0x53 (PS3.7 §D.3.3.3).
///
/// ```
/// +------+------+-----------+--------------------+--------------------+
/// | 0x53 | rsvd | length=4  | max ops invoked    | max ops performed  |
/// |      |      |           | UInt16 BE          | UInt16 BE          |
/// +------+------+-----------+--------------------+--------------------+
/// ```
public struct AsynchronousOperationsWindow: Sendable, Hashable {
    public var maximumOperationsInvoked: UInt16
    public var maximumOperationsPerformed: UInt16

    public init(maximumOperationsInvoked: UInt16, maximumOperationsPerformed: UInt16) {
        self.maximumOperationsInvoked = maximumOperationsInvoked
        self.maximumOperationsPerformed = maximumOperationsPerformed
    }
}

/// SCP/SCU Role Selection sub-item 0x54 (PS3.7 §D.3.3.4).
///
/// ```
/// +------+------+---------+-----------+-------------+---------+---------+
/// | 0x54 | rsvd | length  | UID length| SOP class   | SCU role| SCP role|
/// |      |      | UInt16  | UInt16    | UID         | 0 or 1  | 0 or 1  |
/// +------+------+---------+-----------+-------------+---------+---------+
/// ```
public struct RoleSelection: Sendable, Hashable {
    public var sopClassUID: String
    /// In an RQ: the requestor proposes to act as SCU. In an AC: that proposal is accepted.
    public var scuRole: Bool
    /// In an RQ: the requestor proposes to act as SCP. In an AC: that proposal is accepted.
    public var scpRole: Bool

    public init(sopClassUID: String, scuRole: Bool, scpRole: Bool) {
        self.sopClassUID = sopClassUID
        self.scuRole = scuRole
        self.scpRole = scpRole
    }
}

/// SOP Class Extended Negotiation sub-item 0x56 (PS3.7 §D.3.3.5).
///
/// ```
/// +------+------+---------+-----------+-------------+-----------------------------------+
/// | 0x56 | rsvd | length  | UID length| SOP class   | service-class-application-info    |
/// |      |      | UInt16  | UInt16    | UID         | (rest of the item, opaque bytes)  |
/// +------+------+---------+-----------+-------------+-----------------------------------+
/// ```
public struct SOPClassExtendedNegotiation: Sendable, Hashable {
    public var sopClassUID: String
    public var serviceClassApplicationInformation: [UInt8]

    public init(sopClassUID: String, serviceClassApplicationInformation: [UInt8]) {
        self.sopClassUID = sopClassUID
        self.serviceClassApplicationInformation = serviceClassApplicationInformation
    }
}

/// SOP Class Common Extended Negotiation sub-item 0x57 (PS3.7 §D.3.3.6).
///
/// ```
/// +------+-------+--------+--------+-----------+--------+-----------+--------+------------------+
/// | 0x57 |version| length | UID len| SOP class | UID len| service   | length | related general  |
/// |      |  (0)  | UInt16 | UInt16 | UID       | UInt16 | class UID | UInt16 | SOP classes: each|
/// |      |       |        |        |           |        |           |        | UInt16 len + UID |
/// +------+-------+--------+--------+-----------+--------+-----------+--------+------------------+
/// ```
public struct SOPClassCommonExtendedNegotiation: Sendable, Hashable {
    public var sopClassUID: String
    public var serviceClassUID: String
    public var relatedGeneralSOPClassUIDs: [String]

    public init(sopClassUID: String, serviceClassUID: String, relatedGeneralSOPClassUIDs: [String] = []) {
        self.sopClassUID = sopClassUID
        self.serviceClassUID = serviceClassUID
        self.relatedGeneralSOPClassUIDs = relatedGeneralSOPClassUIDs
    }
}

/// User Identity sub-item 0x58 of an A-ASSOCIATE-RQ (PS3.7 §D.3.3.7.1).
///
/// ```
/// +------+------+--------+------+---------+---------+----------+---------+-----------+
/// | 0x58 | rsvd | length | type | positive| primary | primary  |secondary| secondary |
/// |      |      | UInt16 | 1…5  | response| length  | field    | length  | field     |
/// |      |      |        |      | request | UInt16  |          | UInt16  | (type 2)  |
/// +------+------+--------+------+---------+---------+----------+---------+-----------+
/// ```
public struct UserIdentity: Sendable, Hashable {
    /// User-Identity-Type (struct with statics so unknown wire values survive a round trip).
    public struct IdentityType: RawRepresentable, Sendable, Hashable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        public static let username = IdentityType(rawValue: 1)
        public static let usernameAndPasscode = IdentityType(rawValue: 2)
        public static let kerberos = IdentityType(rawValue: 3)
        public static let saml = IdentityType(rawValue: 4)
        public static let jwt = IdentityType(rawValue: 5)
    }

    public var type: IdentityType
    public var positiveResponseRequested: Bool
    public var primaryField: [UInt8]
    /// Passcode for type 2; empty otherwise.
    public var secondaryField: [UInt8]

    public init(type: IdentityType, positiveResponseRequested: Bool, primaryField: [UInt8], secondaryField: [UInt8] = []) {
        self.type = type
        self.positiveResponseRequested = positiveResponseRequested
        self.primaryField = primaryField
        self.secondaryField = secondaryField
    }

    /// The primary field as UTF-8 text (the username for types 1 and 2).
    public var primaryFieldString: String { String(decoding: primaryField, as: UTF8.self) }
}

/// User Identity server response sub-item 0x59 of an A-ASSOCIATE-AC (PS3.7 §D.3.3.7.2).
///
/// ```
/// +------+------+--------+-----------------+-------------------+
/// | 0x59 | rsvd | length | response length | server response   |
/// |      |      | UInt16 | UInt16          |                   |
/// +------+------+--------+-----------------+-------------------+
/// ```
public struct UserIdentityResponse: Sendable, Hashable {
    public var serverResponse: [UInt8]

    public init(serverResponse: [UInt8]) {
        self.serverResponse = serverResponse
    }
}

extension UserInformation {
    /// The user name an audit trail may record: the primary field of a User Identity of type 1
    /// (username) or 2 (username and passcode); the passcode is never part of it.
    public var auditUserName: String? {
        guard let identity = userIdentity, identity.type == .username || identity.type == .usernameAndPasscode,
              !identity.primaryField.isEmpty else { return nil }
        return identity.primaryFieldString
    }
}
