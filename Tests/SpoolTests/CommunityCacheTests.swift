import Foundation
import Testing
@testable import Spool

/// The cache of foreign studies and the access trace (docs/community.md).
@Suite struct CommunityCacheTests {
    func instance(_ sop: String, study: String = "1.2.3", community: String = "hub") -> CachedInstance {
        CachedInstance(community: community, studyInstanceUID: study, seriesInstanceUID: study + ".1",
                       sopInstanceUID: sop, sopClassUID: "1.2.840.10008.5.1.4.1.1.2",
                       filePath: "cache/x/\(sop).dcm", size: 10)
    }

    @Test func aStudyCachedWholeIsServedUntilItExpires() throws {
        let database = try SpoolDatabase()
        let now = Date()
        try database.recordCached(instance("1.2.3.1"), at: now)
        try database.recordCached(instance("1.2.3.2"), at: now)
        #expect(try database.completeCachedStudy(community: "hub", studyInstanceUID: "1.2.3", now: now) == nil)
        try database.markStudyCached(community: "hub", studyInstanceUID: "1.2.3", instances: 2,
                                     expiresAt: now.addingTimeInterval(86_400))
        #expect(try database.completeCachedStudy(community: "hub", studyInstanceUID: "1.2.3", now: now) == 2)
        #expect(try database.completeCachedStudy(community: "other", studyInstanceUID: "1.2.3", now: now) == nil)
        #expect(try database.cachedInstances(community: "hub", studyInstanceUID: "1.2.3").map(\.sopInstanceUID)
                    == ["1.2.3.1", "1.2.3.2"])
        #expect(try database.cachedInstances(community: "hub", sopInstanceUIDs: ["1.2.3.2", "9.9"]).map(\.sopInstanceUID)
                    == ["1.2.3.2"])
        // Within its stay nothing is purged, even instances fetched long ago.
        #expect(try database.expireCache(fetchedBefore: now.addingTimeInterval(60), now: now).isEmpty)
        // Past it, the study and its files go.
        let later = now.addingTimeInterval(2 * 86_400)
        #expect(try database.completeCachedStudy(community: "hub", studyInstanceUID: "1.2.3", now: later) == nil)
        let purged = try database.expireCache(fetchedBefore: later.addingTimeInterval(-86_400), now: later)
        #expect(Set(purged) == ["cache/x/1.2.3.1.dcm", "cache/x/1.2.3.2.dcm"])
        #expect(try database.cachedFilePaths().isEmpty)
    }

    @Test func admissionMovesTheFileUnderAHashedNameAndRecordsIt() throws {
        let root = NSTemporaryDirectory() + "cache-admission-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        let spool = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        try FileManager.default.createDirectory(atPath: spool.cacheStagingDirectory, withIntermediateDirectories: true)
        let staged = spool.cacheStagingDirectory + "/part-1"
        try Data("DICM".utf8).write(to: URL(fileURLWithPath: staged))
        let instance = CachedInstance(community: "hub", studyInstanceUID: "1.2.3", seriesInstanceUID: "1.2.3.1",
                                      sopInstanceUID: "../../etc/passwd", sopClassUID: "1.2.840.10008.5.1.4.1.1.2", size: 4)
        // Names come from hashes: a UID off the wire never makes a path.
        #expect(instance.filePath.hasPrefix("cache/"))
        #expect(!instance.filePath.contains(".."))
        #expect(instance.filePath == Spool.cachePath(community: "hub", studyInstanceUID: "1.2.3",
                                                     sopInstanceUID: "../../etc/passwd"))
        let admitted = try spool.admitToCache(fileAt: staged, instance)
        #expect(admitted == spool.files.absolutePath(instance.filePath))
        #expect(FileManager.default.fileExists(atPath: admitted))
        #expect(!FileManager.default.fileExists(atPath: staged))
        #expect(try spool.database.cachedFilePaths() == [instance.filePath])
        // A failed admission (here: the staged file is gone) leaves nothing behind.
        var other = instance
        other.sopInstanceUID = "1.2.3.9"
        #expect(throws: CacheAdmissionError.self) { try spool.admitToCache(fileAt: staged, other) }
        #expect(try spool.database.cachedFilePaths() == [instance.filePath])
    }

    @Test func instancesOfPartialRetrievalsExpireByTheirFetchTime() throws {
        let database = try SpoolDatabase()
        let now = Date()
        try database.recordCached(instance("4.5.6.1", study: "4.5.6"), at: now.addingTimeInterval(-3 * 86_400))
        try database.recordCached(instance("4.5.6.2", study: "4.5.6"), at: now)
        let purged = try database.expireCache(fetchedBefore: now.addingTimeInterval(-86_400), now: now)
        #expect(purged == ["cache/x/4.5.6.1.dcm"])
        #expect(try database.cachedFilePaths() == ["cache/x/4.5.6.2.dcm"])
    }

    @Test func accessesAreListedNewestFirst() throws {
        let database = try SpoolDatabase()
        var find = CommunityAccess(callingAETitle: "PACS", calledAETitle: "MIRC", operation: "FIND",
                                   query: "PatientName=DUR*", status: 0)
        find.level = "STUDY"
        find.results = 3
        try database.recordAccess(find)
        var move = CommunityAccess(callingAETitle: "PACS", calledAETitle: "MIRC", operation: "MOVE",
                                   query: "StudyInstanceUID=1.2.3", status: 0xB000)
        move.studyUIDs = ["1.2.3", "1.2.4"]
        move.moveDestination = "PACS"
        move.completed = 9
        move.failed = 1
        move.error = "1.2.3.9: C-STORE 0xA700"
        try database.recordAccess(move)
        let listed = try database.communityAccesses(limit: 10)
        #expect(listed.map(\.operation) == ["MOVE", "FIND"])
        #expect(listed[0].status == 0xB000)
        #expect(listed[0].studyUIDs == ["1.2.3", "1.2.4"])
        #expect(listed[0].moveDestination == "PACS" && listed[0].completed == 9 && listed[0].failed == 1)
        #expect(listed[0].error == move.error)
        #expect(listed[1].level == "STUDY" && listed[1].results == 3 && listed[1].query == "PatientName=DUR*")
        #expect(abs(listed[1].at.timeIntervalSince(find.at)) < 0.01)
        #expect(try database.communityAccesses(limit: 1).count == 1)
        // The operation is one of three.
        var bad = find
        bad.operation = "STORE"
        #expect(throws: (any Error).self) { try database.recordAccess(bad) }
    }
}
