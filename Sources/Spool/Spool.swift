import Foundation
import NIOCore

/// The durable spool: received instances in the ingest `Journal`, indexed in a `SpoolDatabase`.
///
/// Durability contract (DESIGN.md): an instance is acknowledged only after its bytes and a
/// self-describing record of them are on stable storage (one `fdatasync` of the journal,
/// shared by every reception that finished meanwhile). Its row is committed right after, on
/// the index queue, without a sync: after a crash, `JournalReplay` indexes the journal's
/// tail again.
public struct Spool: Sendable {
    public let files: FileStore
    public let database: SpoolDatabase
    public let journal: Journal
    let groupCommit: GroupCommit
    /// Below this many free bytes, receptions are refused (A700).
    public let minimumFreeBytes: UInt64

    public static let databaseFileName = "spool.sqlite"

    public init(root: String, minimumFree: DiskWatermark, segmentSize: Int = Journal.defaultSegmentSize) throws {
        files = try FileStore(root: root)
        database = try SpoolDatabase(path: "\(root)/\(Self.databaseFileName)")
        journal = try Journal(root: root, segmentSize: segmentSize)
        let known = try database.journalCheckpoints().keys.compactMap(Journal.sequence(ofPath:)).max() ?? 0
        journal.reserveSequences(through: known)
        groupCommit = GroupCommit(database: database, journal: journal, root: root)
        let total = (try? files.diskSpace().total) ?? 0
        minimumFreeBytes = minimumFree.bytes(ofTotal: total)
    }

    /// Start-up recovery, before anything is received: removes temporary files, files of the
    /// former store (`store/`) and of the cache that no row references, and segments that
    /// hold nothing referenced (after `JournalReplay` has indexed their tails).
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

    /// Foreign studies retrieved from communities (never in the journal, never uploaded).
    public static let cacheDirectoryName = "cache"
    public var cacheDirectory: String { files.root + "/" + Self.cacheDirectoryName }

    /// Whether there is room for a reception, per the `min_free` watermark — and whether the
    /// index has: while received records wait for room to be indexed, nothing more is taken.
    public func hasRoom(forAdditional bytes: UInt64 = 0) -> Bool {
        guard !groupCommit.indexWaitsForRoom, let available = try? files.diskSpace().available else { return false }
        return available >= minimumFreeBytes &+ bytes
    }

    /// Received records wait for room to be indexed (SQLite could not write): they are
    /// indexed, and receptions taken again, once it returns.
    public var indexWaitsForRoom: Bool { groupCommit.indexWaitsForRoom }

    /// A received payload: held in memory (appended whole), written at the journal's head as
    /// it arrived, or streamed into a segment of its own (`Journal.beginStreamedRecord`).
    public enum Payload: Sendable {
        case inline([ByteBuffer])
        /// Already written at the journal's head (`Journal.beginHeadRecord`).
        case head(JournalHeadWriter)
        case streamed(JournalRecordWriter)
    }

    /// Journals a complete record and indexes the instance it holds. Returns once the record
    /// is durable, sharing the sync with receptions finishing at the same time
    /// (`GroupCommit`); `indexed` is called afterwards, on the index queue, with the row's
    /// outcome (a failure there leaves the record to replay at the next start).
    public func store(_ payload: Payload, header: JournalRecordHeader, make: (StoredLocation) -> NewInstance,
                      indexed: @escaping @Sendable (Result<RecordOutcome, any Error>) -> Void) throws -> StoredLocation {
        let (_, location) = try commit(payload, header: header, wait: .durable(indexed: indexed), make: make)
        return StoredLocation(location, dataSetOffset: header.dataSetOffset)
    }

    /// The same, returning once the instance is indexed too.
    public func store(_ payload: Payload, header: JournalRecordHeader,
                      make: (StoredLocation) -> NewInstance) throws -> SpooledInstance {
        let (outcome, location) = try commit(payload, header: header, wait: .indexed, make: make)
        if case .duplicate(let existing) = outcome! {
            return SpooledInstance(outcome: outcome!, location: existing)
        }
        return SpooledInstance(outcome: outcome!, location: StoredLocation(location, dataSetOffset: header.dataSetOffset))
    }

    /// Returns once every instance made durable before the call is indexed.
    public func waitForIndex() {
        groupCommit.waitForIndex()
    }

    private func commit(_ payload: Payload, header: JournalRecordHeader, wait: GroupCommit.Wait,
                        make: (StoredLocation) -> NewInstance) throws -> (RecordOutcome?, JournalLocation) {
        let dataSetOffset = header.dataSetOffset
        let work = { (location: JournalLocation) in GroupCommit.Work.index(make(StoredLocation(location, dataSetOffset: dataSetOffset))) }
        switch payload {
        case .inline(let slices): return try groupCommit.commit(header: header, payload: slices, wait: wait, work: work)
        case .head(let writer): return try groupCommit.commit(writer, header: header, wait: wait, work: work)
        case .streamed(let writer): return try groupCommit.commit(writer, header: header, wait: wait, work: work)
        }
    }

    /// Copies a survivor of a mostly dead segment to the journal's head and moves its row
    /// there (`compactSegments`); the old bytes stay readable until the segment is deleted.
    func relocate(instanceID: Int64, from current: StoredLocation, header: JournalRecordHeader,
                  payload: ByteBuffer) throws -> RecordOutcome {
        try groupCommit.commit(header: header, payload: [payload], wait: .indexed) { location in
            .relocate(instanceID: instanceID, from: current,
                      to: StoredLocation(location, dataSetOffset: current.dataSetOffset))
        }.0!
    }
}

public struct SpooledInstance: Sendable, Equatable {
    public var outcome: RecordOutcome
    /// Where the instance's bytes are (for a duplicate, the copy already indexed).
    public var location: StoredLocation
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
