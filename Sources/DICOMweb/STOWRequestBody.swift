#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// The body of a STOW-RS request (PS3.18 §10.5.1.2): Part-10 files from disk as one
/// `multipart/related; type="application/dicom"` message (RFC 2387, RFC 2046 §5.1).
///
/// ```
/// --B CRLF
/// Content-Type: application/dicom CRLF
/// CRLF
/// <bytes of file 1>                         read from disk in chunks of `chunkSize`
/// CRLF --B CRLF
/// Content-Type: application/dicom CRLF
/// CRLF
/// <bytes of file 2>
/// CRLF --B-- CRLF
/// ```
///
/// Memory is one chunk, whatever the file sizes. `contentLength` is exact (computed from the
/// file sizes taken at `init`), so the request carries `Content-Length`; a file whose size
/// changes before it is sent makes the stream fail with `.localFile` instead of sending a
/// truncated part.
///
/// The boundary is 32 random hex digits (128 bits from the system generator). The files are
/// not scanned for it: that would read every file twice, and a given 38-byte delimiter line
/// appears by chance in n bytes of data with probability about n·2⁻¹²⁸, which is zero for
/// any real upload (and DICOM data is not chosen by someone who knows the boundary).
public struct STOWRequestBody: Sendable, Hashable {
    /// One file to send and the size it had when the body was made; with `splices`, the file
    /// is sent with `removing` bytes at each `offset` replaced by `inserting` (elements added to,
    /// replaced in or removed from the data set), the file itself untouched.
    public struct Part: Sendable, Hashable {
        public struct Splice: Sendable, Hashable {
            public var offset: Int64
            public var removing: Int64
            public var inserting: [UInt8]
            public init(offset: Int64, removing: Int64, inserting: [UInt8]) {
                self.offset = offset
                self.removing = removing
                self.inserting = inserting
            }
        }

        public var path: String
        /// Where the part's bytes start in the file (a journal segment holds many instances).
        public var offset: Int64
        public var size: Int64
        /// Relative to `offset`, in increasing order, not overlapping.
        public var splices: [Splice]
        public init(path: String, offset: Int64 = 0, size: Int64, splices: [Splice] = []) {
            precondition(zip(splices, splices.dropFirst()).allSatisfy { $0.offset + $0.removing <= $1.offset },
                         "splices out of order or overlapping")
            precondition(splices.allSatisfy { $0.offset >= 0 && $0.removing >= 0 && $0.offset + $0.removing <= size },
                         "splice outside the file")
            self.path = path
            self.offset = offset
            self.size = size
            self.splices = splices
        }

        /// Bytes this part sends.
        public var sentSize: Int64 {
            splices.reduce(size) { $0 - $1.removing + Int64($1.inserting.count) }
        }
    }

    public static let defaultChunkSize = 256 * 1024

    public let boundary: String
    public let parts: [Part]
    public let chunkSize: Int

    /// A body for files on disk; reads each file's size now.
    public init(files: [String], boundary: String = STOWRequestBody.randomBoundary(),
                chunkSize: Int = STOWRequestBody.defaultChunkSize) throws(DICOMwebError) {
        var parts: [Part] = []
        parts.reserveCapacity(files.count)
        for path in files {
            var info = stat()
            guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
                throw DICOMwebError(kind: .permanent, code: .localFile, url: nil,
                                    message: "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            parts.append(Part(path: path, size: Int64(info.st_size)))
        }
        self.init(parts: parts, boundary: boundary, chunkSize: chunkSize)
    }

    /// A body for parts whose sizes are already known (no I/O until iterated).
    public init(parts: [Part], boundary: String = STOWRequestBody.randomBoundary(),
                chunkSize: Int = STOWRequestBody.defaultChunkSize) {
        precondition(chunkSize > 0, "chunkSize must be positive")
        precondition(!boundary.isEmpty && boundary.utf8.count <= 70, "RFC 2046 boundary: 1 to 70 characters")
        self.boundary = boundary
        self.parts = parts
        self.chunkSize = chunkSize
    }

    /// 32 hex digits from the system's random generator.
    public static func randomBoundary() -> String {
        var generator = SystemRandomNumberGenerator()
        let hex = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        for _ in 0..<2 {
            var word = generator.next() as UInt64
            for _ in 0..<16 {
                bytes.append(hex[Int(word & 0xF)])
                word >>= 4
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The request's `Content-Type` header value.
    public var contentType: String {
        "multipart/related; type=\"application/dicom\"; boundary=\(boundary)"
    }

    /// The text before part `index`'s bytes.
    func partHeader(_ index: Int) -> String {
        (index == 0 ? "" : "\r\n") + "--\(boundary)\r\nContent-Type: application/dicom\r\n\r\n"
    }

    /// The text after the last part.
    var closing: String { "\r\n--\(boundary)--\r\n" }

    /// Exact number of bytes the body streams.
    public var contentLength: Int64 {
        guard !parts.isEmpty else { return Int64(("--\(boundary)--\r\n").utf8.count) }
        var total = Int64(closing.utf8.count)
        for (index, part) in parts.enumerated() {
            total += Int64(partHeader(index).utf8.count) + part.sentSize
        }
        return total
    }
}

extension STOWRequestBody: AsyncSequence {
    public typealias Element = ByteBuffer

    public func makeAsyncIterator() -> Iterator { Iterator(body: self) }

    /// Produces header text and file chunks in order; holds at most one open file.
    public struct Iterator: AsyncIteratorProtocol {
        enum State {
            case header(Int)
            /// Reading part `index` at file `position`; `splice`: the next splice to send.
            case file(Int, FileReader, position: Int64, splice: Int)
            case closing
            case finished
        }

        let body: STOWRequestBody
        var state: State

        init(body: STOWRequestBody) {
            self.body = body
            self.state = body.parts.isEmpty ? .closing : .header(0)
        }

        public mutating func next() async throws -> ByteBuffer? {
            try nextChunk()
        }

        mutating func nextChunk() throws(DICOMwebError) -> ByteBuffer? {
            switch state {
            case .header(let index):
                let part = body.parts[index]
                let reader = try FileReader(path: part.path)
                state = .file(index, reader, position: 0, splice: 0)
                return ByteBuffer(string: body.partHeader(index))
            case .file(let index, let reader, let position, let next):
                let part = body.parts[index]
                if next < part.splices.count, position == part.splices[next].offset {
                    let splice = part.splices[next]
                    state = .file(index, reader, position: position + splice.removing, splice: next + 1)
                    if splice.inserting.isEmpty { return try nextChunk() }
                    return ByteBuffer(bytes: splice.inserting)
                }
                let end = next < part.splices.count ? part.splices[next].offset : part.size
                if position == end {
                    state = index + 1 < body.parts.count ? .header(index + 1) : .closing
                    return try nextChunk()
                }
                let count = Int(Swift.min(Int64(body.chunkSize), end - position))
                let chunk = try reader.read(count, at: part.offset + position)
                guard chunk.readableBytes == count else {
                    throw DICOMwebError(kind: .permanent, code: .localFile, url: nil,
                                        message: "\(part.path) is shorter than when the request was made")
                }
                state = .file(index, reader, position: position + Int64(count), splice: next)
                return chunk
            case .closing:
                state = .finished
                if body.parts.isEmpty { return ByteBuffer(string: "--\(body.boundary)--\r\n") }
                return ByteBuffer(string: body.closing)
            case .finished:
                return nil
            }
        }
    }
}

/// A file opened for reading; closed when the last reference goes.
final class FileReader {
    let path: String
    private let fd: Int32

    init(path: String) throws(DICOMwebError) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw DICOMwebError(kind: .permanent, code: .localFile, url: nil,
                                message: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Up to `count` bytes from `offset`; fewer only at end of file.
    func read(_ count: Int, at offset: Int64) throws(DICOMwebError) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(count)
        var failure: Int32 = 0
        while buffer.readableBytes < count {
            let wanted = count - buffer.readableBytes
            let position = off_t(offset) + off_t(buffer.readableBytes)
            let got = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: wanted) { pointer in
                let n = pread(fd, pointer.baseAddress, wanted, position)
                if n < 0 { failure = errno; return 0 }
                return n
            }
            if failure == EINTR { failure = 0; continue }
            if failure != 0 {
                throw DICOMwebError(kind: .permanent, code: .localFile, url: nil,
                                    message: "cannot read \(path): \(String(cString: strerror(failure)))")
            }
            if got == 0 { break }
        }
        return buffer
    }
}
