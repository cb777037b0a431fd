import NIOCore

/// A-ABORT PDU, type 0x07 (PS3.8 §9.3.8).
///
/// ```
///  0      1      2             6      7      8      9     10
/// +------+------+-------------+------+------+------+------+
/// | 0x07 | rsvd | length = 4  | rsvd | rsvd |source|reason|
/// +------+------+-------------+------+------+------+------+
/// ```
public struct AAbort: Sendable, Hashable {
    /// Who initiated the abort.
    public enum Source: Sendable, Hashable {
        case serviceUser  // 0
        case reserved  // 1
        case serviceProvider  // 2
        case unknown(UInt8)

        public init(wireValue: UInt8) {
            switch wireValue {
            case 0: self = .serviceUser
            case 1: self = .reserved
            case 2: self = .serviceProvider
            default: self = .unknown(wireValue)
            }
        }

        public var wireValue: UInt8 {
            switch self {
            case .serviceUser: 0
            case .reserved: 1
            case .serviceProvider: 2
            case .unknown(let value): value
            }
        }
    }

    /// Reason/Diag. (significant only when the source is the service provider).
    public enum Reason: Sendable, Hashable {
        case notSpecified  // 0
        case unrecognizedPDU  // 1
        case unexpectedPDU  // 2
        case unrecognizedPDUParameter  // 4
        case unexpectedPDUParameter  // 5
        case invalidPDUParameterValue  // 6
        case unknown(UInt8)

        public init(wireValue: UInt8) {
            switch wireValue {
            case 0: self = .notSpecified
            case 1: self = .unrecognizedPDU
            case 2: self = .unexpectedPDU
            case 4: self = .unrecognizedPDUParameter
            case 5: self = .unexpectedPDUParameter
            case 6: self = .invalidPDUParameterValue
            default: self = .unknown(wireValue)
            }
        }

        public var wireValue: UInt8 {
            switch self {
            case .notSpecified: 0
            case .unrecognizedPDU: 1
            case .unexpectedPDU: 2
            case .unrecognizedPDUParameter: 4
            case .unexpectedPDUParameter: 5
            case .invalidPDUParameterValue: 6
            case .unknown(let value): value
            }
        }
    }

    public var source: Source
    public var reason: Reason

    public init(source: Source, reason: Reason = .notSpecified) {
        self.source = source
        self.reason = reason
    }

    /// An abort requested by the local user (A-ABORT request primitive).
    public static let serviceUser = AAbort(source: .serviceUser, reason: .notSpecified)
}
