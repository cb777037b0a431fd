import CLinux
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// One segment file of the journal: a 4 KiB segment header, then records back to back.
///
/// Segments are made before they are needed (`create`): allocated, synced, their directory
/// entry synced, and in quiet times zero-filled. Writing into blocks that already hold zeros
/// changes no file metadata, so one `fdatasync` flushes only the data (on ext4, an
/// `fallocate`d but unwritten block costs a journal commit at each sync: measured 1.7× slower).
///
/// Segment header: magic "PSJS", format version (1), 3 reserved bytes, the sequence number
/// (8 bytes, little endian), zeros.
final class JournalSegment: @unchecked Sendable {
    let sequence: UInt64
    /// Relative to the spool root: `journal/<sequence>.seg`.
    let relativePath: String
    let path: String
    private(set) var fd: Int32
    /// Bytes allocated (the file's size).
    private(set) var capacity: Int

    static let headerSize = 4096
    static let magic: [UInt8] = Array("PSJS".utf8)
    static let fileExtension = ".seg"

    static func name(_ sequence: UInt64) -> String {
        let digits = String(sequence)
        return String(repeating: "0", count: max(0, 12 - digits.count)) + digits + fileExtension
    }

    /// The sequence number in a segment file name, or nil for anything else.
    static func sequence(ofName name: String) -> UInt64? {
        guard name.hasSuffix(fileExtension) else { return nil }
        return UInt64(name.dropLast(fileExtension.count))
    }

    private init(sequence: UInt64, relativePath: String, path: String, fd: Int32, capacity: Int) {
        self.sequence = sequence
        self.relativePath = relativePath
        self.path = path
        self.fd = fd
        self.capacity = capacity
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// Creates, allocates, zero-fills and syncs a new segment (the caller syncs the directory).
    /// An empty one (for a streamed record) needs no sync of its own: the record's sync
    /// covers its header.
    static func create(root: String, directory: String, sequence: UInt64, capacity: Int,
                       zeroFill: Bool) throws -> JournalSegment {
        let relativePath = "\(directory)/\(name(sequence))"
        let path = "\(root)/\(relativePath)"
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw SpoolError.io("create", path: path, errno: errno) }
        let segment = JournalSegment(sequence: sequence, relativePath: relativePath, path: path, fd: fd, capacity: 0)
        do {
            try segment.allocate(upTo: capacity, zeroFill: zeroFill)
            var header = magic + [1, 0, 0, 0]
            header.appendLittleEndian(sequence)
            try segment.write(header, at: 0)
            if capacity > 0, fsync(fd) != 0 { throw SpoolError.io("fsync", path: path, errno: errno) }
        } catch {
            unlink(path)
            throw error
        }
        return segment
    }

    /// Opens an existing segment (replay, reading) and checks its header.
    static func open(root: String, relativePath: String) throws -> JournalSegment {
        let path = "\(root)/\(relativePath)"
        let fd = Glibc.open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw SpoolError.io("open", path: path, errno: errno) }
        var info = stat()
        var header = [UInt8](repeating: 0, count: 16)
        guard fstat(fd, &info) == 0, pread(fd, &header, 16, 0) == 16,
              Array(header[0..<4]) == magic, header[4] == 1 else {
            close(fd)
            throw SpoolError(description: "\(path) is not a journal segment")
        }
        return JournalSegment(sequence: header.littleEndianUInt64(at: 8), relativePath: relativePath, path: path,
                              fd: fd, capacity: Int(info.st_size))
    }

    /// Grows the file to `size` bytes (never shrinks); `zeroFill` writes the zeros, so that
    /// later writes there change no metadata. A record about to be written over the new space
    /// needs no zeros: its sync flushes the allocation with it.
    func allocate(upTo size: Int, zeroFill: Bool) throws {
        guard size > capacity else { return }
        let result = posix_fallocate(fd, off_t(capacity), off_t(size - capacity))
        guard result == 0 else { throw SpoolError.io("fallocate", path: path, errno: result) }
        defer { capacity = size }
        guard zeroFill else { return }
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        var position = capacity
        while position < size {
            let count = min(zeros.count, size - position)
            try zeros.withUnsafeBytes { try writeFully($0.baseAddress!, count: count, at: position) }
            position += count
        }
    }

    func truncate(to size: Int) throws {
        guard size < capacity else { return }
        guard ftruncate(fd, off_t(size)) == 0 else { throw SpoolError.io("truncate", path: path, errno: errno) }
        capacity = size
    }

    func write(_ bytes: [UInt8], at offset: Int) throws {
        try bytes.withUnsafeBytes { try writeFully($0.baseAddress!, count: $0.count, at: offset) }
    }

    /// Writes `header` then `slices` contiguously from `offset` with `pwritev` (no copy of the
    /// received bytes).
    func write(header: [UInt8], slices: [ByteBuffer], at offset: Int) throws {
        var iovecs: [iovec] = []
        iovecs.reserveCapacity(slices.count + 1)
        try header.withUnsafeBytes { headerBytes in
            if !headerBytes.isEmpty {
                iovecs.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: headerBytes.baseAddress!),
                                    iov_len: headerBytes.count))
            }
            // The slices' storage stays alive in `slices` for the whole call, as NIO's own
            // vector writes rely on.
            for slice in slices where slice.readableBytes > 0 {
                slice.withUnsafeReadableBytesWithStorageManagement { pointer, _ in
                    iovecs.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: pointer.baseAddress!),
                                        iov_len: pointer.count))
                }
            }
            try writeVector(&iovecs, at: offset)
        }
        withExtendedLifetime(slices) {}
    }

    private func writeVector(_ iovecs: inout [iovec], at offset: Int) throws {
        var position = offset
        var first = 0
        while first < iovecs.count {
            let count = min(iovecs.count - first, 1024 /* IOV_MAX */)
            let written = iovecs.withUnsafeBufferPointer { pwritev(fd, $0.baseAddress! + first, Int32(count), off_t(position)) }
            if written < 0 {
                if errno == EINTR { continue }
                throw SpoolError.io("write", path: path, errno: errno)
            }
            position += written
            var remaining = written
            while remaining > 0, first < iovecs.count {
                if remaining >= iovecs[first].iov_len {
                    remaining -= iovecs[first].iov_len
                    first += 1
                } else {
                    iovecs[first].iov_base += remaining
                    iovecs[first].iov_len -= remaining
                    remaining = 0
                }
            }
        }
    }

    private func writeFully(_ base: UnsafeRawPointer, count: Int, at offset: Int) throws {
        var done = 0
        while done < count {
            let written = pwrite(fd, base + done, count - done, off_t(offset + done))
            if written < 0 {
                if errno == EINTR { continue }
                throw SpoolError.io("write", path: path, errno: errno)
            }
            done += written
        }
    }

    /// Up to `count` bytes at `offset` (fewer at the end of the file).
    func read(_ count: Int, at offset: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SpoolError.io("read", path: path, errno: errno)
            }
            if n == 0 { break }
            done += n
        }
        return Array(bytes[0..<done])
    }

    /// Starts writing back a range just written, without waiting: the disk works while the
    /// rest of the record arrives, and the record's `fdatasync` has only the tail left to wait
    /// for. Advisory: a failure here shows at that sync.
    func startWriteback(from offset: Int, count: Int) {
        _ = passerelle_start_writeback(fd, Int64(offset), Int64(count))
    }

    /// Makes every byte written so far durable.
    func sync() throws {
        guard fdatasync(fd) == 0 else { throw SpoolError.io("fdatasync", path: path, errno: errno) }
    }
}
