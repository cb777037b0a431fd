import CompressNIO
import NIOCore

/// Writes data elements in one of the uncompressed encodings (PS3.5 §7.1, §7.5).
///
/// Values are written as given (numbers already in the target byte order; the `uint16`/`uint32`
/// helpers do that) and padded to even length with the VR's padding byte (PS3.5 §7.1.1).
public struct DataSetWriter: Sendable {
    public let isExplicitVR: Bool
    public let isLittleEndian: Bool
    public private(set) var buffer: ByteBuffer

    /// Undefined length (PS3.5 §7.1.1).
    public static let undefinedLength: UInt32 = 0xFFFF_FFFF

    public init(explicitVR: Bool = true, littleEndian: Bool = true) {
        self.isExplicitVR = explicitVR
        self.isLittleEndian = littleEndian
        self.buffer = ByteBuffer()
    }

    /// Deflated transfer syntaxes are written as explicit VR little endian, then `deflated(_:)`.
    public init(transferSyntax: TransferSyntax) {
        self.init(explicitVR: transferSyntax.isExplicitVR, littleEndian: transferSyntax.isLittleEndian)
    }

    private var endianness: Endianness { isLittleEndian ? .little : .big }

    /// Writes a complete element, padding an odd-length value.
    ///
    /// A value too long for its length field (over 65 534 bytes for a 16-bit-length VR in explicit
    /// VR, far beyond any such VR's maximum in PS3.5 Table 6.2-1) is cut, so the output stays parseable.
    public mutating func write(_ tag: Tag, _ vr: VR, _ value: some Collection<UInt8>) {
        let limit = isExplicitVR && !vr.usesLongLength ? 0xFFFE : 0xFFFF_FFFE
        let bytes = value.prefix(limit)
        let count = bytes.count
        writeHeader(tag, vr, length: UInt32(truncatingIfNeeded: count + (count & 1)))
        buffer.writeBytes(bytes)
        if count & 1 == 1 { buffer.writeInteger(vr.paddingByte) }
    }

    /// Writes `elements` in order (the caller sorts them by tag, PS3.5 §7.1).
    public mutating func write(_ elements: [DataElement]) {
        for element in elements {
            write(element.tag, element.vr, element.value)
        }
    }

    /// Encodes `elements` as a data set in `transferSyntax` (uncompressed; deflate with `deflated(_:)`).
    public static func encode(_ elements: [DataElement], transferSyntax: TransferSyntax) -> ByteBuffer {
        var writer = DataSetWriter(transferSyntax: transferSyntax)
        writer.write(elements)
        return writer.buffer
    }

    /// Writes a string value (UTF-8 bytes; multiple values joined with "\").
    public mutating func write(_ tag: Tag, _ vr: VR, string: String) {
        write(tag, vr, Array(string.utf8))
    }

    public mutating func write(_ tag: Tag, uint16 value: UInt16) {
        var bytes = ByteBuffer()
        bytes.writeInteger(value, endianness: endianness)
        write(tag, .US, bytes.readableBytesView)
    }

    public mutating func write(_ tag: Tag, uint32 value: UInt32) {
        var bytes = ByteBuffer()
        bytes.writeInteger(value, endianness: endianness)
        write(tag, .UL, bytes.readableBytesView)
    }

    /// Writes only a header; `length` may be `undefinedLength` for SQ, UN and encapsulated OB.
    public mutating func writeHeader(_ tag: Tag, _ vr: VR, length: UInt32) {
        buffer.writeInteger(tag.group, endianness: endianness)
        buffer.writeInteger(tag.element, endianness: endianness)
        if isExplicitVR {
            let (code0, code1) = vr.code
            buffer.writeInteger(code0)
            buffer.writeInteger(code1)
            if vr.usesLongLength {
                buffer.writeInteger(UInt16(0))
                buffer.writeInteger(length, endianness: endianness)
            } else {
                buffer.writeInteger(UInt16(truncatingIfNeeded: length), endianness: endianness)
            }
        } else {
            buffer.writeInteger(length, endianness: endianness)
        }
    }

    /// Item, item delimitation or sequence delimitation header (PS3.5 §7.5): tag and 32-bit length.
    public mutating func writeDelimiter(_ tag: Tag, length: UInt32 = 0) {
        buffer.writeInteger(tag.group, endianness: endianness)
        buffer.writeInteger(tag.element, endianness: endianness)
        buffer.writeInteger(length, endianness: endianness)
    }

    /// Starts an undefined-length sequence; close it with `endSequence()`.
    public mutating func beginSequence(_ tag: Tag, vr: VR = .SQ) {
        writeHeader(tag, vr, length: Self.undefinedLength)
    }

    public mutating func beginItem(length: UInt32 = DataSetWriter.undefinedLength) {
        writeDelimiter(.item, length: length)
    }

    public mutating func endItem() {
        writeDelimiter(.itemDelimitationItem)
    }

    public mutating func endSequence() {
        writeDelimiter(.sequenceDelimitationItem)
    }

    /// Appends already encoded bytes (e.g. a nested data set written by another writer).
    public mutating func writeRaw(_ bytes: ByteBuffer) {
        var bytes = bytes
        buffer.writeBuffer(&bytes)
    }

    /// Raw deflate of an explicit VR little endian data set (PS3.5 §A.5).
    public static func deflated(_ dataSet: ByteBuffer) throws -> ByteBuffer {
        var input = dataSet
        return try input.compress(with: .deflate())
    }
}
