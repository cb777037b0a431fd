#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// A `DICOMByteSource` reading a file through a POSIX descriptor with a bounded (64 KiB) buffer.
/// Skips beyond the buffer are seeks (no read), so walking past a 1 GB Pixel Data costs nothing.
public struct FileByteSource: DICOMByteSource, Sendable {
    /// Owns the descriptor when the source opened it; closes it when the last copy goes away.
    private final class Descriptor: Sendable {
        let fd: Int32
        let owned: Bool
        init(fd: Int32, owned: Bool) {
            self.fd = fd
            self.owned = owned
        }
        deinit {
            if owned { _ = close(fd) }
        }
    }

    public static let defaultBufferSize = 64 * 1024

    private let descriptor: Descriptor
    private let start: Int
    /// Offset in the file of the next byte not yet in `buffer`.
    private var fileOffset: Int
    private var buffer: ByteBuffer
    private let bufferSize: Int
    /// File size when the source was created; reads and skips never go beyond it.
    public let fileSize: Int

    /// Opens `path` read-only and starts at `offset`.
    public init(path: String, offset: Int = 0, bufferSize: Int = FileByteSource.defaultBufferSize) throws(DataSetError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw DataSetError(.readFailed, offset: 0, "cannot open \(path): errno \(errno)")
        }
        try self.init(descriptor: Descriptor(fd: fd, owned: true), offset: offset, bufferSize: bufferSize)
    }

    /// Reads an open descriptor (not closed by the source) with `pread`, starting at `offset`.
    public init(fileDescriptor: Int32, offset: Int = 0, bufferSize: Int = FileByteSource.defaultBufferSize) throws(DataSetError) {
        try self.init(descriptor: Descriptor(fd: fileDescriptor, owned: false), offset: offset, bufferSize: bufferSize)
    }

    private init(descriptor: Descriptor, offset: Int, bufferSize: Int) throws(DataSetError) {
        var info = stat()
        guard fstat(descriptor.fd, &info) == 0 else {
            throw DataSetError(.readFailed, offset: 0, "fstat failed: errno \(errno)")
        }
        let size = Int(info.st_size)
        guard offset >= 0, offset <= size else {
            throw DataSetError.truncated(at: 0, "start offset \(offset) beyond file size \(size)")
        }
        self.descriptor = descriptor
        self.start = offset
        self.fileOffset = offset
        self.fileSize = size
        self.bufferSize = Swift.max(512, bufferSize)
        self.buffer = ByteBuffer()
    }

    public var position: Int { fileOffset - buffer.readableBytes - start }

    private var remaining: Int { fileSize - fileOffset + buffer.readableBytes }

    public mutating func isAtEnd() -> Bool { remaining == 0 }

    public mutating func read(_ count: Int) throws(DataSetError) -> ByteBuffer {
        guard count >= 0 else { throw DataSetError(.invalidLength, offset: position, "negative read") }
        guard count <= remaining else {
            throw .truncated(at: position, "needed \(count) bytes, \(remaining) left in file")
        }
        if count <= buffer.readableBytes, let slice = buffer.readSlice(length: count) {
            return slice
        }
        if count <= bufferSize {
            try refill(atLeast: count)
            if let slice = buffer.readSlice(length: count) { return slice }
            throw .truncated(at: position, "file shrank while reading")
        }
        // Large read: straight into a buffer of its own.
        var result = ByteBuffer()
        result.reserveCapacity(count)
        result.writeBuffer(&buffer)
        try preadAppend(into: &result, count: count - result.readableBytes)
        return result
    }

    public mutating func skip(_ count: Int) throws(DataSetError) {
        guard count >= 0 else { throw DataSetError(.invalidLength, offset: position, "negative skip") }
        guard count <= remaining else {
            throw .truncated(at: position, "cannot skip \(count) bytes, \(remaining) left in file")
        }
        if count <= buffer.readableBytes {
            buffer.moveReaderIndex(forwardBy: count)
        } else {
            fileOffset += count - buffer.readableBytes
            buffer.clear()
        }
    }

    public mutating func readAvailable(upTo maxCount: Int) throws(DataSetError) -> ByteBuffer {
        let count = Swift.min(Swift.max(0, maxCount), remaining)
        if count == 0 { return ByteBuffer() }
        if buffer.readableBytes == 0 { try refill(atLeast: Swift.min(count, bufferSize)) }
        return buffer.readSlice(length: Swift.min(count, buffer.readableBytes)) ?? ByteBuffer()
    }

    /// Keeps unread bytes and reads until `count` bytes are buffered (or the buffer is full).
    private mutating func refill(atLeast count: Int) throws(DataSetError) {
        buffer.discardReadBytes()
        buffer.reserveCapacity(bufferSize)
        let want = Swift.min(bufferSize - buffer.readableBytes, fileSize - fileOffset)
        var filled = buffer
        buffer = ByteBuffer()  // keep `filled` uniquely referenced: no copy on write
        defer { buffer = filled }
        try preadAppend(into: &filled, count: want)
        if filled.readableBytes < count {
            throw .truncated(at: position, "file shrank while reading")
        }
    }

    private mutating func preadAppend(into target: inout ByteBuffer, count: Int) throws(DataSetError) {
        var left = count
        let fd = descriptor.fd
        while left > 0 {
            let offset = fileOffset
            let want = left
            let got = target.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { pointer in
                pread(fd, pointer.baseAddress, want, off_t(offset))
            }
            if got < 0 {
                if errno == EINTR { continue }
                throw DataSetError(.readFailed, offset: position, "pread failed: errno \(errno)")
            }
            if got == 0 {
                throw .truncated(at: position, "file ended early")
            }
            fileOffset += got
            left -= got
        }
    }
}
