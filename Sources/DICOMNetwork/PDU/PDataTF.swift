import NIOCore

/// P-DATA-TF PDU, type 0x04 (PS3.8 §9.3.5): one or more presentation data values.
///
/// ```
///  0      1      2             6
/// +------+------+-------------+----------------------------------------------+
/// | 0x04 | rsvd | length      | PDV item, PDV item, ...                      |
/// +------+------+-------------+----------------------------------------------+
/// ```
public struct PDataTF: Sendable, Hashable {
    public var values: [PresentationDataValue]

    public init(values: [PresentationDataValue]) {
        self.values = values
    }
}

/// Presentation Data Value item of a P-DATA-TF PDU (PS3.8 §9.3.5.1, Annex E.2).
///
/// ```
///  0                    4        5        6
/// +--------------------+--------+--------+--------------------------------+
/// | item length        | context| message| fragment of a command or data  |
/// | UInt32 BE (≥ 2)    | ID     | control| set (item length − 2 bytes)    |
/// +--------------------+--------+--------+--------------------------------+
/// message control header: bit 0 = 1 command / 0 data, bit 1 = 1 last fragment
/// ```
public struct PresentationDataValue: Sendable, Hashable {
    public var contextID: UInt8
    public var isCommand: Bool
    public var isLast: Bool
    public var data: ByteBuffer

    public init(contextID: UInt8, isCommand: Bool, isLast: Bool, data: ByteBuffer) {
        self.contextID = contextID
        self.isCommand = isCommand
        self.isLast = isLast
        self.data = data
    }

    /// The message control header byte.
    public var messageControlHeader: UInt8 {
        (isCommand ? 0x01 : 0x00) | (isLast ? 0x02 : 0x00)
    }
}
