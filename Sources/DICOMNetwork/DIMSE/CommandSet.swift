import NIOCore

/// A DIMSE command set: the group 0000 elements, always Implicit VR Little Endian
/// (PS3.7 §6.3.1, §E.1).
///
/// ```
/// each element:
/// +-----------+-----------+----------------------+------------------------+
/// | group     | element   | value length         | value (even length)    |
/// | UInt16 LE | UInt16 LE | UInt32 LE            |                        |
/// +-----------+-----------+----------------------+------------------------+
/// (0000,0000) CommandGroupLength UL = byte count of all following elements
/// ```
///
/// ``encode(into:)`` computes (0000,0000); ``decode(_:)`` validates it. Elements outside
/// the command dictionary are kept as raw bytes and re-encoded unchanged.
public struct CommandSet: Sendable, Hashable {
    /// The elements, without (0000,0000) which is derived on encoding.
    public private(set) var elements: [CommandElement: CommandValue]

    public init() {
        self.elements = [:]
    }

    public subscript(element: CommandElement) -> CommandValue? {
        get { elements[element] }
        set {
            guard element != .commandGroupLength else { return }
            elements[element] = newValue
        }
    }

    public func uint16(_ element: CommandElement) -> UInt16? {
        if case .uint16(let value) = elements[element] { return value }
        return nil
    }

    public func uint32(_ element: CommandElement) -> UInt32? {
        if case .uint32(let value) = elements[element] { return value }
        return nil
    }

    public func string(_ element: CommandElement) -> String? {
        if case .string(let value) = elements[element] { return value }
        return nil
    }

    public func tags(_ element: CommandElement) -> [UInt32]? {
        if case .tags(let value) = elements[element] { return value }
        return nil
    }

    /// CommandField (0000,0100).
    public var commandField: UInt16? { uint16(.commandField) }

    /// CommandDataSetType (0000,0800): any value other than 0x0101 means a data set follows.
    public var hasDataSet: Bool {
        guard let type = uint16(.commandDataSetType) else { return false }
        return type != CommandSet.noDataSet
    }

    /// CommandDataSetType value meaning "no data set" (PS3.7 §E.1).
    public static let noDataSet: UInt16 = 0x0101
    /// CommandDataSetType value we send when a data set follows.
    public static let dataSetPresent: UInt16 = 0x0000

    // MARK: - Encoding

    /// Writes the command set, (0000,0000) first, elements in ascending order.
    public func encode(into buffer: inout ByteBuffer) {
        var body = ByteBuffer()
        for element in elements.keys.sorted() {
            guard let value = elements[element] else { continue }
            Self.write(element, value, into: &body)
        }
        Self.write(.commandGroupLength, .uint32(UInt32(truncatingIfNeeded: body.readableBytes)), into: &buffer)
        buffer.writeBuffer(&body)
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        encode(into: &buffer)
        return buffer
    }

    private static func write(_ element: CommandElement, _ value: CommandValue, into buffer: inout ByteBuffer) {
        var bytes: [UInt8]
        switch value {
        case .uint32(let v):
            bytes = withUnsafeBytes(of: v.littleEndian, Array.init)
        case .uint16(let v):
            bytes = withUnsafeBytes(of: v.littleEndian, Array.init)
        case .string(let s):
            bytes = Array(s.utf8)
            if bytes.count % 2 == 1 { bytes.append(element.vr == .UI ? 0x00 : 0x20) }
        case .tags(let tags):
            bytes = []
            for tag in tags {
                bytes += withUnsafeBytes(of: UInt16(truncatingIfNeeded: tag >> 16).littleEndian, Array.init)
                bytes += withUnsafeBytes(of: UInt16(truncatingIfNeeded: tag).littleEndian, Array.init)
            }
        case .bytes(let raw):
            bytes = raw
        }
        buffer.writeInteger(UInt16(0), endianness: .little)
        buffer.writeInteger(element.rawValue, endianness: .little)
        buffer.writeInteger(UInt32(truncatingIfNeeded: bytes.count), endianness: .little)
        buffer.writeBytes(bytes)
    }

    // MARK: - Decoding

    /// Decodes a complete command set. Validates the group (0000 only), every length,
    /// the VR-implied sizes (US 2, UL 4, AT multiple of 4) and, when present,
    /// CommandGroupLength against the bytes that follow it.
    public static func decode(_ buffer: ByteBuffer) throws(CommandSetError) -> CommandSet {
        var buffer = buffer
        var result = CommandSet()
        var groupLength: (value: UInt32, following: Int)?
        while buffer.readableBytes > 0 {
            guard buffer.readableBytes >= 8,
                let group = buffer.readInteger(endianness: .little, as: UInt16.self),
                let number = buffer.readInteger(endianness: .little, as: UInt16.self),
                let length = buffer.readInteger(endianness: .little, as: UInt32.self)
            else {
                throw CommandSetError(code: .truncated, message: "element header truncated")
            }
            let element = CommandElement(rawValue: number)
            guard group == 0x0000 else {
                throw CommandSetError(
                    code: .notCommandGroup,
                    message: "element (\(String(group, radix: 16)),\(String(number, radix: 16))) outside group 0000"
                )
            }
            guard length <= UInt32(buffer.readableBytes), let bytes = buffer.readBytes(length: Int(length)) else {
                throw CommandSetError(code: .truncated, message: "\(element) declares \(length) bytes, \(buffer.readableBytes) remain")
            }
            let value = try decodeValue(element, bytes)
            if element == .commandGroupLength {
                guard groupLength == nil, case .uint32(let v) = value else {
                    throw CommandSetError(code: .duplicateElement, message: "duplicate \(element)")
                }
                groupLength = (v, buffer.readableBytes)
                continue
            }
            guard result.elements[element] == nil else {
                throw CommandSetError(code: .duplicateElement, message: "duplicate \(element)")
            }
            result.elements[element] = value
        }
        if let groupLength, Int(groupLength.value) != groupLength.following {
            throw CommandSetError(
                code: .groupLengthMismatch,
                message: "CommandGroupLength \(groupLength.value) but \(groupLength.following) bytes follow"
            )
        }
        return result
    }

    private static func decodeValue(_ element: CommandElement, _ bytes: [UInt8]) throws(CommandSetError) -> CommandValue {
        switch element.vr {
        case .UL:
            guard bytes.count == 4 else { throw invalidLength(element, bytes.count) }
            return .uint32(UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24)
        case .US:
            guard bytes.count == 2 else { throw invalidLength(element, bytes.count) }
            return .uint16(UInt16(bytes[0]) | UInt16(bytes[1]) << 8)
        case .AT:
            guard bytes.count % 4 == 0 else { throw invalidLength(element, bytes.count) }
            var tags: [UInt32] = []
            var index = 0
            while index + 3 < bytes.count {
                let group = UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8
                let number = UInt32(bytes[index + 2]) | UInt32(bytes[index + 3]) << 8
                tags.append(group << 16 | number)
                index += 4
            }
            return .tags(tags)
        case .UI:
            var trimmed = bytes[...]
            while let last = trimmed.last, last == 0x00 || last == 0x20 { trimmed.removeLast() }
            return .string(String(decoding: trimmed, as: UTF8.self))
        case .AE, .LO, .SH:
            var trimmed = bytes[...]
            while let last = trimmed.last, last == 0x20 || last == 0x00 { trimmed.removeLast() }
            while let first = trimmed.first, first == 0x20 { trimmed.removeFirst() }
            return .string(String(decoding: trimmed, as: UTF8.self))
        case nil:
            return .bytes(bytes)
        }
    }

    private static func invalidLength(_ element: CommandElement, _ length: Int) -> CommandSetError {
        CommandSetError(code: .invalidLength, message: "\(element) has invalid length \(length)")
    }
}
