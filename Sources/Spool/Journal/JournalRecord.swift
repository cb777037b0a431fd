import CLinux
import NIOCore

/// What a journal record carries. The type lets other acknowledged inputs (HL7 messages)
/// ride on the same journal and the same group commit as received instances.
public enum JournalRecordType: UInt8, Sendable {
    /// A received instance: its Part-10 bytes (preamble, file meta information, data set).
    case dicomInstance = 1
    /// An acknowledged HL7 v2 message: its bytes as received (docs/hl7.md).
    case hl7Message = 2
    /// Bytes of a reception that was abandoned, or that outgrew the inline limit and moved to
    /// a segment of its own, while it was being written at the journal's head
    /// (`JournalHeadWriter`): skipped, their checksum is not checked.
    case padding = 3
}

/// How a record's payload is checked.
public enum PayloadChecksum: Sendable, Equatable {
    /// CRC-32C (format version 2): a few microseconds per record with the SSE4.2 instruction.
    case crc32c(UInt32)
    /// SHA-256, lower-case hex (format version 1, the first journals: still read).
    case sha256(String)

    /// The SHA-256 when the record carries one (the index's `sha256` then needs no digest).
    public var sha256: String? {
        if case .sha256(let digest) = self { return digest }
        return nil
    }
}

/// The self-describing header in front of each record's payload (little endian):
///
/// ```
///  0   4  magic "PSJR"
///  4   1  format version: 2 (1 = the same with a SHA-256 at 20, still read)
///  5   1  record type (JournalRecordType)
///  6   2  reserved, 0
///  8   4  header length: this header, its fields, its padding and its CRC
/// 12   8  payload length
/// 20   4  CRC-32C of the payload (version 1: 20..<52 SHA-256 of the payload)
/// 24  28  zeros (version 2)
/// 52   2  field count, then per field: key length (1), key, value length (2), value (UTF-8)
///  …      zeros up to header length − 4
/// −4   4  CRC-32C of every header byte before it
/// ```
///
/// A record is valid when its header's CRC matches and its payload matches its checksum;
/// a header of zeros is the end of the written part of a segment (segments are zero-filled).
/// The payload's checksum is a CRC-32C, as in ext4, iSCSI or Kafka, rather than the SHA-256
/// of version 1: hashing cost a receiving thread ~0.5 ms of CPU per 512 KiB CT instance, a
/// third of what storescp spends on the whole instance. The index's SHA-256 is computed
/// apart, off the reception path (`Spool.digestPending`).
public struct JournalRecordHeader: Sendable, Equatable {
    public var type: JournalRecordType
    public var payloadLength: Int
    public var checksum: PayloadChecksum
    /// What the record says about itself (for an instance: SOP class and instance UIDs,
    /// transfer syntax, calling AE title, reception time, data set offset).
    public var fields: [String: String]

    public static let magic: [UInt8] = Array("PSJR".utf8)
    public static let version: UInt8 = 2
    static let versions: ClosedRange<UInt8> = 1...2
    /// Bytes read first to learn the header length.
    public static let prefixLength = 12
    /// Headers never exceed this (a guard against a corrupt length).
    public static let maximumLength = 64 * 1024
    static let fixedLength = 54

    /// Where the data set starts in the payload (`JournalFields.dataSetOffset`), 0 if absent.
    public var dataSetOffset: Int { Int(fields[JournalFields.dataSetOffset] ?? "") ?? 0 }

    /// A padding record over `payloadLength` bytes.
    public static func padding(_ payloadLength: Int) -> JournalRecordHeader {
        JournalRecordHeader(type: .padding, payloadLength: payloadLength, checksum: .crc32c(0), fields: [:])
    }

    public init(type: JournalRecordType, payloadLength: Int, checksum: PayloadChecksum, fields: [String: String]) {
        self.type = type
        self.payloadLength = payloadLength
        self.checksum = checksum
        self.fields = fields
    }

    /// The encoded header; `paddedTo` reserves a fixed size (a record whose header is written
    /// after its payload). Throws when the fields do not fit.
    public func encoded(paddedTo: Int? = nil) throws(JournalError) -> [UInt8] {
        var bytes = Self.magic
        switch checksum {
        case .crc32c: bytes.append(Self.version)
        case .sha256: bytes.append(1)
        }
        bytes.append(type.rawValue)
        bytes += [0, 0]
        bytes += [0, 0, 0, 0]  // header length, set below
        bytes.appendLittleEndian(UInt64(payloadLength))
        switch checksum {
        case .crc32c(let crc):
            bytes.appendLittleEndian(crc)
            bytes += [UInt8](repeating: 0, count: 28)
        case .sha256(let hex):
            let digest = Self.bytes(hex: hex)
            guard digest.count == 32 else { throw JournalError("SHA-256 must be 64 hex digits") }
            bytes += digest
        }
        bytes.appendLittleEndian(UInt16(fields.count))
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            let k = Array(key.utf8), v = Array(value.utf8)
            guard k.count <= UInt8.max, v.count <= UInt16.max else { throw JournalError("field \(key) too long") }
            bytes.append(UInt8(k.count))
            bytes += k
            bytes.appendLittleEndian(UInt16(v.count))
            bytes += v
        }
        let length = paddedTo ?? (bytes.count + 4)
        guard length >= bytes.count + 4, length <= Self.maximumLength else {
            throw JournalError("header of \(bytes.count + 4) bytes does not fit in \(length)")
        }
        bytes += [UInt8](repeating: 0, count: length - 4 - bytes.count)
        let lengthBytes = withUnsafeBytes(of: UInt32(length).littleEndian, Array.init)
        bytes.replaceSubrange(8..<12, with: lengthBytes)
        bytes.appendLittleEndian(CRC32C.checksum(bytes))
        return bytes
    }

    /// What the first `prefixLength` bytes at a record position say.
    public enum Prefix: Equatable, Sendable {
        /// Zeros: nothing was ever written here.
        case end
        /// A header of this many bytes starts here (not yet checked).
        case header(length: Int)
        /// Neither: a torn or foreign write.
        case invalid(String)
    }

    public static func prefix(_ bytes: some Collection<UInt8>) -> Prefix {
        let b = Array(bytes.prefix(prefixLength))
        guard b.count == prefixLength else { return .invalid("short prefix") }
        if b.allSatisfy({ $0 == 0 }) { return .end }
        guard Array(b[0..<4]) == magic else { return .invalid("no record magic") }
        guard versions.contains(b[4]) else { return .invalid("unknown record version \(b[4])") }
        let length = Int(b.littleEndianUInt32(at: 8))
        guard length >= fixedLength + 4, length <= maximumLength else { return .invalid("header length \(length)") }
        return .header(length: length)
    }

    /// Decodes a complete header (`header(length:)` bytes), checking its CRC.
    public static func decode(_ bytes: [UInt8]) throws(JournalError) -> JournalRecordHeader {
        guard case .header(let length) = prefix(bytes), bytes.count == length else {
            throw JournalError("not a record header")
        }
        guard CRC32C.checksum(bytes[..<(length - 4)]) == bytes.littleEndianUInt32(at: length - 4) else {
            throw JournalError("header checksum mismatch")
        }
        guard let type = JournalRecordType(rawValue: bytes[5]) else { throw JournalError("unknown record type \(bytes[5])") }
        let payloadLength = bytes.littleEndianUInt64(at: 12)
        guard payloadLength <= UInt64(Int.max / 2) else { throw JournalError("payload length \(payloadLength)") }
        let checksum: PayloadChecksum = bytes[4] == 1
            ? .sha256(bytes[20..<52].map { String($0, radix: 16).leftPadded(to: 2) }.joined())
            : .crc32c(bytes.littleEndianUInt32(at: 20))
        var fields: [String: String] = [:]
        var position = 54
        for _ in 0..<Int(bytes.littleEndianUInt16(at: 52)) {
            guard position + 1 <= length - 4 else { throw JournalError("truncated fields") }
            let keyLength = Int(bytes[position])
            position += 1
            guard position + keyLength + 2 <= length - 4 else { throw JournalError("truncated fields") }
            let key = String(decoding: bytes[position..<(position + keyLength)], as: UTF8.self)
            position += keyLength
            let valueLength = Int(bytes.littleEndianUInt16(at: position))
            position += 2
            guard position + valueLength <= length - 4 else { throw JournalError("truncated fields") }
            fields[key] = String(decoding: bytes[position..<(position + valueLength)], as: UTF8.self)
            position += valueLength
        }
        return JournalRecordHeader(type: type, payloadLength: Int(payloadLength), checksum: checksum, fields: fields)
    }

    static func bytes(hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var high: UInt8?
        for unit in hex.utf8 {
            guard let nibble = UInt8(String(UnicodeScalar(unit)), radix: 16) else { return [] }
            if let h = high {
                result.append(h << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return high == nil ? result : []
    }
}

/// Field names of a `.dicomInstance` record's header: what replay needs to index it again.
public enum JournalFields {
    public static let sopInstanceUID = "sop_instance_uid"
    public static let sopClassUID = "sop_class_uid"
    public static let transferSyntaxUID = "transfer_syntax_uid"
    public static let callingAETitle = "calling_ae_title"
    /// Seconds since 1970, as a decimal.
    public static let receivedAt = "received_at"
    /// Where the data set starts in the payload (after the Part-10 header).
    public static let dataSetOffset = "data_set_offset"
}

public struct JournalError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// CRC-32C (Castagnoli), as iSCSI and ext4 use it: guards record headers and payloads.
public enum CRC32C {
    public static func checksum(_ bytes: some Collection<UInt8>) -> UInt32 {
        update(0, bytes)
    }

    /// Continues `crc` (0 to start) over `bytes`.
    public static func update(_ crc: UInt32, _ bytes: some Collection<UInt8>) -> UInt32 {
        if let result = bytes.withContiguousStorageIfAvailable({ update(crc, UnsafeRawBufferPointer($0)) }) {
            return result
        }
        return Array(bytes).withUnsafeBytes { update(crc, $0) }
    }

    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress else { return crc }
        return passerelle_crc32c(crc, base, bytes.count)
    }
}

extension Array where Element == UInt8 {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    func littleEndianUInt16(at offset: Int) -> UInt16 {
        UInt16(self[offset]) | UInt16(self[offset + 1]) << 8
    }

    func littleEndianUInt32(at offset: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(self[offset + $1]) << (8 * $1) }
    }

    func littleEndianUInt64(at offset: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 | UInt64(self[offset + $1]) << (8 * $1) }
    }
}
