import NIOCore

/// A forward-only source of bytes from which data sets are read without holding them in memory.
///
/// Implementations bound their buffering: reading a 1 GB instance costs the same memory as a 1 KB one.
public protocol DICOMByteSource {
    /// Returns exactly `count` bytes or throws `.truncated`.
    mutating func read(_ count: Int) throws(DataSetError) -> ByteBuffer
    /// Skips exactly `count` bytes or throws `.truncated`.
    mutating func skip(_ count: Int) throws(DataSetError)
    /// Returns between 1 and `maxCount` bytes, or an empty buffer at the end of the source.
    /// Needed by `InflatingByteSource`, whose compressed length is not known in advance.
    mutating func readAvailable(upTo maxCount: Int) throws(DataSetError) -> ByteBuffer
    /// True when no byte is left; consumes nothing.
    mutating func isAtEnd() throws(DataSetError) -> Bool
    /// Bytes consumed so far (relative to where the source started).
    var position: Int { get }
}

/// A `DICOMByteSource` over an in-memory `ByteBuffer` (tests, small PDV payloads).
public struct BufferByteSource: DICOMByteSource, Sendable {
    private var buffer: ByteBuffer
    private let start: Int

    public init(_ buffer: ByteBuffer) {
        self.buffer = buffer
        self.start = buffer.readerIndex
    }

    public init(_ bytes: some Sequence<UInt8>) {
        self.init(ByteBuffer(bytes: bytes))
    }

    public var position: Int { buffer.readerIndex - start }
    public var remaining: Int { buffer.readableBytes }

    public mutating func read(_ count: Int) throws(DataSetError) -> ByteBuffer {
        guard count >= 0 else { throw DataSetError(.invalidLength, offset: position, "negative read") }
        guard let slice = buffer.readSlice(length: count) else {
            throw .truncated(at: position, "needed \(count) bytes, \(buffer.readableBytes) left")
        }
        return slice
    }

    public mutating func skip(_ count: Int) throws(DataSetError) {
        guard count >= 0 else { throw DataSetError(.invalidLength, offset: position, "negative skip") }
        guard count <= buffer.readableBytes else {
            throw .truncated(at: position, "cannot skip \(count) bytes, \(buffer.readableBytes) left")
        }
        buffer.moveReaderIndex(forwardBy: count)
    }

    public mutating func isAtEnd() -> Bool { buffer.readableBytes == 0 }

    public mutating func readAvailable(upTo maxCount: Int) throws(DataSetError) -> ByteBuffer {
        buffer.readSlice(length: Swift.max(0, Swift.min(maxCount, buffer.readableBytes))) ?? ByteBuffer()
    }
}
