import Crypto
import Foundation
import GRDB
import Testing
@testable import Spool

@Suite struct AuditLogTests {
    static let genesis = String(repeating: "0", count: 64)

    /// A stand-in link (the real rule is the Audit target's): the spool only has to pass the previous hash.
    static func link(_ previous: String, _ draft: AuditDraft) -> String {
        SHA256.hash(data: Data((previous + draft.content).utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static func draft(_ content: String, patient: String? = nil, studies: [String] = [], at: String = "2026-12-06T10:00:00.000Z") -> AuditDraft {
        AuditDraft(at: at, action: "instancesReceived", outcome: 0, content: content,
                   patients: patient.map { [AuditPatientKey(id: $0, issuer: "SITE")] } ?? [], studies: studies,
                   actors: ["CT1"])
    }

    @Test func appendLinksEachRowToTheLast() throws {
        let database = try SpoolDatabase()
        let first = try database.appendAudit([Self.draft("a"), Self.draft("b")], genesis: Self.genesis, link: Self.link)
        let second = try database.appendAudit([Self.draft("c")], genesis: Self.genesis, link: Self.link)
        #expect(first.map(\.id) == [1, 2])
        #expect(first[0].previousHash == Self.genesis)
        #expect(first[1].previousHash == first[0].hash)
        #expect(second[0].previousHash == first[1].hash)
        #expect(second[0].hash == Self.link(first[1].hash, Self.draft("c")))
        #expect(try database.auditRecords().map(\.content) == ["a", "b", "c"])
        #expect(try database.auditRecords(after: 1, limit: 1).map(\.id) == [2])
        #expect(try database.auditHead()?.id == 3)
    }

    @Test func rowsCannotBeChangedNorDeletedThroughSQL() throws {
        let database = try SpoolDatabase()
        _ = try database.appendAudit([Self.draft("a")], genesis: Self.genesis, link: Self.link)
        #expect(throws: (any Error).self) {
            try database.writer.write { try $0.execute(sql: "UPDATE audit SET content = 'x'") }
        }
        #expect(throws: (any Error).self) {
            try database.writer.write { try $0.execute(sql: "DELETE FROM audit") }
        }
        #expect(try database.auditRecords().map(\.content) == ["a"])
    }

    @Test func patientExportFollowsTheirStudiesAndNoOneElses() throws {
        let database = try SpoolDatabase()
        _ = try database.appendAudit([
            Self.draft("received P1", patient: "P1", studies: ["1.1"]),
            Self.draft("received P2", patient: "P2", studies: ["2.1"]),
            Self.draft("retrieve 1.1", studies: ["1.1"], at: "2026-12-07T08:00:00.000Z"),
            Self.draft("retrieve 2.1", studies: ["2.1"]),
            Self.draft("start"),
        ], genesis: Self.genesis, link: Self.link)
        #expect(try database.auditRecords(patientID: "P1", issuer: "SITE").map(\.content) == ["received P1", "retrieve 1.1"])
        #expect(try database.auditRecords(patientID: "P1", issuer: "OTHER").isEmpty)
        #expect(try database.auditRecords(patientID: "P1", issuer: "SITE", since: "2026-12-07").map(\.content)
                == ["retrieve 1.1"])
    }

    @Test func outboxCursorCountsWhatWaits() throws {
        let database = try SpoolDatabase()
        _ = try database.appendAudit([Self.draft("a"), Self.draft("b"), Self.draft("c")], genesis: Self.genesis,
                                     link: Self.link)
        #expect(try database.auditQueueDepth() == 3)
        try database.setAuditSentThrough(2)
        #expect(try database.auditSentThrough() == 2)
        #expect(try database.auditQueueDepth() == 1)
        try database.setAuditSentThrough(1)
        #expect(try database.auditSentThrough() == 2)
    }
}
