import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The spool's directories. Received instances are in `journal/` (`Journal`); `store/` holds
/// those received before the journal existed, under content-derived names; `tmp/` holds files
/// fetched from a hub (withdrawals, community retrievals). Names never come from a UID taken
/// off the wire.
///
/// ```
/// <root>/spool.sqlite
/// <root>/journal/000000000042.seg
/// <root>/store/3f/3fa8…c2.dcm   (SHA-256 of the file, before the journal)
/// <root>/tmp/<uuid>.part
/// ```
public struct FileStore: Sendable {
    public let root: String
    public var storeDirectory: String { root + "/store" }
    public var temporaryDirectory: String { root + "/tmp" }

    public init(root: String) throws {
        self.root = root
        for directory in [root, storeDirectory, temporaryDirectory] {
            try Self.makeDirectory(directory)
        }
    }

    public func absolutePath(_ relativePath: String) -> String {
        "\(root)/\(relativePath)"
    }

    public func remove(relativePath: String) {
        unlink(absolutePath(relativePath))
    }

    /// Bytes available to an unprivileged writer and the file system's size.
    public func diskSpace() throws -> (available: UInt64, total: UInt64) {
        var stats = statvfs()
        guard statvfs(root, &stats) == 0 else { throw SpoolError.io("statvfs", path: root, errno: errno) }
        let blockSize = UInt64(stats.f_frsize)
        return (UInt64(stats.f_bavail) * blockSize, UInt64(stats.f_blocks) * blockSize)
    }

    /// Removes leftovers of receptions that never completed (start-up).
    @discardableResult
    public func sweepTemporaryFiles() -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: temporaryDirectory)) ?? []
        for name in names { unlink("\(temporaryDirectory)/\(name)") }
        return names.count
    }

    /// Every file under `store/`, relative to the root.
    public func storedFiles() -> [String] {
        var result: [String] = []
        let fanOuts = (try? FileManager.default.contentsOfDirectory(atPath: storeDirectory)) ?? []
        for fanOut in fanOuts {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(storeDirectory)/\(fanOut)")) ?? []
            result += names.map { "store/\(fanOut)/\($0)" }
        }
        return result
    }

    static func makeDirectory(_ path: String) throws {
        if mkdir(path, 0o750) != 0 && errno != EEXIST {
            throw SpoolError.io("mkdir", path: path, errno: errno)
        }
    }

    public static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SpoolError.io("open", path: path, errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw SpoolError.io("fsync", path: path, errno: errno) }
    }
}

extension StoredLocation {
    /// Whether two stored instances hold the same data set bytes (their Part-10 headers may
    /// differ, e.g. by Source AE Title). Streams both: a multi-gigabyte instance is not loaded.
    public static func sameDataSet(_ first: StoredLocation, _ second: StoredLocation, root: String) -> Bool {
        if first.relativePath == second.relativePath && first.offset == second.offset { return true }
        let lengthA = first.length - first.dataSetOffset, lengthB = second.length - second.dataSetOffset
        guard lengthA == lengthB, lengthA >= 0 else { return false }
        let a = open("\(root)/\(first.relativePath)", O_RDONLY | O_CLOEXEC)
        let b = open("\(root)/\(second.relativePath)", O_RDONLY | O_CLOEXEC)
        defer {
            if a >= 0 { close(a) }
            if b >= 0 { close(b) }
        }
        guard a >= 0, b >= 0 else { return false }
        let chunk = 1 << 20
        var bufferA = [UInt8](repeating: 0, count: chunk), bufferB = bufferA
        var done = 0
        while done < lengthA {
            let wanted = min(chunk, lengthA - done)
            let readA = bufferA.withUnsafeMutableBytes {
                pread(a, $0.baseAddress, wanted, off_t(first.offset + first.dataSetOffset + done))
            }
            let readB = bufferB.withUnsafeMutableBytes {
                pread(b, $0.baseAddress, wanted, off_t(second.offset + second.dataSetOffset + done))
            }
            guard readA == readB, readA > 0, bufferA[..<readA] == bufferB[..<readB] else { return false }
            done += readA
        }
        return true
    }
}
