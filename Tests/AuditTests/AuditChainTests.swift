import Foundation
import Testing
@testable import Audit

@Suite struct AuditChainTests {
    static func event(_ n: Int, patient: String = "P1") -> AuditEvent {
        AuditEvent(action: .instancesReceived, at: Date(timeIntervalSince1970: 1_800_000_000 + Double(n)),
                   actor: .init(aeTitle: "CT1", address: "10.0.0.5:4000"), destination: "PASSERELLE",
                   patients: [.init(id: patient, issuer: "CHR-ORLEANS")], studies: ["1.2.3.\(n)"],
                   details: ["count": "\(n)"])
    }

    /// A chain as the spool writes it.
    static func chain(_ count: Int) -> [AuditChain.Row] {
        var rows: [AuditChain.Row] = []
        var previous = AuditChain.genesis
        for n in 1...count {
            let content = AuditChain.canonicalContent(event(n))
            let hash = AuditChain.hash(previous: previous, content: content)
            rows.append(.init(id: Int64(n), content: content, previousHash: previous, hash: hash,
                              action: "instancesReceived", outcome: 0))
            previous = hash
        }
        return rows
    }

    @Test func timestampsAreWhatISO8601DateFormatterWrites() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        var generator = SystemRandomNumberGenerator()
        // Whole milliseconds, and any fraction (a reception's Date()), where rounding decides.
        let dates = [0, 0.001, 0.123, 0.9995, 1_733_500_000.999, 4_102_444_799.5] + (0..<4000).map { index in
            Double(Int.random(in: 0..<4_102_444_800, using: &generator))
                + (index % 2 == 0 ? Double(Int.random(in: 0..<1000, using: &generator)) / 1000
                                  : Double.random(in: 0..<1, using: &generator))
        }
        for time in dates {
            let date = Date(timeIntervalSince1970: time)
            #expect(AuditChain.timestamp(date) == formatter.string(from: date), "\(time)")
        }
    }

    @Test func canonicalContentIsSortedCompactAndReadsBack() throws {
        let event = Self.event(7)
        let content = AuditChain.canonicalContent(event)
        #expect(content.hasPrefix(#"{"action":"instancesReceived","actor":{"address":"10.0.0.5:4000","aeTitle":"CT1"},"at":"2027-01-15T08:00:07.000Z""#))
        #expect(content.hasSuffix(#","v":1}"#))
        #expect(!content.contains(" "))
        #expect(AuditChain.canonicalContent(event) == content)
        #expect(AuditChain.event(fromCanonicalContent: content) == event)
    }

    @Test func hashIsSHA256OfPreviousBytesThenContent() {
        // SHA-256 of 32 zero bytes followed by "abc", computed independently (python hashlib).
        #expect(AuditChain.hash(previous: AuditChain.genesis, content: "abc")
                == "365aa7d8f7f9402c4b9434502b4cc89ddb09fe50d7cd95b493b834c62d5a5370")
        let a = AuditChain.hash(previous: AuditChain.genesis, content: "abc")
        #expect(a.count == 64)
        #expect(a != AuditChain.hash(previous: a, content: "abc"))
    }

    @Test func intactChainVerifies() {
        let rows = Self.chain(5)
        #expect(AuditChain.verify(rows) == nil)
        #expect(AuditChain.verify(rows, head: rows[4].hash) == nil)
        #expect(AuditChain.verify(rows, head: rows[2].hash.uppercased()) == nil)
        #expect(AuditChain.verify([]) == nil)
    }

    @Test func editedContentIsNamed() {
        var rows = Self.chain(5)
        rows[2].content = rows[2].content.replacingOccurrences(of: "CT1", with: "CT2")
        #expect(AuditChain.verify(rows) == .contentAltered(id: 3))
    }

    @Test func editedColumnIsNamed() {
        var rows = Self.chain(5)
        rows[1].action = "query"
        #expect(AuditChain.verify(rows) == .contentAltered(id: 2))
    }

    @Test func rehashedEditBreaksTheNextLink() {
        var rows = Self.chain(5)
        rows[2].content = rows[2].content.replacingOccurrences(of: "CT1", with: "CT2")
        rows[2].hash = AuditChain.hash(previous: rows[2].previousHash, content: rows[2].content)
        #expect(AuditChain.verify(rows) == .brokenLink(id: 4, previousID: 3))
    }

    @Test func deletedMiddleRowIsNamed() {
        var rows = Self.chain(5)
        rows.remove(at: 2)
        #expect(AuditChain.verify(rows) == .brokenLink(id: 4, previousID: 2))
    }

    @Test func deletedFirstRowIsNamed() {
        let rows = Array(Self.chain(3).dropFirst())
        #expect(AuditChain.verify(rows) == .brokenLink(id: 2, previousID: nil))
    }

    @Test func reorderedRowsAreNamed() {
        var rows = Self.chain(5)
        rows.swapAt(1, 2)
        (rows[1].id, rows[2].id) = (2, 3)
        #expect(AuditChain.verify(rows) == .brokenLink(id: 2, previousID: 1))
    }

    @Test func cutTailIsSeenAgainstTheHead() {
        let rows = Self.chain(5)
        let head = rows[4].hash
        let cut = Array(rows.prefix(3))
        #expect(AuditChain.verify(cut) == nil)
        #expect(AuditChain.verify(cut, head: head) == .headNotFound(head: head, lastID: 3))
    }

    @Test func pagedVerifierCountsAndKnowsTheHead() {
        let rows = Self.chain(4)
        var verifier = AuditChain.Verifier(head: rows[3].hash)
        for row in rows { #expect(verifier.check(row) == nil) }
        #expect(verifier.finish() == nil)
        #expect(verifier.rows == 4)
        #expect(verifier.lastHash == rows[3].hash)
        #expect(verifier.lastID == 4)
    }
}
