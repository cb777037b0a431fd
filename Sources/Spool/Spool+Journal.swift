import Foundation
import NIOCore

extension Spool {
    /// The records past each segment's checkpoint, in order: what the index may not have yet
    /// (start-up, before anything is received). `torn` names each segment whose written part
    /// ends in a record that does not check (its sender never got a success).
    public func unindexedJournalRecords() throws -> (records: [JournalRecord], torn: [String]) {
        let checkpoints = try database.journalCheckpoints()
        var records: [JournalRecord] = []
        var torn: [String] = []
        for path in journal.segmentPaths() {
            let scanned: (records: [JournalRecord], torn: String?)
            do {
                scanned = try journal.scan(path, from: checkpoints[path] ?? 0)
            } catch {
                torn.append("\(path): \(error)")
                continue
            }
            records += scanned.records
            if let reason = scanned.torn { torn.append("\(path) \(reason)") }
        }
        return (records, torn)
    }

    /// Indexes an instance found by replay and moves its segment's checkpoint past it.
    public func indexReplayed(_ instance: NewInstance, record: JournalRecord) throws -> RecordOutcome {
        let root = files.root
        return try database.recordJournaled([.index(instance)], checkpoints: [record.location.relativePath: record.location.end]) {
            StoredLocation.sameDataSet($0, $1, root: root)
        }[0].get()
    }

    /// Forgets the checkpoints of deleted segments but the newest one: a new segment never
    /// takes the name (nor the checkpoint) of an old one (`Journal.reserveSequences`).
    public func pruneJournalCheckpoints() throws {
        let present = Set(journal.segmentPaths())
        try database.pruneJournalCheckpoints(keeping: present)
    }

    /// Moves a segment's checkpoint past a record that replay could not index.
    public func skipReplayed(_ record: JournalRecord) throws {
        _ = try database.recordJournaled([], checkpoints: [record.location.relativePath: record.location.end]) { _, _ in false }
    }

    /// Deletes the sealed segments no row references (all their instances purged, or holding
    /// only duplicates). Returns how many and their bytes.
    @discardableResult
    public func reclaimSegments() throws -> (segments: Int, bytes: Int) {
        let referenced = try database.referencedFilePaths()
        let unreferenced = journal.sealedSegments().filter { !referenced.contains($0) }
        // Rows indexed without a sync (HL7 messages keep no reference to their record) must
        // be durable before the record that would replay them goes.
        if !unreferenced.isEmpty { try database.syncIndex() }
        var count = 0, bytes = 0
        for path in unreferenced {
            var info = stat()
            let size = stat(files.absolutePath(path), &info) == 0 ? Int(info.st_size) : 0
            if journal.remove(path) {
                count += 1
                bytes += size
            }
        }
        return (count, bytes)
    }

    /// Removes what a purge left unreferenced: segments (unless still in use: the next
    /// `reclaimSegments` takes them) and files of the former store.
    public func release(_ paths: [String]) {
        var storeFiles = false
        for path in paths {
            if path.hasPrefix(Journal.directoryName + "/") {
                journal.remove(path)
            } else {
                files.remove(relativePath: path)
                storeFiles = true
            }
        }
        if storeFiles { try? FileStore.syncDirectory(files.storeDirectory) }
    }

    /// Copies forward the live instances of sealed segments in which they take less than
    /// `maximumLiveFraction` of the space, then deletes those segments: a few long-kept
    /// instances (a study held for consent, a destination down) do not pin a whole segment.
    /// Returns the instances copied.
    @discardableResult
    public func compactSegments(maximumLiveFraction: Double = 0.25) throws -> Int {
        var copied = 0
        for path in journal.sealedSegments() {
            var info = stat()
            guard stat(files.absolutePath(path), &info) == 0 else { continue }
            let live = try database.liveInstances(inFile: path)
            let liveBytes = live.reduce(0) { $0 + $1.location.length }
            guard !live.isEmpty, Double(liveBytes) < Double(info.st_size) * maximumLiveFraction else { continue }
            let segment = try JournalSegment.open(root: files.root, relativePath: path)
            for instance in live {
                let bytes = try segment.read(instance.location.length, at: instance.location.offset)
                guard bytes.count == instance.location.length else {
                    throw SpoolError(description: "\(path): instance \(instance.id) is cut short")
                }
                var header = instance.header
                header.checksum = .crc32c(CRC32C.checksum(bytes))
                _ = try relocate(instanceID: instance.id, from: instance.location, header: header,
                                 payload: ByteBuffer(bytes: bytes))
                copied += 1
            }
        }
        // The moved rows were committed without a sync: make them durable before the old
        // copies go.
        if copied > 0 { try database.syncIndex() }
        try reclaimSegments()
        return copied
    }
}
