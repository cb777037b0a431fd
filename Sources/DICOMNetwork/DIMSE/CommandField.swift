/// CommandField (0000,0100) values of the DIMSE-C services (PS3.7 §E.1).
public struct CommandField: RawRepresentable, Sendable, Hashable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let cStoreRQ = CommandField(rawValue: 0x0001)
    public static let cStoreRSP = CommandField(rawValue: 0x8001)
    public static let cGetRQ = CommandField(rawValue: 0x0010)
    public static let cGetRSP = CommandField(rawValue: 0x8010)
    public static let cFindRQ = CommandField(rawValue: 0x0020)
    public static let cFindRSP = CommandField(rawValue: 0x8020)
    public static let cMoveRQ = CommandField(rawValue: 0x0021)
    public static let cMoveRSP = CommandField(rawValue: 0x8021)
    public static let cEchoRQ = CommandField(rawValue: 0x0030)
    public static let cEchoRSP = CommandField(rawValue: 0x8030)
    public static let cCancelRQ = CommandField(rawValue: 0x0FFF)
}

/// Priority (0000,0700) (PS3.7 §E.1).
public struct DIMSEPriority: RawRepresentable, Sendable, Hashable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let medium = DIMSEPriority(rawValue: 0x0000)
    public static let high = DIMSEPriority(rawValue: 0x0001)
    public static let low = DIMSEPriority(rawValue: 0x0002)
}
