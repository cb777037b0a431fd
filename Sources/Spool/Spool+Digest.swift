import CLinux
import Crypto
import Foundation
import GRDB

/// The index's SHA-256 of each instance, computed after its reception rather than during it:
/// the journal checks a record with a CRC-32C (`JournalRecordHeader`), and hashing 512 KiB
/// costs ~0.5 ms of CPU that a receiving thread cannot spare. Until computed, `sha256` is
/// empty (`passerellectl spool list` says "pending"); the uploader computes it itself when it
/// sends an instance first.
extension Spool {
    /// Computes the SHA-256 of up to `limit` instances that have none yet, oldest first, and
    /// stores them. With `idle`, the hashing runs at the calling thread's SCHED_IDLE priority
    /// (on a core nothing else wants), the index reads and writes at normal priority (another
    /// writer must never wait for an idle thread). Returns how many were stored.
    @discardableResult
    public func digestPending(limit: Int = 64, idle: Bool = false) throws -> Int {
        let pending = try database.undigestedInstances(limit: limit)
        guard !pending.isEmpty else { return 0 }
        if idle { _ = passerelle_set_idle_priority(1) }
        var digests: [(id: Int64, sha256: String)] = []
        for (id, location) in pending {
            // A purged instance's file may be gone: it simply gets no digest.
            if let digest = try? Self.sha256(of: files.absolutePath(location.relativePath), offset: location.offset,
                                             length: location.length) {
                digests.append((id, digest))
            }
        }
        if idle { _ = passerelle_set_idle_priority(0) }
        try database.storeDigests(digests)
        return digests.count
    }

    /// SHA-256 of `length` bytes of `path` from `offset`.
    public static func sha256(of path: String, offset: Int, length: Int) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SpoolError.io("open", path: path, errno: errno) }
        defer { close(fd) }
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: min(max(length, 1), 1 << 20))
        var done = 0
        while done < length {
            let wanted = min(buffer.count, length - done)
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, wanted, off_t(offset + done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SpoolError.io("read", path: path, errno: errno)
            }
            guard n > 0 else { throw SpoolError(description: "\(path): \(length - done) bytes missing at \(offset + done)") }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            done += n
        }
        return hasher.finalize().hexString
    }
}

extension SpoolDatabase {
    /// A partial index finds the instances awaiting their SHA-256 without a scan.
    static func migrateDigest(_ db: Database) throws {
        try db.execute(sql: "CREATE INDEX instance_undigested ON instance(id) WHERE sha256 = ''")
    }

    func undigestedInstances(limit: Int) throws -> [(Int64, StoredLocation)] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, file_path, file_offset, size, dataset_offset FROM instance
                WHERE sha256 = '' ORDER BY id LIMIT ?
                """, arguments: [limit]).map { row in
                (row[0], StoredLocation(relativePath: row[1], offset: row[2], length: row[3], dataSetOffset: row[4]))
            }
        }
    }

    /// Stores digests; an instance digested meanwhile (by the uploader) keeps its own. Without
    /// a WAL sync: a digest lost to a power cut is computed again.
    func storeDigests(_ digests: [(id: Int64, sha256: String)]) throws {
        guard !digests.isEmpty else { return }
        try writeBookkeeping { db in
            for (id, digest) in digests {
                try db.execute(sql: "UPDATE instance SET sha256 = ? WHERE id = ? AND sha256 = ''",
                               arguments: [digest, id])
            }
        }
    }

    /// The uploader computed an instance's SHA-256 while sending it.
    public func storeDigest(instanceID: Int64, sha256: String) throws {
        try storeDigests([(instanceID, sha256)])
    }

    /// Instances whose SHA-256 is not computed yet.
    public func undigestedCount() throws -> Int {
        try writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM instance WHERE sha256 = ''") ?? 0 }
    }
}
