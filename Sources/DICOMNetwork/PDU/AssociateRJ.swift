/// A-ASSOCIATE-RJ PDU, type 0x03 (PS3.8 §9.3.4).
///
/// ```
///  0      1      2             6      7      8      9     10
/// +------+------+-------------+------+------+------+------+
/// | 0x03 | rsvd | length = 4  | rsvd |result|source|reason|
/// +------+------+-------------+------+------+------+------+
/// ```
public struct AssociateRJ: Sendable, Hashable {
    public enum Result: UInt8, Sendable, Hashable {
        case rejectedPermanent = 1
        case rejectedTransient = 2
    }

    /// Source and reason, typed together because each reason belongs to one source.
    public enum Reason: Sendable, Hashable {
        /// Source 1: DICOM UL service-user.
        case serviceUser(ServiceUserReason)
        /// Source 2: DICOM UL service-provider (ACSE related function).
        case serviceProviderACSE(ServiceProviderACSEReason)
        /// Source 3: DICOM UL service-provider (Presentation related function).
        case serviceProviderPresentation(ServiceProviderPresentationReason)

        public var sourceWireValue: UInt8 {
            switch self {
            case .serviceUser: 1
            case .serviceProviderACSE: 2
            case .serviceProviderPresentation: 3
            }
        }

        public var reasonWireValue: UInt8 {
            switch self {
            case .serviceUser(let reason): reason.rawValue
            case .serviceProviderACSE(let reason): reason.rawValue
            case .serviceProviderPresentation(let reason): reason.rawValue
            }
        }

        /// Maps wire values; reserved reason values map to the source's "no reason" value.
        /// Returns `nil` for an unknown source.
        public init?(source: UInt8, reason: UInt8) {
            switch source {
            case 1: self = .serviceUser(ServiceUserReason(rawValue: reason) ?? .noReason)
            case 2: self = .serviceProviderACSE(ServiceProviderACSEReason(rawValue: reason) ?? .noReason)
            case 3:
                self = .serviceProviderPresentation(
                    ServiceProviderPresentationReason(rawValue: reason) ?? .temporaryCongestion
                )
            default: return nil
            }
        }
    }

    public enum ServiceUserReason: UInt8, Sendable, Hashable {
        case noReason = 1
        case applicationContextNameNotSupported = 2
        case callingAETitleNotRecognized = 3
        case calledAETitleNotRecognized = 7
    }

    public enum ServiceProviderACSEReason: UInt8, Sendable, Hashable {
        case noReason = 1
        case protocolVersionNotSupported = 2
    }

    public enum ServiceProviderPresentationReason: UInt8, Sendable, Hashable {
        case temporaryCongestion = 1
        case localLimitExceeded = 2
    }

    public var result: Result
    public var reason: Reason

    public init(result: Result, reason: Reason) {
        self.result = result
        self.reason = reason
    }
}
