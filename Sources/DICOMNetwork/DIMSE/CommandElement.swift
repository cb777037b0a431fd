/// The element number of a command element; the group is always 0000 (PS3.7 §E.1).
///
/// A fixed dictionary of the command elements DIMSE-C uses, with their VRs.
public struct CommandElement: RawRepresentable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public enum ValueRepresentation: Sendable, Hashable {
        case UL, US, UI, AE, AT, LO, SH
    }

    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "(0000,\(String(rawValue, radix: 16, uppercase: true).leftPadded(4)))" }

    public static let commandGroupLength = CommandElement(rawValue: 0x0000)  // UL
    public static let affectedSOPClassUID = CommandElement(rawValue: 0x0002)  // UI
    public static let requestedSOPClassUID = CommandElement(rawValue: 0x0003)  // UI
    public static let commandField = CommandElement(rawValue: 0x0100)  // US
    public static let messageID = CommandElement(rawValue: 0x0110)  // US
    public static let messageIDBeingRespondedTo = CommandElement(rawValue: 0x0120)  // US
    public static let moveDestination = CommandElement(rawValue: 0x0600)  // AE
    public static let priority = CommandElement(rawValue: 0x0700)  // US
    public static let commandDataSetType = CommandElement(rawValue: 0x0800)  // US
    public static let status = CommandElement(rawValue: 0x0900)  // US
    public static let offendingElement = CommandElement(rawValue: 0x0901)  // AT
    public static let errorComment = CommandElement(rawValue: 0x0902)  // LO
    public static let errorID = CommandElement(rawValue: 0x0903)  // US
    public static let affectedSOPInstanceUID = CommandElement(rawValue: 0x1000)  // UI
    public static let requestedSOPInstanceUID = CommandElement(rawValue: 0x1001)  // UI
    public static let numberOfRemainingSuboperations = CommandElement(rawValue: 0x1020)  // US
    public static let numberOfCompletedSuboperations = CommandElement(rawValue: 0x1021)  // US
    public static let numberOfFailedSuboperations = CommandElement(rawValue: 0x1022)  // US
    public static let numberOfWarningSuboperations = CommandElement(rawValue: 0x1023)  // US
    public static let moveOriginatorApplicationEntityTitle = CommandElement(rawValue: 0x1030)  // AE
    public static let moveOriginatorMessageID = CommandElement(rawValue: 0x1031)  // US

    /// The VR of a known command element, `nil` for elements outside the dictionary.
    public var vr: ValueRepresentation? {
        switch rawValue {
        case 0x0000: .UL
        case 0x0002, 0x0003, 0x1000, 0x1001: .UI
        case 0x0100, 0x0110, 0x0120, 0x0700, 0x0800, 0x0900, 0x0903, 0x1020, 0x1021, 0x1022, 0x1023, 0x1031: .US
        case 0x0600, 0x1030: .AE
        case 0x0901: .AT
        case 0x0902: .LO
        default: nil
        }
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
