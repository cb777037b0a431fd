import Foundation
import GRDB

/// An instance retrieved from a community and kept in `cache/`: foreign, never in the
/// `instance` table, so never routed or uploaded.
public struct CachedInstance: Sendable, Hashable {
    public var community: String
    public var studyInstanceUID: String
    public var seriesInstanceUID: String
    public var sopInstanceUID: String
    public var sopClassUID: String
    /// Relative to the spool root.
    public var filePath: String
    public var size: Int64

    public init(community: String, studyInstanceUID: String, seriesInstanceUID: String, sopInstanceUID: String,
                sopClassUID: String, filePath: String, size: Int64) {
        self.community = community
        self.studyInstanceUID = studyInstanceUID
        self.seriesInstanceUID = seriesInstanceUID
        self.sopInstanceUID = sopInstanceUID
        self.sopClassUID = sopClassUID
        self.filePath = filePath
        self.size = size
    }
}

/// One C-FIND, C-MOVE or C-GET on a community, as traced (docs/community.md, "Traceability").
public struct CommunityAccess: Sendable, Hashable {
    public var at = Date()
    public var callingAETitle: String
    public var calledAETitle: String
    /// FIND, MOVE or GET.
    public var operation: String
    public var level: String?
    public var query: String
    public var studyUIDs: [String] = []
    public var moveDestination: String?
    public var status: UInt16
    public var results = 0
    public var completed = 0
    public var failed = 0
    public var warnings = 0
    public var durationMilliseconds = 0
    public var error: String?

    public init(callingAETitle: String, calledAETitle: String, operation: String, query: String, status: UInt16) {
        self.callingAETitle = callingAETitle
        self.calledAETitle = calledAETitle
        self.operation = operation
        self.query = query
        self.status = status
    }
}

extension SpoolDatabase {
    static func migrateCommunity(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE cached_instance (
                community TEXT NOT NULL,
                sop_instance_uid TEXT NOT NULL,
                study_uid TEXT NOT NULL,
                series_uid TEXT NOT NULL,
                sop_class_uid TEXT NOT NULL,
                file_path TEXT NOT NULL,
                size INTEGER NOT NULL,
                fetched_at REAL NOT NULL,
                PRIMARY KEY (community, sop_instance_uid)
            ) WITHOUT ROWID;
            CREATE INDEX cached_instance_study ON cached_instance(community, study_uid);
            -- A study whose every instance is cached: served without asking the hub.
            CREATE TABLE cached_study (
                community TEXT NOT NULL,
                study_uid TEXT NOT NULL,
                instances INTEGER NOT NULL,
                expires_at REAL NOT NULL,
                PRIMARY KEY (community, study_uid)
            ) WITHOUT ROWID;
            CREATE TABLE community_access (
                id INTEGER PRIMARY KEY,
                at TEXT NOT NULL,
                calling_ae TEXT NOT NULL,
                called_ae TEXT NOT NULL,
                operation TEXT NOT NULL CHECK (operation IN ('FIND', 'MOVE', 'GET')),
                level TEXT,
                query TEXT NOT NULL,
                study_uids TEXT NOT NULL,
                move_destination TEXT,
                status TEXT NOT NULL,
                results INTEGER NOT NULL,
                completed INTEGER NOT NULL,
                failed INTEGER NOT NULL,
                warnings INTEGER NOT NULL,
                duration_ms INTEGER NOT NULL,
                error TEXT
            );
            CREATE INDEX community_access_at ON community_access(at);
            """)
    }

    /// Records a query or retrieval (the audit trail builds on this table).
    public func recordAccess(_ access: CommunityAccess) throws {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let status = String(format: "%04X", access.status)
        try writer.write { db in
            try db.execute(sql: """
                INSERT INTO community_access (at, calling_ae, called_ae, operation, level, query, study_uids,
                    move_destination, status, results, completed, failed, warnings, duration_ms, error)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [formatter.string(from: access.at), access.callingAETitle, access.calledAETitle,
                                 access.operation, access.level, access.query,
                                 access.studyUIDs.joined(separator: "\\"), access.moveDestination, status,
                                 access.results, access.completed, access.failed, access.warnings,
                                 access.durationMilliseconds, access.error])
        }
    }

    /// The latest queries and retrievals, newest first.
    public func communityAccesses(limit: Int = 100) throws -> [CommunityAccess] {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM community_access ORDER BY id DESC LIMIT ?", arguments: [limit])
                .map { row in
                    var access = CommunityAccess(callingAETitle: row["calling_ae"], calledAETitle: row["called_ae"],
                                                 operation: row["operation"], query: row["query"],
                                                 status: UInt16(row["status"] as String, radix: 16) ?? 0)
                    access.at = formatter.date(from: row["at"]) ?? Date(timeIntervalSince1970: 0)
                    access.level = row["level"]
                    let uids: String = row["study_uids"]
                    access.studyUIDs = uids.isEmpty ? [] : uids.split(separator: "\\").map(String.init)
                    access.moveDestination = row["move_destination"]
                    access.results = row["results"]
                    access.completed = row["completed"]
                    access.failed = row["failed"]
                    access.warnings = row["warnings"]
                    access.durationMilliseconds = row["duration_ms"]
                    access.error = row["error"]
                    return access
                }
        }
    }

    /// The cached instances of a study (any, complete or not).
    public func cachedInstances(community: String, studyInstanceUID: String) throws -> [CachedInstance] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM cached_instance WHERE community = ? AND study_uid = ? ORDER BY series_uid, fetched_at
                """, arguments: [community, studyInstanceUID]).map(Self.cachedInstance)
        }
    }

    /// The cached instances among `sopInstanceUIDs`.
    public func cachedInstances(community: String, sopInstanceUIDs: [String]) throws -> [CachedInstance] {
        guard !sopInstanceUIDs.isEmpty else { return [] }
        return try writer.read { db in
            var found: [CachedInstance] = []
            for batch in stride(from: 0, to: sopInstanceUIDs.count, by: 500) {
                let slice = Array(sopInstanceUIDs[batch..<min(batch + 500, sopInstanceUIDs.count)])
                let marks = Array(repeating: "?", count: slice.count).joined(separator: ",")
                found += try Row.fetchAll(db, sql: """
                    SELECT * FROM cached_instance WHERE community = ? AND sop_instance_uid IN (\(marks))
                    """, arguments: StatementArguments([community] + slice)).map(Self.cachedInstance)
            }
            return found
        }
    }

    /// The number of instances of a study cached whole and not expired, else nil.
    public func completeCachedStudy(community: String, studyInstanceUID: String, now: Date = Date()) throws -> Int? {
        try writer.read { db in
            try Int.fetchOne(db, sql: """
                SELECT instances FROM cached_study WHERE community = ? AND study_uid = ? AND expires_at > ?
                """, arguments: [community, studyInstanceUID, now.timeIntervalSince1970])
        }
    }

    /// A cache row is not worth a full sync: lost in a power cut, its file is removed at start.
    public func recordCached(_ instance: CachedInstance, at date: Date = Date()) throws {
        try writeBookkeeping { db in
            try db.execute(sql: """
                INSERT OR REPLACE INTO cached_instance (community, sop_instance_uid, study_uid, series_uid,
                    sop_class_uid, file_path, size, fetched_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [instance.community, instance.sopInstanceUID, instance.studyInstanceUID,
                                 instance.seriesInstanceUID, instance.sopClassUID, instance.filePath, instance.size,
                                 date.timeIntervalSince1970])
        }
    }

    /// Marks a study cached whole (or extends its stay) until `expiresAt`.
    public func markStudyCached(community: String, studyInstanceUID: String, instances: Int, expiresAt: Date) throws {
        try writer.write { db in
            try db.execute(sql: """
                INSERT OR REPLACE INTO cached_study (community, study_uid, instances, expires_at) VALUES (?, ?, ?, ?)
                """, arguments: [community, studyInstanceUID, instances, expiresAt.timeIntervalSince1970])
        }
    }

    /// Forgets cached instances fetched before `cutoff` (and studies expired at `now`);
    /// returns their files, for the caller to delete after the commit.
    public func expireCache(fetchedBefore cutoff: Date, now: Date = Date()) throws -> [String] {
        try writer.write { db in
            try db.execute(sql: "DELETE FROM cached_study WHERE expires_at <= ?",
                           arguments: [now.timeIntervalSince1970])
            // Instances of a study still cached whole stay with it.
            let condition = """
                fetched_at < ? AND NOT EXISTS (SELECT 1 FROM cached_study s
                    WHERE s.community = cached_instance.community AND s.study_uid = cached_instance.study_uid)
                """
            let files = try String.fetchAll(db, sql: "SELECT file_path FROM cached_instance WHERE \(condition)",
                                            arguments: [cutoff.timeIntervalSince1970])
            try db.execute(sql: "DELETE FROM cached_instance WHERE \(condition)",
                           arguments: [cutoff.timeIntervalSince1970])
            return files
        }
    }

    /// Cached instances and bytes per community.
    public func cacheTotals() throws -> [String: (instances: Int, bytes: Int)] {
        try writer.read { db in
            var totals: [String: (instances: Int, bytes: Int)] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT community, COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes FROM cached_instance GROUP BY community
                """) {
                totals[row["community"]] = (row["n"], row["bytes"])
            }
            return totals
        }
    }

    /// Every cached file (start-up recovery removes the others).
    public func cachedFilePaths() throws -> Set<String> {
        try writer.read { db in Set(try String.fetchAll(db, sql: "SELECT file_path FROM cached_instance")) }
    }

    private static func cachedInstance(_ row: Row) -> CachedInstance {
        CachedInstance(community: row["community"], studyInstanceUID: row["study_uid"],
                       seriesInstanceUID: row["series_uid"], sopInstanceUID: row["sop_instance_uid"],
                       sopClassUID: row["sop_class_uid"], filePath: row["file_path"], size: row["size"])
    }
}
