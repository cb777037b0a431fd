import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The spool's files: `store/` holds instances under content-derived names, `tmp/` holds
/// files being received. Names never come from a UID taken off the wire.
///
/// ```
/// <root>/spool.sqlite
/// <root>/store/3f/3fa8…c2.dcm   (SHA-256 of the file)
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

    public func makeTemporaryFile() throws -> TemporaryInstanceFile {
        try TemporaryInstanceFile(path: "\(temporaryDirectory)/\(UUID().uuidString).part")
    }

    /// Renames a finished file into the store; the rename is durable only once `directory`
    /// is fsynced (`syncDirectory`), which the caller may do for several files at once.
    func moveIntoStore(_ file: FinishedFile) throws -> (relativePath: String, directory: String) {
        let fanOut = String(file.sha256.prefix(2))
        let relativePath = "store/\(fanOut)/\(file.sha256).dcm"
        let directory = "\(storeDirectory)/\(fanOut)"
        let target = "\(root)/\(relativePath)"
        if access(directory, F_OK) != 0 {
            try Self.makeDirectory(directory)
            try Self.syncDirectory(storeDirectory)
        }
        if access(target, F_OK) == 0 {
            unlink(file.temporaryPath)
        } else if rename(file.temporaryPath, target) != 0 {
            throw SpoolError.io("rename", path: target, errno: errno)
        }
        return (relativePath, directory)
    }

    public func absolutePath(_ relativePath: String) -> String {
        "\(root)/\(relativePath)"
    }

    public func remove(relativePath: String) {
        unlink(absolutePath(relativePath))
    }

    /// Whether two stored files hold the same data set bytes (their Part-10 headers may differ,
    /// e.g. by Source AE Title). Streams both: a multi-gigabyte instance is not loaded.
    public func dataSetsEqual(_ first: String, offset firstOffset: Int, _ second: String, offset secondOffset: Int) -> Bool {
        let a = open(absolutePath(first), O_RDONLY | O_CLOEXEC)
        let b = open(absolutePath(second), O_RDONLY | O_CLOEXEC)
        defer {
            if a >= 0 { close(a) }
            if b >= 0 { close(b) }
        }
        guard a >= 0, b >= 0 else { return false }
        var statA = stat(), statB = stat()
        guard fstat(a, &statA) == 0, fstat(b, &statB) == 0,
              Int(statA.st_size) - firstOffset == Int(statB.st_size) - secondOffset else { return false }
        let chunk = 1 << 20
        var bufferA = [UInt8](repeating: 0, count: chunk), bufferB = bufferA
        var positionA = off_t(firstOffset), positionB = off_t(secondOffset)
        while true {
            let readA = bufferA.withUnsafeMutableBytes { pread(a, $0.baseAddress, chunk, positionA) }
            let readB = bufferB.withUnsafeMutableBytes { pread(b, $0.baseAddress, chunk, positionB) }
            guard readA == readB, readA >= 0 else { return false }
            if readA == 0 { return true }
            guard bufferA[..<readA] == bufferB[..<readB] else { return false }
            positionA += off_t(readA)
            positionB += off_t(readB)
        }
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
