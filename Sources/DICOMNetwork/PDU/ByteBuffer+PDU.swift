import NIOCore

// Small wire helpers shared by the PDU codec. Internal: never trap, every read checked.

extension ByteBuffer {
    /// Writes `value` as an AE title: at most 16 bytes, space padded to 16 (PS3.8 §9.3.2).
    mutating func writePDUAETitle(_ value: String) {
        let bytes = Array(value.utf8.prefix(16))
        self.writeBytes(bytes)
        if bytes.count < 16 {
            self.writeRepeatingByte(0x20, count: 16 - bytes.count)
        }
    }

    /// Writes a big-endian length-prefixed item: `type`, reserved byte, UInt16 length, value.
    ///
    /// A value longer than 65535 bytes cannot be represented; it is truncated so that the
    /// framing stays valid (callers keep their values within the limits).
    mutating func writePDUItem(type: UInt8, reservedByte: UInt8 = 0, _ body: (inout ByteBuffer) -> Void) {
        self.writeInteger(type)
        self.writeInteger(reservedByte)
        let lengthIndex = self.writerIndex
        self.writeInteger(UInt16(0))
        let start = self.writerIndex
        body(&self)
        var length = self.writerIndex - start
        if length > Int(UInt16.max) {
            self.moveWriterIndex(to: start + Int(UInt16.max))
            length = Int(UInt16.max)
        }
        self.setInteger(UInt16(length), at: lengthIndex)
    }

    /// Writes a UInt16-length-prefixed byte string (truncated at 65535 bytes).
    mutating func writeUInt16Prefixed<Bytes: Collection>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        let clipped = bytes.prefix(Int(UInt16.max))
        self.writeInteger(UInt16(clipped.count))
        self.writeBytes(clipped)
    }
}

extension String {
    /// Decodes a UID or name read from the wire: trailing NUL and space padding removed.
    init(pduBytes bytes: some Collection<UInt8>) {
        var slice = Array(bytes)
        while let last = slice.last, last == 0x00 || last == 0x20 { slice.removeLast() }
        self = String(decoding: slice, as: UTF8.self)
    }

    /// Decodes an AE title read from the wire: leading and trailing spaces (and NULs) removed.
    init(aeTitleBytes bytes: some Collection<UInt8>) {
        var slice = Array(bytes)[...]
        while let last = slice.last, last == 0x00 || last == 0x20 { slice.removeLast() }
        while let first = slice.first, first == 0x20 { slice.removeFirst() }
        // AE titles are ASCII (PS3.5 Table 6.2-1): any other byte reads as "?", one for one, so
        // that a title echoed back (A-ASSOCIATE-AC) keeps its 16 bytes (U+FFFD took 3 of them).
        self = String(decoding: slice.map { $0 < 0x80 ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
    }
}

/// A cursor over a PDU's variable field: every read returns `nil` or throws instead of trapping.
struct PDUReader {
    var buffer: ByteBuffer

    init(_ buffer: ByteBuffer) { self.buffer = buffer }

    var remaining: Int { buffer.readableBytes }

    mutating func uint8(_ what: @autoclosure () -> String) throws(PDUDecodingError) -> UInt8 {
        guard let value = buffer.readInteger(as: UInt8.self) else { throw .truncated(what()) }
        return value
    }

    mutating func uint16(_ what: @autoclosure () -> String) throws(PDUDecodingError) -> UInt16 {
        guard let value = buffer.readInteger(endianness: .big, as: UInt16.self) else { throw .truncated(what()) }
        return value
    }

    mutating func uint32(_ what: @autoclosure () -> String) throws(PDUDecodingError) -> UInt32 {
        guard let value = buffer.readInteger(endianness: .big, as: UInt32.self) else { throw .truncated(what()) }
        return value
    }

    mutating func bytes(_ count: Int, _ what: @autoclosure () -> String) throws(PDUDecodingError) -> [UInt8] {
        guard count >= 0, let value = buffer.readBytes(length: count) else { throw .truncated(what()) }
        return value
    }

    mutating func slice(_ count: Int, _ what: @autoclosure () -> String) throws(PDUDecodingError) -> ByteBuffer {
        guard count >= 0, let value = buffer.readSlice(length: count) else { throw .truncated(what()) }
        return value
    }

    mutating func skip(_ count: Int, _ what: @autoclosure () -> String) throws(PDUDecodingError) {
        guard count >= 0, count <= buffer.readableBytes else { throw .truncated(what()) }
        buffer.moveReaderIndex(forwardBy: count)
    }

    /// Reads one item (or sub-item) header and value: type, reserved byte, UInt16 length, value.
    mutating func item(in context: @autoclosure () -> String) throws(PDUDecodingError) -> (type: UInt8, value: PDUReader) {
        guard buffer.readableBytes >= 4 else {
            throw .truncated("item header in \(context())")
        }
        let type = try uint8("item type")
        _ = try uint8("item reserved byte")
        let length = Int(try uint16("item length"))
        guard length <= buffer.readableBytes else {
            throw .invalidItemLength(
                "item 0x\(String(type, radix: 16)) in \(context()) declares \(length) bytes, only \(buffer.readableBytes) remain"
            )
        }
        return (type, PDUReader(try slice(length, "item value")))
    }

    func expectEnd(_ what: @autoclosure () -> String) throws(PDUDecodingError) {
        guard buffer.readableBytes == 0 else {
            throw .trailingBytes("\(buffer.readableBytes) unexpected trailing bytes in \(what())")
        }
    }
}
