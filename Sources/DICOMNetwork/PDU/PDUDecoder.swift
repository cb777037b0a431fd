import NIOCore

/// Frames and parses Upper Layer PDUs from a byte stream (PS3.8 §9.3).
///
/// Nothing beyond one bounded PDU is ever buffered: the length field is checked as soon as
/// the six-byte header is readable, before the body arrives.
/// - P-DATA-TF: PDU-length must be ≤ `maximumPDULength`, the Maximum Length we advertised
///   in our user information (PS3.8 §D.1: the limit applies to the P-DATA-TF variable field).
///   0 ("unlimited" in PS3.8) is bounded by ``unlimitedPDataCeiling`` all the same.
/// - every other PDU type: PDU-length must be ≤ `maximumControlPDULength` (64 KiB default).
///
/// Every failure throws a ``PDUDecodingError`` carrying the A-ABORT reason to send
/// (feed it to the state machine as ``AssociationEvent/invalidPDUReceived(_:)``, Evt19).
public struct PDUDecoder: NIOSingleStepByteToMessageDecoder, Sendable {
    public typealias InboundOut = PDU

    /// Ceiling used when `maximumPDULength` is 0 (16 MiB).
    public static let unlimitedPDataCeiling: UInt32 = 16 * 1024 * 1024
    /// Default cap for non-P-DATA PDUs (64 KiB).
    public static let defaultMaximumControlPDULength: UInt32 = 64 * 1024

    public var maximumPDULength: UInt32
    public var maximumControlPDULength: UInt32

    public init(maximumPDULength: UInt32, maximumControlPDULength: UInt32 = PDUDecoder.defaultMaximumControlPDULength) {
        self.maximumPDULength = maximumPDULength
        self.maximumControlPDULength = maximumControlPDULength
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> PDU? {
        try self.decodePDU(buffer: &buffer)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> PDU? {
        // A partial PDU at EOF is simply dropped: the transport-closed event (Evt17) follows.
        try self.decodePDU(buffer: &buffer)
    }

    /// Typed-throws entry point; `nil` means more bytes are needed.
    public func decodePDU(buffer: inout ByteBuffer) throws(PDUDecodingError) -> PDU? {
        guard buffer.readableBytes >= 6,
            let type = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
            let length = buffer.getInteger(at: buffer.readerIndex + 2, endianness: .big, as: UInt32.self)
        else { return nil }
        guard let pduType = PDUType(rawValue: type) else { throw .unknownPDUType(type) }
        let limit: UInt32
        if pduType == .pDataTF {
            limit = maximumPDULength == 0 ? Self.unlimitedPDataCeiling : maximumPDULength
        } else {
            limit = maximumControlPDULength
        }
        guard length <= limit else {
            throw .pduTooLarge("PDU type 0x\(String(type, radix: 16)) length \(length) exceeds maximum \(limit)")
        }
        guard buffer.readableBytes - 6 >= Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 6)
        guard let body = buffer.readSlice(length: Int(length)) else { return nil }
        return try PDU.parse(type: type, body: body)
    }
}
