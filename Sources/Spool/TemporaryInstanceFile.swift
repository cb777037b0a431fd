import Crypto
import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A file being received into the spool's `tmp/` directory.
///
/// Bytes are hashed as they are written, so the file is never read again to hash it.
/// One association owns it at a time; its blocking calls run on a thread pool.
public final class TemporaryInstanceFile: @unchecked Sendable {
    public let path: String
    private var fd: Int32
    private var fileHasher = SHA256()
    public private(set) var size = 0
    public private(set) var dataSetSize = 0

    init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw SpoolError.io("create", path: path, errno: errno) }
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// Appends the Part-10 header (preamble and file meta information).
    public func writeHeader(_ bytes: ByteBuffer) throws {
        try write(bytes, isDataSet: false)
    }

    /// Appends data set bytes as received.
    public func writeDataSet(_ bytes: ByteBuffer) throws {
        try write(bytes, isDataSet: true)
    }

    private func write(_ bytes: ByteBuffer, isDataSet: Bool) throws {
        try bytes.withUnsafeReadableBytes { raw in
            fileHasher.update(bufferPointer: raw)
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw SpoolError.io("write", path: path, errno: errno)
                }
                offset += written
            }
        }
        size += bytes.readableBytes
        if isDataSet { dataSetSize += bytes.readableBytes }
    }

    /// Flushes the file to stable storage and closes it.
    public func finish() throws -> FinishedFile {
        guard fd >= 0 else { throw SpoolError(description: "\(path) already finished") }
        if fsync(fd) != 0 {
            let code = errno
            close(fd)
            fd = -1
            throw SpoolError.io("fsync", path: path, errno: code)
        }
        close(fd)
        fd = -1
        return FinishedFile(
            temporaryPath: path, size: size,
            sha256: fileHasher.finalize().hexString,
            dataSetOffset: size - dataSetSize)
    }

    /// Closes and removes the file: nothing partial is ever left behind.
    public func discard() {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
        unlink(path)
    }
}

/// A temporary file that is complete and fsynced, not yet in the store.
public struct FinishedFile: Sendable {
    public var temporaryPath: String
    public var size: Int
    public var sha256: String
    /// Where the data set starts (after the Part-10 header).
    public var dataSetOffset: Int
}

extension Digest {
    /// Lower-case hex, as file names and `sha256` columns hold it.
    public var hexString: String {
        var result = ""
        result.reserveCapacity(Self.byteCount * 2)
        for byte in self {
            result += String(byte, radix: 16).leftPadded(to: 2)
        }
        return result
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
