import Audit
import Foundation
import Spool

/// The patient access report of `passerellectl audit export` (docs/audit.md).
enum AuditExport {
    struct Row: Encodable {
        var seq: Int64
        var at: String
        var action: String
        var outcome: String
        var outcomeDescription: String?
        var aeTitle: String?
        var address: String?
        var userName: String?
        var destination: String?
        var studies: [String]
        var details: [String: String]
        var hash: String

        enum CodingKeys: String, CodingKey {
            case seq, at, action, outcome, aeTitle = "ae_title", address, userName = "user_name", destination,
                 studies, details, hash, outcomeDescription = "outcome_description"
        }
    }

    /// "2026-12-01" or an RFC 3339 date-time → the stored `at` form it compares with.
    static func sinceBound(_ text: String) -> String? {
        if text.count == 10, text.split(separator: "-").count == 3,
           AuditChain.parseTimestamp(text + "T00:00:00Z") != nil { return text }
        return AuditChain.parseTimestamp(text).map(AuditChain.timestamp)
    }

    /// The rows whose content names the patient, or a study one of those names. The content
    /// decides, not the index: a row the index links by mistake is left out.
    static func rows(_ records: [AuditRecord], patient: AuditEvent.Patient) -> [Row] {
        let decoded = records.compactMap { record in AuditChain.event(fromCanonicalContent: record.content).map { (record, $0) } }
        let studies = Set(decoded.filter { $0.1.patients.contains(patient) }.flatMap(\.1.studies))
        return decoded.filter { _, event in
            event.patients.contains(patient) || (event.patients.isEmpty && !studies.isDisjoint(with: event.studies))
        }.map { record, event in
            Row(seq: record.id, at: record.at, action: event.action.rawValue, outcome: outcomeName(event.outcome),
                outcomeDescription: event.outcomeDescription, aeTitle: event.actor.aeTitle,
                address: event.actor.address, userName: event.actor.userName, destination: event.destination,
                studies: event.studies.filter { studies.contains($0) }, details: event.details, hash: record.hash)
        }
    }

    static func outcomeName(_ outcome: AuditEvent.Outcome) -> String {
        switch outcome {
        case .success: "success"
        case .minorFailure: "minor failure"
        case .seriousFailure: "serious failure"
        case .majorFailure: "major failure"
        }
    }

    static let header = ["seq", "at", "action", "outcome", "outcome_description", "ae_title", "address", "user_name",
                         "destination", "studies", "details", "hash"]

    static func csv(_ rows: [Row]) -> String {
        var out = header.joined(separator: ",") + "\r\n"
        for row in rows {
            let details = row.details.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")
            let fields = [String(row.seq), row.at, row.action, row.outcome, row.outcomeDescription ?? "",
                          row.aeTitle ?? "", row.address ?? "", row.userName ?? "", row.destination ?? "",
                          row.studies.joined(separator: " "), details, row.hash]
            out += fields.map(quote).joined(separator: ",") + "\r\n"
        }
        return out
    }

    /// RFC 4180: quoted when it holds a comma, a quote or a line break; quotes doubled.
    static func quote(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func json(_ rows: [Row]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(rows), as: UTF8.self)
    }
}
