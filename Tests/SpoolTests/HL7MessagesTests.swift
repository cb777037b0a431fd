import Foundation
import Testing
@testable import Spool

@Suite struct HL7MessagesTests {
    let root = NSTemporaryDirectory() + "spool-tests-" + UUID().uuidString

    func message(_ controlID: String, from application: String = "PAS", bytes: String? = nil) -> NewHL7Message {
        NewHL7Message(sendingApplication: application, sendingFacility: "CHRU", controlID: controlID,
                      messageType: "ADT^A08", version: "2.5", peer: "127.0.0.1", receivedAt: Date(timeIntervalSince1970: 1_800_000_000.5),
                      message: Array((bytes ?? "MSH|^~\\&|\(application)|CHRU|||||ADT^A08|\(controlID)|P|2.5\r").utf8),
                      acknowledgment: Array("MSH|^~\\&|ACK\rMSA|AA|\(controlID)\r".utf8) + [0xE9])
    }

    /// Journals and waits until indexed.
    func journal(_ spool: Spool, _ message: NewHL7Message) throws -> (JournalLocation, Bool) {
        let indexed = NSCondition()
        nonisolated(unsafe) var outcome: Result<Bool, any Error>?
        let location = try spool.journalHL7(batch: [message]) { index, result in
            indexed.lock()
            outcome = result
            indexed.broadcast()
            indexed.unlock()
        }[0].get()
        indexed.lock()
        while outcome == nil { indexed.wait() }
        indexed.unlock()
        return (location, try outcome!.get())
    }

    @Test func aBatchIsDurableTogetherAndIndexedInItsOrder() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        let batch = (0..<20).map { message("B\($0)") } + [message("B3")]
        let done = NSCondition()
        nonisolated(unsafe) var outcomes: [Int: Bool] = [:]
        let locations = try spool.journalHL7(batch: batch) { index, result in
            done.lock()
            outcomes[index] = (try? result.get()) ?? false
            done.broadcast()
            done.unlock()
        }.map { try $0.get() }
        done.lock()
        while outcomes.count < batch.count { done.wait() }
        done.unlock()
        #expect(zip(locations, locations.dropFirst()).allSatisfy { $0.end <= $1.payloadOffset })
        #expect(outcomes.filter(\.value).count == 20)
        #expect(outcomes[20] == false)  // B3 twice in one batch: indexed once
        #expect(try spool.database.hl7Messages(limit: 100).count == 20)
    }

    @Test func aJournaledMessageIsIndexedWithItsAcknowledgment() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        let sent = message("M1")
        let (location, new) = try journal(spool, sent)
        #expect(new)
        let rows = try spool.database.hl7Messages()
        #expect(rows.count == 1)
        #expect(rows[0].message == sent.message)
        #expect(rows[0].acknowledgment == sent.acknowledgment)
        #expect(rows[0].state == .received)
        #expect(rows[0].journalSegment == location.relativePath)
        #expect(try storedBytes(spool, StoredLocation(location, dataSetOffset: 0)) == sent.message)
        #expect(try spool.database.hl7Acknowledgment(sendingApplication: "PAS", sendingFacility: "CHRU",
                                                     controlID: "M1") == sent.acknowledgment)
        #expect(try spool.database.hl7Acknowledgment(sendingApplication: "RIS", sendingFacility: "CHRU",
                                                     controlID: "M1") == nil)
        #expect(try spool.database.hl7Counts() == [.received: 1])
    }

    @Test func aControlIDIsKeptOncePerSenderButRefusalsMayRepeat() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        #expect(try journal(spool, message("M1")).1)
        #expect(try !journal(spool, message("M1")).1)
        #expect(try journal(spool, message("M1", from: "RIS")).1)
        try spool.database.recordRefusedHL7(message("M1"), reason: "AR 203: version")
        try spool.database.recordRefusedHL7(message("M1"), reason: "AR 203: version")
        #expect(try spool.database.hl7Counts() == [.received: 2, .refused: 2])
        #expect(try spool.database.hl7Messages(states: [.refused]).map(\.detail) == ["AR 203: version", "AR 203: version"])
        #expect(try spool.database.hl7Messages(controlID: "M1").count == 4)
    }

    /// The index lost its rows (a power cut after the ACK): replay indexes the messages again,
    /// byte for byte, with the ACK that was sent.
    @Test func replayIndexesAcknowledgedMessagesAgain() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        let sent = [message("M1"), message("M2", bytes: "MSH|^~\\&|PAS|CHRU|||||ADT^A08|M2|P|2.5\rPID|1||X^^^Y||H\u{E9}l\u{E8}ne\r")]
        for m in sent { _ = try journal(spool, m) }
        try spool.database.writer.write { db in
            try db.execute(sql: "DELETE FROM hl7_message")
            try db.execute(sql: "DELETE FROM journal_checkpoint")
        }
        let pending = try spool.unindexedJournalRecords()
        #expect(pending.records.map(\.header.type) == [.hl7Message, .hl7Message])
        for record in pending.records { #expect(try spool.indexReplayedHL7(record)) }
        let rows = try spool.database.hl7Messages().reversed()
        #expect(rows.map(\.controlID) == ["M1", "M2"])
        #expect(rows.map(\.message) == sent.map(\.message))
        #expect(rows.map(\.acknowledgment) == sent.map(\.acknowledgment))
        #expect(rows.map(\.receivedAt) == sent.map(\.receivedAt))
        #expect(try spool.unindexedJournalRecords().records.isEmpty)
        // Replaying a record whose row survived changes nothing.
        #expect(try !spool.indexReplayedHL7(pending.records[0]))
    }

    @Test func messagesDoneWithArePrunedPastTheRetention() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        for id in ["OLD-APPLIED", "OLD-RECEIVED", "OLD-WAITING", "NEW-APPLIED"] { _ = try journal(spool, message(id)) }
        try spool.database.recordRefusedHL7(message("OLD-REFUSED"), reason: "AR")
        let rows = Dictionary(uniqueKeysWithValues: try spool.database.hl7Messages().map { ($0.controlID, $0.id) })
        try spool.database.setHL7State(id: rows["OLD-APPLIED"]!, .applied)
        try spool.database.setHL7State(id: rows["NEW-APPLIED"]!, .applied)
        try spool.database.setHL7State(id: rows["OLD-WAITING"]!, .waiting)
        try spool.database.recordHL7Report(
            HL7ReportRecord(studyInstanceUID: "1.2", fillerOrderNumber: "A", resultStatus: "F", sopClassUID: "1.2.3",
                            sopInstanceUID: "2.25.9", seriesInstanceUID: "2.25.8"),
            messageID: rows["OLD-APPLIED"]!, detail: "SR")
        try spool.database.writer.write { db in
            try db.execute(sql: "UPDATE hl7_message SET received_at = 0 WHERE control_id LIKE 'OLD-%'")
        }
        #expect(try spool.database.pruneHL7Messages(receivedBefore: Date(timeIntervalSince1970: 1000)) == 2)
        #expect(Set(try spool.database.hl7Messages().map(\.controlID)) == ["OLD-RECEIVED", "OLD-WAITING", "NEW-APPLIED"])
        // The report made stays: a later correction still names it.
        #expect(try spool.database.latestHL7Report(studyInstanceUID: "1.2", fillerOrderNumber: "A")?.sopInstanceUID == "2.25.9")
        // A resend of a pruned control ID is a new message.
        #expect(try spool.database.hl7Acknowledgment(sendingApplication: "PAS", sendingFacility: "CHRU", controlID: "OLD-APPLIED") == nil)
    }

    /// A sealed segment that only held messages is reclaimed: their rows keep the messages.
    @Test func aSegmentOfMessagesIsReclaimedOnceTheirRowsAreDurable() throws {
        let spool = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        let (location, _) = try journal(spool, message("M1"))
        let reopened = try Spool(root: root, minimumFree: .bytes(0), segmentSize: 1 << 20)
        #expect(reopened.journal.sealedSegments().contains(location.relativePath))
        #expect(try reopened.reclaimSegments().segments >= 1)
        #expect(!FileManager.default.fileExists(atPath: reopened.files.absolutePath(location.relativePath)))
        #expect(try reopened.database.hl7Messages().map(\.message) == [message("M1").message])
    }
}
