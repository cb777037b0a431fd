/// A DIMSE status code, (0000,0900) (PS3.7 Annex C).
///
/// A struct with statics: any UInt16 from the wire is representable.
public struct DIMSEStatus: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    public enum Kind: Sendable, Hashable {
        case success, pending, warning, failure, cancel
    }

    public static let success = DIMSEStatus(0x0000)
    public static let pending = DIMSEStatus(0xFF00)
    /// C-FIND: pending, some optional keys were not supported.
    public static let pendingWithWarnings = DIMSEStatus(0xFF01)
    public static let cancel = DIMSEStatus(0xFE00)

    // Failures
    public static let outOfResources = DIMSEStatus(0xA700)
    /// C-MOVE/C-GET: refused, out of resources — unable to perform sub-operations.
    public static let refusedOutOfResourcesSubOps = DIMSEStatus(0xA702)
    public static let moveDestinationUnknown = DIMSEStatus(0xA801)
    /// C-STORE: error, data set does not match SOP class.
    public static let dataSetDoesNotMatchSOPClass = DIMSEStatus(0xA900)
    /// C-FIND/C-MOVE/C-GET: identifier does not match SOP class (same code as above).
    public static let identifierDoesNotMatchSOPClass = DIMSEStatus(0xA900)
    public static let cannotUnderstand = DIMSEStatus(0xC000)
    public static let sopClassNotSupported = DIMSEStatus(0x0122)
    public static let duplicateSOPInstance = DIMSEStatus(0x0111)
    public static let processingFailure = DIMSEStatus(0x0110)
    public static let unrecognizedOperation = DIMSEStatus(0x0211)

    // Warnings
    /// C-STORE: coercion of data elements.
    public static let coercionOfDataElements = DIMSEStatus(0xB000)
    /// C-MOVE/C-GET: sub-operations complete, one or more failures or warnings.
    /// Same code as ``coercionOfDataElements``; the meaning depends on the service.
    public static let subOperationsCompleteWithFailures = DIMSEStatus(0xB000)
    public static let elementsDiscarded = DIMSEStatus(0xB006)
    public static let dataSetDoesNotMatchSOPClassWarning = DIMSEStatus(0xB007)

    /// The status class (PS3.7 §C.1–C.4).
    public var kind: Kind {
        switch rawValue {
        case 0x0000: .success
        case 0xFF00, 0xFF01: .pending
        case 0xFE00: .cancel
        case 0x0001, 0x0107, 0x0116, 0xB000...0xBFFF: .warning
        default: .failure
        }
    }

    public var description: String {
        let hex = String(rawValue, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}
