import Foundation

/// The durable spool: files in a `FileStore`, indexed in a `SpoolDatabase`.
///
/// Durability contract (DESIGN.md): an instance is acknowledged only after its file is
/// fsynced, renamed into the store, the directory fsynced, and its row committed.
public struct Spool: Sendable {
    public let files: FileStore
    public let database: SpoolDatabase
    private let groupCommit: GroupCommit
    /// Below this many free bytes, receptions are refused (A700).
    public let minimumFreeBytes: UInt64

    public static let databaseFileName = "spool.sqlite"

    public init(root: String, minimumFree: DiskWatermark) throws {
        files = try FileStore(root: root)
        database = try SpoolDatabase(path: "\(root)/\(Self.databaseFileName)")
        groupCommit = GroupCommit(database: database, files: files)
        let total = (try? files.diskSpace().total) ?? 0
        minimumFreeBytes = minimumFree.bytes(ofTotal: total)
    }

    /// Start-up recovery: removes temporary files and store files that no row references
    /// (a crash between rename and commit; their sender never got a success), and cache
    /// files no row references (a retrieval interrupted before it was recorded).
    public func recover() throws -> (temporary: Int, orphans: Int) {
        let temporary = files.sweepTemporaryFiles()
        let referenced = try database.referencedFilePaths()
        var orphans = 0
        for path in files.storedFiles() where !referenced.contains(path) {
            files.remove(relativePath: path)
            orphans += 1
        }
        let cached = try database.cachedFilePaths()
        if let walker = FileManager.default.enumerator(atPath: cacheDirectory) {
            for case let name as String in walker {
                let relative = Self.cacheDirectoryName + "/" + name
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: files.absolutePath(relative), isDirectory: &isDirectory),
                      !isDirectory.boolValue, !cached.contains(relative) else { continue }
                files.remove(relativePath: relative)
            }
        }
        return (temporary, orphans)
    }

    /// Foreign studies retrieved from communities (never in `store/`, never uploaded).
    public static let cacheDirectoryName = "cache"
    public var cacheDirectory: String { files.root + "/" + Self.cacheDirectoryName }

    /// Whether there is room for a reception, per the `min_free` watermark.
    public func hasRoom(forAdditional bytes: UInt64 = 0) -> Bool {
        guard let available = try? files.diskSpace().available else { return false }
        return available >= minimumFreeBytes &+ bytes
    }

    /// Moves a finished reception into the store and indexes it; the file is dropped again
    /// if the index already has identical bytes. Returns once the rename is durable and the
    /// row committed, sharing both with receptions finishing at the same time (`GroupCommit`).
    public func store(_ file: FinishedFile, make: (_ relativePath: String) -> NewInstance) throws -> SpooledInstance {
        let moved = try files.moveIntoStore(file)
        let relativePath = moved.relativePath
        let instance = make(relativePath)
        let outcome: RecordOutcome
        do {
            outcome = try groupCommit.commit(instance, directory: moved.directory)
        } catch {
            // Not indexed: the sender gets a failure; the file must not linger unreferenced.
            if (try? database.isReferenced(filePath: relativePath)) == false {
                files.remove(relativePath: relativePath)
            }
            throw error
        }
        if case .duplicate(let existingPath) = outcome, existingPath != relativePath {
            files.remove(relativePath: relativePath)
            return SpooledInstance(outcome: outcome, relativePath: existingPath)
        }
        return SpooledInstance(outcome: outcome, relativePath: relativePath)
    }
}

public struct SpooledInstance: Sendable, Equatable {
    public var outcome: RecordOutcome
    public var relativePath: String
}

/// The `min_free` setting: a percentage of the file system or an absolute size.
public enum DiskWatermark: Sendable, Equatable {
    case percent(Double)
    case bytes(UInt64)

    public func bytes(ofTotal total: UInt64) -> UInt64 {
        switch self {
        case .percent(let percent): return UInt64(Double(total) * percent / 100)
        case .bytes(let bytes): return bytes
        }
    }
}
