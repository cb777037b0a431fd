#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation

/// The hash chain of the audit trail.
///
/// Each row holds its canonical content and `hash = SHA-256(previousHash ‖ content)`, where
/// `previousHash` is the 32 raw bytes of the previous row's hash (32 zero bytes for the first
/// row) and `content` the UTF-8 bytes of the canonical text. Hashes are written as 64
/// lowercase hex digits. Editing a row breaks its hash; deleting or moving one breaks the
/// next row's link; cutting the tail is seen against a head hash kept elsewhere (journal,
/// repository messages).
public enum AuditChain {
    /// The `previousHash` of the first row.
    public static let genesis = String(repeating: "0", count: 64)

    /// The version tag of the canonical form below (the `v` key).
    public static let canonicalVersion = 1

    /// Canonical content, version 1: the event as compact JSON (RFC 8259), object keys sorted
    /// by their UTF-8 bytes, no insignificant whitespace, slashes not escaped, absent values
    /// omitted, `at` as RFC 3339 UTC with milliseconds, and `"v":1` added. Verification never
    /// re-encodes: it hashes the stored text, so this form only has to be stable for the
    /// rows it writes.
    public static func canonicalContent(_ event: AuditEvent) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(timestamp(date))
        }
        // Encoding a value of plain strings, numbers and dates cannot fail.
        let data = (try? encoder.encode(Versioned(v: canonicalVersion, event: event))) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// Reads canonical content back (export, repository messages); nil if it is not one.
    public static func event(fromCanonicalContent content: String) -> AuditEvent? {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = parseTimestamp(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad date"))
            }
            return date
        }
        return try? decoder.decode(Versioned.self, from: Data(content.utf8)).event
    }

    /// SHA-256(previousHash ‖ content), hex. A malformed `previousHash` is hashed as 32 zero
    /// bytes, so it can never match a well-formed chain.
    public static func hash(previous previousHash: String, content: String) -> String {
        var hasher = SHA256()
        hasher.update(data: bytes(fromHex: previousHash) ?? [UInt8](repeating: 0, count: 32))
        hasher.update(data: Data(content.utf8))
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(64)
        for byte in hasher.finalize() {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// One stored row as the verifier sees it.
    public struct Row: Sendable, Equatable {
        public var id: Int64
        public var content: String
        public var previousHash: String
        public var hash: String
        /// The row's indexed columns, checked against its content when present.
        public var action: String?
        public var outcome: Int?

        public init(id: Int64, content: String, previousHash: String, hash: String, action: String? = nil,
                    outcome: Int? = nil) {
            self.id = id
            self.content = content
            self.previousHash = previousHash
            self.hash = hash
            self.action = action
            self.outcome = outcome
        }
    }

    /// Why a row breaks the chain.
    public enum Break: Sendable, Equatable, CustomStringConvertible {
        /// The content (or a column) was changed after the row was written.
        case contentAltered(id: Int64)
        /// The row does not follow the one before it: a row before it was deleted, or rows were reordered.
        case brokenLink(id: Int64, previousID: Int64?)
        /// Row ids are not consecutive.
        case gap(id: Int64, previousID: Int64?)
        /// The given head hash is no row of the chain: rows after it were cut (or it is not this chain's).
        case headNotFound(head: String, lastID: Int64?)

        public var row: Int64? {
            switch self {
            case .contentAltered(let id), .brokenLink(let id, _), .gap(let id, _): id
            case .headNotFound: nil
            }
        }

        public var description: String {
            switch self {
            case .contentAltered(let id): "row \(id): content altered (its hash does not match)"
            case .brokenLink(let id, let previous):
                "row \(id): does not follow row \(previous.map(String.init) ?? "(none)") (a row was deleted or moved)"
            case .gap(let id, let previous):
                "row \(id): follows row \(previous.map(String.init) ?? "(none)") (rows are missing)"
            case .headNotFound(let head, let last):
                "head \(head) is not in the chain (last row \(last.map(String.init) ?? "none")): the tail was cut"
            }
        }
    }

    /// Checks rows in id order; returns the first break, nil for an intact chain. With
    /// `head`, that hash must be one of the rows' hashes (else the tail was cut).
    public static func verify(_ rows: some Sequence<Row>, head: String? = nil) -> Break? {
        var verifier = Verifier(head: head)
        for row in rows {
            if let broken = verifier.check(row) { return broken }
        }
        return verifier.finish()
    }

    /// The same check one row at a time, for chains read in pages.
    public struct Verifier: Sendable {
        private var expectedPrevious = AuditChain.genesis
        private var previousID: Int64?
        private let head: String?
        private var headSeen = false
        public private(set) var rows = 0
        public var lastHash: String? { previousID == nil ? nil : expectedPrevious }
        public var lastID: Int64? { previousID }

        /// `head`: a hash kept elsewhere that must be a row of the chain.
        public init(head: String? = nil) {
            self.head = head?.lowercased()
        }

        public mutating func check(_ row: Row) -> Break? {
            if let previousID, row.id != previousID + 1 {
                // A deleted middle row shows as both a gap and a broken link: the link says more.
                if row.previousHash != expectedPrevious { return .brokenLink(id: row.id, previousID: previousID) }
                return .gap(id: row.id, previousID: previousID)
            }
            if AuditChain.hash(previous: row.previousHash, content: row.content) != row.hash {
                return .contentAltered(id: row.id)
            }
            if row.previousHash != expectedPrevious {
                return .brokenLink(id: row.id, previousID: previousID)
            }
            if row.action != nil || row.outcome != nil {
                guard let event = AuditChain.event(fromCanonicalContent: row.content),
                      row.action.map({ $0 == event.action.rawValue }) ?? true,
                      row.outcome.map({ $0 == event.outcome.rawValue }) ?? true
                else { return .contentAltered(id: row.id) }
            }
            if row.hash == head { headSeen = true }
            expectedPrevious = row.hash
            previousID = row.id
            rows += 1
            return nil
        }

        /// After the last row: the head, if given, must have been seen.
        public func finish() -> Break? {
            guard let head, !headSeen else { return nil }
            return .headNotFound(head: head, lastID: previousID)
        }
    }

    // MARK: Helpers

    private struct Versioned: Codable {
        var v: Int
        var event: AuditEvent

        enum CodingKeys: String, CodingKey { case v }

        init(v: Int, event: AuditEvent) {
            self.v = v
            self.event = event
        }

        // The event's keys sit beside "v" in one flat object.
        init(from decoder: any Decoder) throws {
            v = try decoder.container(keyedBy: CodingKeys.self).decode(Int.self, forKey: .v)
            event = try AuditEvent(from: decoder)
        }

        func encode(to encoder: any Encoder) throws {
            try event.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(v, forKey: .v)
        }
    }

    /// RFC 3339, UTC, milliseconds: `2026-12-06T23:21:30.123Z`, rounded to the millisecond
    /// exactly as ISO8601DateFormatter does (from the date's own reference-date value). By hand
    /// with `gmtime_r`: every audit row takes two, and a formatter made per call costs ~100 µs
    /// of ICU set-up.
    public static func timestamp(_ date: Date) -> String {
        let total = Int64(((date.timeIntervalSinceReferenceDate + 978_307_200) * 1000).rounded())
        let whole = total >= 0 ? total / 1000 : (total - 999) / 1000
        let milliseconds = Int(total - whole * 1000)
        var seconds = time_t(whole)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return pad(Int(parts.tm_year) + 1900, 4) + "-" + pad(Int(parts.tm_mon) + 1, 2) + "-" + pad(Int(parts.tm_mday), 2)
            + "T" + pad(Int(parts.tm_hour), 2) + ":" + pad(Int(parts.tm_min), 2) + ":" + pad(Int(parts.tm_sec), 2)
            + "." + pad(milliseconds, 3) + "Z"
    }

    public static func parseTimestamp(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    static func bytes(fromHex hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        var index = 0
        while index < 64 {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}
