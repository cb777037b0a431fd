import Foundation
import Testing
@testable import Spool

/// The upload queue's transitions, on an in-memory database.
@Suite struct DeliveryQueueTests {
    let database: SpoolDatabase
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    init() throws {
        database = try SpoolDatabase()
    }

    /// Indexes `count` instances of `study` (SOP UIDs "<study>.<n>"), received at `at`.
    @discardableResult
    func receive(study: String, count: Int, from first: Int = 1, size: Int = 1000, at: Date? = nil,
                 issuer: String = "CHR", callingAE: String = "CT1", modality: String = "CT") throws -> [String] {
        let instances = (first..<first + count).map { n in
            NewInstance(sopInstanceUID: "\(study).\(n)", sopClassUID: "1.2.840.10008.5.1.4.1.1.2",
                        transferSyntaxUID: "1.2.840.10008.1.2.1",
                        attributes: IndexedAttributes(studyInstanceUID: study, seriesInstanceUID: "\(study).0",
                                                      patientID: "P-\(study)", issuerOfPatientID: issuer,
                                                      modality: modality),
                        location: StoredLocation(relativePath: "store/\(study)/\(n).dcm", offset: 0, length: size, dataSetOffset: 132),
                        sha256: "h\(n)",
                        callingAETitle: callingAE, receivedAt: at ?? t0)
        }
        for result in try database.record(instances, sameDataSet: { _, _ in false }) { _ = try result.get() }
        return instances.map(\.sopInstanceUID)
    }

    func routeAll(to destinations: [String] = ["archive"]) throws {
        try database.route(try database.unroutedInstances().map { ($0.instanceID, destinations) }, now: t0)
    }

    func states(_ destination: String = "archive") throws -> [String: DeliveryState] {
        let listings = try database.listInstances()
        let deliveries = try database.deliveries()
        var result: [String: DeliveryState] = [:]
        for listing in listings {
            if let state = deliveries[listing.instanceID]?[destination]?.state { result[listing.sopInstanceUID] = state }
        }
        return result
    }

    @Test func routingCreatesOneQueuedDeliveryPerDestinationOnce() throws {
        try receive(study: "1.1", count: 3)
        #expect(try database.unroutedInstances().count == 3)
        try routeAll(to: ["archive", "community"])
        #expect(try database.unroutedInstances().isEmpty)
        #expect(try states("archive").values.allSatisfy { $0 == .queued })
        #expect(try states("community").count == 3)
        let totals = try database.deliveryTotals()
        #expect(totals["archive"]?[.queued] == DeliveryTotals(instances: 3, bytes: 3000))
    }

    @Test func chunksRespectTheLimitsAndStayWithinOneStudy() throws {
        try receive(study: "1.1", count: 5, size: 400)
        try receive(study: "1.2", count: 2, size: 400)
        try routeAll()
        let first = try database.takeChunk(destination: "archive", maxInstances: 3, maxBytes: 10_000, now: t0)
        #expect(first.map(\.sopInstanceUID) == ["1.1.1", "1.1.2", "1.1.3"])
        #expect(first.allSatisfy { $0.attempts == 1 })
        let second = try database.takeChunk(destination: "archive", maxInstances: 10, maxBytes: 1000, now: t0)
        #expect(second.map(\.sopInstanceUID) == ["1.1.4", "1.1.5"], "800 bytes fit, the study ends there")
        let third = try database.takeChunk(destination: "archive", maxInstances: 10, maxBytes: 100, now: t0)
        #expect(third.map(\.sopInstanceUID) == ["1.2.1"], "an instance larger than the limit travels alone")
        #expect(try states()["1.1.1"] == .inFlight)
    }

    @Test func urgentStudiesOvertakeTheQueue() throws {
        try receive(study: "1.1", count: 2)
        try receive(study: "1.2", count: 2)
        try routeAll()
        #expect(try database.markUrgent(studyInstanceUID: "1.2"))
        #expect(try !database.markUrgent(studyInstanceUID: "9.9"))
        let chunk = try database.takeChunk(destination: "archive", maxInstances: 10, maxBytes: 1 << 20, now: t0)
        #expect(chunk.map(\.studyInstanceUID) == ["1.2", "1.2"])
    }

    @Test func outcomesSetStatesAndRetriesFallDueAtTheirTime() throws {
        try receive(study: "1.1", count: 4)
        try routeAll()
        let chunk = try database.takeChunk(destination: "archive", maxInstances: 10, maxBytes: 1 << 20, now: t0)
        try database.complete(destination: "archive", outcomes: [
            (chunk[0].instanceID, .stored(sentSHA256: "s1")),
            (chunk[1].instanceID, .retry(at: t0.addingTimeInterval(60), reason: "503")),
            (chunk[2].instanceID, .rejected(reason: "0xC000")),
            (chunk[3].instanceID, .requeue),
        ], now: t0)
        #expect(try states() == ["1.1.1": .stored, "1.1.2": .retry, "1.1.3": .rejected, "1.1.4": .queued])
        let deliveries = try database.deliveries()
        #expect(deliveries[chunk[0].instanceID]?["archive"]?.sentSha256 == "s1")
        #expect(deliveries[chunk[3].instanceID]?["archive"]?.attempts == 0, "a requeue is not an attempt")
        #expect(try database.nextRetry(destination: "archive") == t0.addingTimeInterval(60))
        let now = try database.takeChunk(destination: "archive", maxInstances: 10, maxBytes: 1 << 20, now: t0)
        #expect(now.map(\.sopInstanceUID) == ["1.1.4"], "the retry is not due yet")
        let later = try database.takeChunk(destination: "archive", maxInstances: 10, maxBytes: 1 << 20,
                                           now: t0.addingTimeInterval(61))
        #expect(later.map(\.sopInstanceUID) == ["1.1.2"])
        #expect(later[0].attempts == 2)
    }

    @Test func inFlightGoesBackToTheQueueAtStart() throws {
        try receive(study: "1.1", count: 2)
        try routeAll()
        _ = try database.takeChunk(destination: "archive", maxInstances: 10, maxBytes: 1 << 20, now: t0)
        #expect(try database.resetInFlight() == 2)
        #expect(try states().values.allSatisfy { $0 == .queued })
    }

    @Test func requeueBringsBackRetriesAndRejectionsOfOneStudyOrAll() throws {
        try receive(study: "1.1", count: 1)
        try receive(study: "1.2", count: 1)
        try routeAll()
        for _ in 0..<2 {
            let chunk = try database.takeChunk(destination: "archive", maxInstances: 10, maxBytes: 1 << 20, now: t0)
            try database.complete(destination: "archive", outcomes: [(chunk[0].instanceID, .rejected(reason: "no"))])
        }
        #expect(try database.requeue(studyInstanceUID: "1.2") == 1)
        #expect(try states() == ["1.1.1": .rejected, "1.2.1": .queued])
        #expect(try database.requeue(studyInstanceUID: nil) == 1)
    }

    /// Stores every instance of the study at "archive".
    func storeAll() throws {
        while true {
            let chunk = try database.takeChunk(destination: "archive", maxInstances: 100, maxBytes: 1 << 30, now: t0)
            if chunk.isEmpty { return }
            try database.complete(destination: "archive", outcomes: chunk.map { ($0.instanceID, .stored(sentSHA256: $0.sha256)) })
        }
    }

    @Test func aStudyIsVerifiedOnlyWhenCompleteAndAllStored() throws {
        try receive(study: "1.1", count: 3, at: t0)
        try routeAll()
        let stable = t0.addingTimeInterval(30)
        #expect(try database.verificationCandidates(destination: "archive", stableBefore: stable, now: stable).isEmpty)
        try storeAll()
        #expect(try database.verificationCandidates(destination: "archive", stableBefore: t0.addingTimeInterval(-1),
                                                    now: stable).isEmpty, "still receiving")
        let candidate = try #require(try database.verificationCandidates(destination: "archive", stableBefore: stable,
                                                                         now: stable).first)
        #expect(Set(candidate.instances.keys) == ["1.1.1", "1.1.2", "1.1.3"])
        #expect(try database.studyDeliveries(stableBefore: stable)["1.1"]?["archive"]?.state == .verifying)
        // The hub lacks one: it goes back to the queue, the study is not verified.
        let missing = try #require(candidate.instances["1.1.2"])
        #expect(try !database.recordVerification(candidate, destination: "archive", missing: [missing], now: stable))
        #expect(try states()["1.1.2"] == .queued)
        #expect(try database.studyDeliveries(stableBefore: stable)["1.1"]?["archive"]?.state == .uploading)
        try storeAll()
        let again = try #require(try database.verificationCandidates(destination: "archive", stableBefore: stable,
                                                                     now: stable).first)
        #expect(try database.recordVerification(again, destination: "archive", missing: [], now: stable))
        #expect(try database.studyDeliveries(stableBefore: stable)["1.1"]?["archive"]?.state == .verified)
    }

    @Test func aLateInstanceReopensAVerifiedStudyAndVoidsARunningVerification() throws {
        try receive(study: "1.1", count: 2, at: t0)
        try routeAll()
        try storeAll()
        let stable = t0.addingTimeInterval(30)
        let candidate = try #require(try database.verificationCandidates(destination: "archive", stableBefore: stable,
                                                                         now: stable).first)
        // An instance arrives (and is routed) while the hub is being asked.
        try receive(study: "1.1", count: 1, from: 3, at: t0.addingTimeInterval(1))
        try routeAll()
        #expect(try !database.recordVerification(candidate, destination: "archive", missing: [], now: stable),
                "a verification of the older generation does not count")
        #expect(try database.studyDeliveries(stableBefore: stable)["1.1"]?["archive"]?.state == .uploading)
        try storeAll()
        let next = try #require(try database.verificationCandidates(destination: "archive", stableBefore: stable,
                                                                    now: stable).first)
        #expect(try database.recordVerification(next, destination: "archive", missing: [], now: stable))
        // Verified; then one more instance re-opens it.
        try receive(study: "1.1", count: 1, from: 4, at: t0.addingTimeInterval(2))
        try routeAll()
        #expect(try database.studyDeliveries(stableBefore: stable)["1.1"]?["archive"]?.state == .uploading)
    }

    @Test func onlyStudiesVerifiedEverywhereAreEverPurged() throws {
        try receive(study: "1.1", count: 2, at: t0)
        try receive(study: "1.2", count: 1, at: t0)
        try database.route(try database.unroutedInstances().map {
            ($0.instanceID, $0.instanceID == 3 ? ["archive", "community"] : ["archive"])
        }, now: t0)
        try storeAll()
        let stable = t0.addingTimeInterval(30)
        for candidate in try database.verificationCandidates(destination: "archive", stableBefore: stable, now: stable) {
            try database.recordVerification(candidate, destination: "archive", missing: [], now: stable)
        }
        let candidates = try database.purgeCandidates(verifiedBefore: nil)
        #expect(candidates.map(\.studyInstanceUID) == ["1.1"], "1.2 is not verified at community")
        #expect(try database.purgeCandidates(verifiedBefore: t0).isEmpty, "not past the retention yet")
        let paths = try database.purge(candidates[0])
        #expect(Set(paths) == ["store/1.1/1.dcm", "store/1.1/2.dcm"])
        #expect(try database.listInstances().map(\.sopInstanceUID) == ["1.2.1"])
        #expect(try database.counts().studies == 1)
    }

    @Test func rejectedInstancesKeepTheirStudyFromVerificationAndPurge() throws {
        try receive(study: "1.1", count: 2, at: t0)
        try routeAll()
        let chunk = try database.takeChunk(destination: "archive", maxInstances: 10, maxBytes: 1 << 20, now: t0)
        try database.complete(destination: "archive", outcomes: [
            (chunk[0].instanceID, .stored(sentSHA256: "a")), (chunk[1].instanceID, .rejected(reason: "0xA900")),
        ])
        let stable = t0.addingTimeInterval(30)
        #expect(try database.verificationCandidates(destination: "archive", stableBefore: stable, now: stable).isEmpty)
        #expect(try database.studyDeliveries(stableBefore: stable)["1.1"]?["archive"]?.state == .rejected)
        #expect(try database.purgeCandidates(verifiedBefore: nil).isEmpty)
    }

    @Test func pausedDestinationsAreRemembered() throws {
        try database.setPaused(true, destination: "archive")
        try database.setPaused(true, destination: "community")
        try database.setPaused(false, destination: "community")
        #expect(try database.pausedDestinations() == ["archive"])
    }

    @Test func bookkeepingLeavesTheWriterSyncingFully() throws {
        let path = NSTemporaryDirectory() + "delivery-" + UUID().uuidString + ".sqlite"
        let onDisk = try SpoolDatabase(path: path)
        try onDisk.route([], now: t0)
        _ = try onDisk.takeChunk(destination: "archive", maxInstances: 1, maxBytes: 1, now: t0)
        #expect(try onDisk.synchronousMode() == 2, "received instances are still committed with synchronous=FULL")
    }

    @Test func aMissingIssuerIsReportedWithTheChunk() throws {
        try receive(study: "1.1", count: 1, issuer: "")
        try routeAll()
        let chunk = try database.takeChunk(destination: "archive", maxInstances: 10, maxBytes: 1 << 20, now: t0)
        #expect(chunk.first?.lacksIssuerOfPatientID == true)
    }
}
