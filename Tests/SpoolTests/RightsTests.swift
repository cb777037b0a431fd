import Foundation
import GRDB
import Testing
@testable import Spool

/// Oppositions, consent and withdrawals as spool state, on an in-memory database.
@Suite struct RightsTests {
    let database: SpoolDatabase
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let rules = SharingRules(sharedDestinations: ["community"], holdUntilInformed: false, siteIssuer: "CHR")

    init() throws {
        database = try SpoolDatabase()
    }

    /// Indexes `count` instances of `study` for patient `patient` (issuer `issuer`, "" = none sent).
    func receive(study: String, patient: String, issuer: String = "CHR", ins: [String] = [], count: Int = 2) throws {
        let instances = (1...count).map { n in
            NewInstance(sopInstanceUID: "\(study).\(n)", sopClassUID: "1.2.840.10008.5.1.4.1.1.2",
                        transferSyntaxUID: "1.2.840.10008.1.2.1",
                        attributes: IndexedAttributes(studyInstanceUID: study, seriesInstanceUID: "\(study).0",
                                                      patientID: patient, issuerOfPatientID: issuer, ins: ins),
                        location: StoredLocation(relativePath: "store/\(study)/\(n).dcm", offset: 0, length: 100, dataSetOffset: 132),
                        sha256: "h\(n)",
                        callingAETitle: "CT", receivedAt: t0)
        }
        for result in try database.record(instances, sameDataSet: { _, _ in false }) { _ = try result.get() }
    }

    func route(_ rules: SharingRules? = nil) throws {
        try database.route(try database.unroutedInstances().map { ($0.instanceID, ["archive", "community"]) },
                           sharing: rules ?? self.rules, now: t0)
    }

    /// Study UIDs of the chunks `destination` gets until its queue is empty (all marked stored).
    func drain(_ destination: String, rules: SharingRules? = nil) throws -> Set<String> {
        var studies: Set<String> = []
        while case let chunk = try database.takeChunk(destination: destination, maxInstances: 100, maxBytes: 1 << 20,
                                                      sharing: destination == "community" ? (rules ?? self.rules) : nil,
                                                      now: t0), !chunk.isEmpty {
            studies.formUnion(chunk.map(\.studyInstanceUID))
            try database.complete(destination: destination, outcomes: chunk.map { ($0.instanceID, .stored(sentSHA256: $0.sha256)) },
                                  now: t0)
        }
        return studies
    }

    func withheld(_ study: String) throws -> SharingBlock? {
        try database.studyDeliveries(stableBefore: t0.addingTimeInterval(3600))[study]?["community"]?.withheld
    }

    @Test func opposedStudiesGoToTheArchiveOnly() throws {
        _ = try database.addOpposition(.patient(id: "P1", issuer: "CHR"), by: "dpo", reason: nil, rules: rules, now: t0)
        _ = try database.addOpposition(.ins("INS-9"), by: "dpo", reason: nil, rules: rules, now: t0)
        _ = try database.addOpposition(.study("S4"), by: "dpo", reason: nil, rules: rules, now: t0)
        _ = try database.addOpposition(.patient(id: "P5", issuer: "TOURS"), by: "dpo", reason: nil, rules: rules, now: t0)
        try receive(study: "S1", patient: "P1")
        try receive(study: "S2", patient: "P2", ins: ["INS-9"])
        try receive(study: "S3", patient: "P1", issuer: "")  // no issuer sent: the site's
        try receive(study: "S4", patient: "P4")
        try receive(study: "S5", patient: "P5")  // P5 of this site, not of TOURS
        try receive(study: "S6", patient: "P1", issuer: "TOURS")  // P1 of another site
        try route()
        #expect(try drain("archive") == ["S1", "S2", "S3", "S4", "S5", "S6"])
        #expect(try drain("community") == ["S5", "S6"])
        for study in ["S1", "S2", "S3", "S4"] { #expect(try withheld(study) == .opposition) }
        #expect(try withheld("S5") == nil)
        #expect(try database.rightsTotals().withheld["community"]?["opposition"] == 4)
    }

    @Test func anOppositionBetweenChunksStopsTheRest() throws {
        try receive(study: "S1", patient: "P1", count: 4)
        try route()
        let first = try database.takeChunk(destination: "community", maxInstances: 2, maxBytes: 1 << 20, sharing: rules, now: t0)
        #expect(first.count == 2)
        let change = try database.addOpposition(.patient(id: "P1", issuer: "CHR"), by: "dpo", reason: "letter",
                                                rules: rules, now: t0)
        // The first chunk is in flight: a withdrawal is queued at once, and nothing else is taken.
        #expect(change.withdrawals.map(\.studyUID) == ["S1"])
        #expect(try database.hasInFlight(studyUID: "S1", destination: "community"))
        #expect(try database.takeChunk(destination: "community", maxInstances: 2, maxBytes: 1 << 20, sharing: rules,
                                       now: t0).isEmpty)
        #expect(try drain("archive") == ["S1"])
    }

    @Test func theChunkCheckCatchesAStudyRoutedBeforeTheOpposition() throws {
        try receive(study: "S1", patient: "P1")
        try route()
        // An opposition written without the spool's bookkeeping (as after a restore): the
        // check before the chunk still withholds the study.
        _ = try database.addOpposition(.patient(id: "P1", issuer: "CHR"), by: "dpo", reason: nil,
                                       rules: SharingRules(sharedDestinations: [], holdUntilInformed: false, siteIssuer: "CHR"),
                                       now: t0)
        #expect(try withheld("S1") == nil)
        #expect(try drain("community").isEmpty)
        #expect(try withheld("S1") == .opposition)
    }

    @Test func aLateOppositionQueuesAWithdrawalAndRemovalSharesAgain() throws {
        try receive(study: "S1", patient: "P1")
        try receive(study: "S2", patient: "P2")
        try route()
        _ = try drain("archive")
        #expect(try drain("community") == ["S1", "S2"])
        let added = try database.addOpposition(.patient(id: "P1", issuer: "CHR"), by: "dpo", reason: "r", rules: rules, now: t0)
        #expect(added.studiesInSpool == 1)
        #expect(added.withdrawals.map(\.studyUID) == ["S1"])
        #expect(added.withdrawals.first?.patientID == "P1")
        #expect(try database.dueWithdrawals(now: t0).map(\.studyUID) == ["S1"])
        // Every shared destination is to be searched for older studies of the patient.
        #expect(try database.dueSweeps(now: t0).map(\.destination) == ["community"])

        let withdrawal = try #require(try database.dueWithdrawals(now: t0).first)
        try database.recordWithdrawn(withdrawal, now: t0)
        #expect(try database.dueWithdrawals(now: t0).isEmpty)
        #expect(try drain("community").isEmpty)  // withheld, not sent back

        let removed = try database.removeOpposition(.patient(id: "P1", issuer: "CHR"), by: "dpo", reason: "lifted",
                                                    rules: rules, now: t0)
        #expect(removed.withdrawals.map(\.state) == [.reshared])
        #expect(try database.dueSweeps(now: t0).isEmpty)
        #expect(try drain("community") == ["S1"])
        let history = try database.oppositions()
        #expect(history.count == 1)
        #expect(history[0].removedBy == "dpo" && history[0].removalReason == "lifted" && history[0].reason == "r")
        #expect(throws: RightsError.notOpposed(.patient(id: "P1", issuer: "CHR"))) {
            try database.removeOpposition(.patient(id: "P1", issuer: "CHR"), by: "dpo", reason: nil, rules: rules)
        }
    }

    @Test func liftedBeforeTheWithdrawalRanCancelsIt() throws {
        try receive(study: "S1", patient: "P1")
        try route()
        _ = try drain("community")
        _ = try database.addOpposition(.study("S1"), by: "dpo", reason: nil, rules: rules, now: t0)
        let removed = try database.removeOpposition(.study("S1"), by: "dpo", reason: nil, rules: rules, now: t0)
        #expect(removed.withdrawals.map(\.state) == [.cancelled])
        #expect(try database.dueWithdrawals(now: t0).isEmpty)
    }

    @Test func aSweepOfAStudyNoLongerInTheSpoolNeedsAResendWhenLifted() throws {
        let added = try database.addOpposition(.patient(id: "OLD", issuer: "CHR"), by: "dpo", reason: nil, rules: rules, now: t0)
        let sweep = try #require(try database.dueSweeps(now: t0).first)
        let queued = try database.recordSweep(oppositionID: added.opposition.id, destination: sweep.destination,
                                              found: [("S-2019", "OLD")], now: t0)
        #expect(queued.map(\.studyUID) == ["S-2019"])
        #expect(try database.dueSweeps(now: t0).isEmpty)
        try database.recordWithdrawn(queued[0], now: t0)
        let removed = try database.removeOpposition(.patient(id: "OLD", issuer: "CHR"), by: "dpo", reason: nil,
                                                    rules: rules, now: t0)
        #expect(removed.withdrawals.map(\.state) == [.needsResend])
        #expect(try database.rightsTotals().withdrawals["community"]?["needs_resend"] == 1)
    }

    @Test func consentHoldAndEmergencyShare() throws {
        let hold = SharingRules(sharedDestinations: ["community"], holdUntilInformed: true, siteIssuer: "CHR")
        try receive(study: "S1", patient: "P1")
        try receive(study: "S2", patient: "P2")
        try receive(study: "S3", patient: "P3")
        try route(hold)
        #expect(try drain("community", rules: hold).isEmpty)
        #expect(try withheld("S1") == .consent)

        let informed = try database.recordConsent(.patient(id: "P1", issuer: "CHR"), basis: .informed, by: "desk",
                                                  reason: nil, rules: hold, now: t0)
        #expect(informed.released == ["S1"])
        let emergency = try database.recordConsent(.study("S2"), basis: .emergency, by: "Dr A", reason: "trauma",
                                                   rules: hold, now: t0)
        #expect(emergency.released == ["S2"])
        #expect(try drain("community", rules: hold) == ["S1", "S2"])

        _ = try database.addOpposition(.patient(id: "P3", issuer: "CHR"), by: "dpo", reason: nil, rules: hold, now: t0)
        #expect(throws: RightsError.opposed(.study("S3"))) {
            try database.recordConsent(.study("S3"), basis: .emergency, by: "Dr A", reason: "x", rules: hold)
        }
        #expect(throws: RightsError.unknownStudy("S9")) {
            try database.recordConsent(.study("S9"), basis: .emergency, by: "Dr A", reason: "x", rules: hold)
        }
    }

    func verifyAtArchive(_ study: String) throws {
        _ = try drain("archive")
        let candidate = try #require(try database.verificationCandidates(destination: "archive", stableBefore: t0, now: t0)
            .first { $0.studyInstanceUID == study })
        try database.recordVerification(candidate, destination: "archive", missing: [], now: t0)
    }

    /// Opposed: the archive's verification lets the study go, and a mark stays so that lifting
    /// the opposition sends it to the community from the archive.
    @Test func anOpposedStudyIsPurgedAndLiftingSendsItFromTheArchive() throws {
        _ = try database.addOpposition(.ins("INS-1"), by: "dpo", reason: nil, rules: rules, now: t0)
        try receive(study: "S1", patient: "P1", ins: ["INS-1"])
        try route()
        try verifyAtArchive("S1")
        #expect(try database.verificationCandidates(destination: "community", stableBefore: t0, now: t0).isEmpty)
        let candidate = try #require(try database.purgeCandidates(verifiedBefore: nil).first)
        #expect(candidate.studyInstanceUID == "S1")
        _ = try database.purge(candidate, siteIssuer: "CHR", now: t0)
        // Nothing to delete (it never went there): a mark that it is not there.
        #expect(try database.dueWithdrawals(now: t0).isEmpty)
        #expect(try database.withdrawals().map(\.state) == [.withdrawn])
        let removed = try database.removeOpposition(.ins("INS-1"), by: "dpo", reason: nil, rules: rules, now: t0)
        #expect(removed.withdrawals.map(\.studyUID) == ["S1"])
        #expect(removed.withdrawals.map(\.state) == [.needsResend])
        #expect(try database.dueResends(now: t0).map(\.ins) == [["INS-1"]])
    }

    /// Held for consent: kept in the spool until the patient is informed.
    @Test func aHeldStudyIsNotPurged() throws {
        let hold = SharingRules(sharedDestinations: ["community"], holdUntilInformed: true, siteIssuer: "CHR")
        try receive(study: "S1", patient: "P1")
        try route(hold)
        try verifyAtArchive("S1")
        #expect(try database.purgeCandidates(verifiedBefore: nil).isEmpty)
        _ = try database.recordConsent(.patient(id: "P1", issuer: "CHR"), basis: .informed, by: "desk", reason: nil,
                                       rules: hold, now: t0)
        #expect(try drain("community", rules: hold) == ["S1"])
    }

    /// A reload to "share", or a destination no longer shared, releases what was withheld.
    @Test func refreshingTheRulesReleasesWhatTheyNoLongerBlock() throws {
        let hold = SharingRules(sharedDestinations: ["community"], holdUntilInformed: true, siteIssuer: "CHR")
        try receive(study: "S1", patient: "P1")
        try receive(study: "S2", patient: "P2")
        try route(hold)
        _ = try database.addOpposition(.patient(id: "P2", issuer: "CHR"), by: "dpo", reason: nil, rules: hold, now: t0)
        #expect(try withheld("S1") == .consent)
        #expect(try database.refreshSharing(rules: rules) == 1)
        #expect(try withheld("S1") == nil && withheld("S2") == .opposition)
        #expect(try drain("community") == ["S1"])
        // No shared destination any more: nothing is withheld.
        _ = try database.refreshSharing(rules: SharingRules(sharedDestinations: [], holdUntilInformed: false, siteIssuer: "CHR"))
        #expect(try withheld("S2") == nil)
    }

    /// Lifted while the delete ran (the row is cancelled): purged, the study needs a resend.
    @Test func aWithdrawalDoneAfterItsCancellationNeedsAResend() throws {
        let added = try database.addOpposition(.patient(id: "OLD", issuer: "CHR"), by: "dpo", reason: nil, rules: rules, now: t0)
        let queued = try database.recordSweep(oppositionID: added.opposition.id, destination: "community",
                                              found: [("S-2019", "OLD")], now: t0)
        let removed = try database.removeOpposition(.patient(id: "OLD", issuer: "CHR"), by: "dpo", reason: nil,
                                                    rules: rules, now: t0)
        #expect(removed.withdrawals.map(\.state) == [.needsResend])  // not in the spool: from the archive
        try database.recordWithdrawn(queued[0], now: t0)
        #expect(try database.withdrawals().map(\.state) == [.needsResend])

        // Opposed again before the resend ran: it stays withdrawn.
        _ = try database.addOpposition(.patient(id: "OLD", issuer: "CHR"), by: "dpo", reason: nil, rules: rules, now: t0)
        #expect(try database.dueResends(now: t0).isEmpty)
        #expect(try database.withdrawals(since: t0).map(\.state) == [.withdrawn])
    }

    /// Waiting (chunks in flight, the operator) is not a failed attempt.
    @Test func waitsAreNotAttempts() throws {
        let added = try database.addOpposition(.study("S9"), by: "dpo", reason: nil, rules: rules, now: t0)
        let withdrawal = try #require(try database.recordSweep(oppositionID: added.opposition.id, destination: "community",
                                                               found: [("S9", "P9")], now: t0).first)
        try database.postponeWithdrawal(withdrawal, until: t0, error: nil, failed: false)
        var row = try #require(try database.dueWithdrawals(now: t0).first)
        #expect(row.attempts == 0 && row.lastError == nil)
        try database.postponeWithdrawal(row, until: t0, error: "HTTP 503")
        row = try #require(try database.dueWithdrawals(now: t0).first)
        #expect(row.attempts == 1 && row.lastError == "HTTP 503")
    }

    /// The check before each chunk is one indexed lookup: no table is scanned, however many
    /// oppositions and consent records the site holds.
    @Test func theSharingCheckScansNoTable() throws {
        let plan = try database.writer.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + SpoolDatabase.sharingBlockSQL,
                             arguments: ["study": 1, "site": "CHR", "hold": true]).map { $0["detail"] as String }
        }
        #expect(!plan.isEmpty)
        #expect(plan.allSatisfy { !$0.hasPrefix("SCAN") }, "\(plan)")
        #expect(plan.contains { $0.contains("opposition_active") } && plan.contains { $0.contains("consent_subject") })
    }

    @Test func oneActiveOppositionPerSubject() throws {
        _ = try database.addOpposition(.ins("INS-1"), by: "dpo", reason: nil, rules: rules, now: t0)
        #expect(throws: RightsError.alreadyOpposed(.ins("INS-1"))) {
            try database.addOpposition(.ins("INS-1"), by: "dpo", reason: nil, rules: rules, now: t0)
        }
        _ = try database.removeOpposition(.ins("INS-1"), by: "dpo", reason: nil, rules: rules, now: t0)
        _ = try database.addOpposition(.ins("INS-1"), by: "dpo", reason: "again", rules: rules, now: t0)
        #expect(try database.oppositions().count == 2)
        #expect(try database.rightsTotals().activeOppositions == 1)
        #expect(try database.patients(withINS: "INS-1").isEmpty)
        try receive(study: "S1", patient: "P1", ins: ["INS-1"])
        #expect(try database.patients(withINS: "INS-1").map(\.patientID) == ["P1"])
    }
}
