import Foundation

/// A request on the status socket: one JSON object per line (docs/status-socket.md).
///
/// ```
/// {"command":"status"}            {"command":"queue"}            {"command":"metrics"}
/// {"command":"retry","study":"1.2.3"}   {"command":"retry","all":true}
/// {"command":"pause","destination":"archive"}   {"command":"resume","destination":"archive"}
/// {"command":"urgent","study":"1.2.3"}
/// ```
public enum StatusRequest: Equatable, Sendable {
    case status
    case queue
    case metrics
    /// `nil` retries every study.
    case retry(study: String?)
    case pause(destination: String)
    case resume(destination: String)
    case urgent(study: String)
    /// Patient rights (docs/rights.md).
    case rights(RightsRequest)
    /// The migration of the site's archive (docs/migration.md).
    case backfill(BackfillRequest)

    public static let maximumLineLength = 64 * 1024

    public static func parse(_ line: String) throws(StatusError) -> StatusRequest {
        guard let data = line.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw StatusError(code: "bad_request", message: "expected one JSON object per line, e.g. {\"command\":\"status\"}")
        }
        guard let command = object["command"] as? String else {
            throw StatusError(code: "bad_request", message: "missing \"command\"")
        }
        switch command {
        case "status": return .status
        case "queue": return .queue
        case "metrics": return .metrics
        case "retry":
            if object["all"] as? Bool == true { return .retry(study: nil) }
            guard let study = object["study"] as? String, !study.isEmpty else {
                throw StatusError(code: "bad_request", message: "retry needs \"study\" or \"all\": true")
            }
            return .retry(study: study)
        case "urgent":
            guard let study = object["study"] as? String, !study.isEmpty else {
                throw StatusError(code: "bad_request", message: "urgent needs \"study\"")
            }
            return .urgent(study: study)
        case "pause", "resume":
            guard let destination = object["destination"] as? String, !destination.isEmpty else {
                throw StatusError(code: "bad_request", message: "\(command) needs \"destination\"")
            }
            return command == "pause" ? .pause(destination: destination) : .resume(destination: destination)
        default:
            if let rights = try RightsRequest.parse(command: command, object) { return .rights(rights) }
            if let backfill = try BackfillRequest.parse(command: command, object) { return .backfill(backfill) }
            throw StatusError(code: "unknown_command",
                              message: "unknown command \"\(command)\"; known: status, queue, metrics, retry, pause, resume, urgent, "
                                  + (RightsRequest.commands + BackfillRequest.commands).joined(separator: ", "))
        }
    }

    /// The JSON line a client sends for this request.
    public var line: String {
        let object: [String: Any]
        switch self {
        case .status: object = ["command": "status"]
        case .queue: object = ["command": "queue"]
        case .metrics: object = ["command": "metrics"]
        case .retry(let study): object = study.map { ["command": "retry", "study": $0] } ?? ["command": "retry", "all": true]
        case .pause(let destination): object = ["command": "pause", "destination": destination]
        case .resume(let destination): object = ["command": "resume", "destination": destination]
        case .urgent(let study): object = ["command": "urgent", "study": study]
        case .rights(let request): object = request.object
        case .backfill(let request): object = request.object
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

/// An error answered on the status socket: `{"ok":false,"error":{"code":…,"message":…}}`.
public struct StatusError: Error, Equatable, Sendable, Codable, CustomStringConvertible {
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

/// The correspondent's requests. Who acts (`by`) is mandatory for every change: it is traced.
public enum RightsRequest: Equatable, Sendable {
    /// Exactly one of patient (with its issuer, default the site's), INS, study.
    public struct Selector: Equatable, Sendable {
        public var patient: String?
        public var issuer: String?
        public var ins: String?
        public var study: String?

        public init(patient: String? = nil, issuer: String? = nil, ins: String? = nil, study: String? = nil) {
            self.patient = patient
            self.issuer = issuer
            self.ins = ins
            self.study = study
        }
    }

    case addOpposition(Selector, by: String, reason: String?)
    case removeOpposition(Selector, by: String, reason: String?)
    case listOppositions
    case withdrawalDone(study: String, by: String)
    case consentInformed(Selector, by: String)
    case emergencyShare(study: String, by: String, reason: String)

    static let commands = ["opposition_add", "opposition_remove", "opposition_list", "opposition_done",
                           "consent_informed", "share_emergency"]

    static func parse(command: String, _ object: [String: Any]) throws(StatusError) -> RightsRequest? {
        func text(_ key: String) -> String? {
            (object[key] as? String).map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
        }
        func by() throws(StatusError) -> String {
            guard let by = text("by") else {
                throw StatusError(code: "bad_request", message: "\(command) needs \"by\": who acts is traced")
            }
            return by
        }
        let selector = Selector(patient: text("patient"), issuer: text("issuer"), ins: text("ins"), study: text("study"))
        switch command {
        case "opposition_add": return .addOpposition(selector, by: try by(), reason: text("reason"))
        case "opposition_remove": return .removeOpposition(selector, by: try by(), reason: text("reason"))
        case "opposition_list": return .listOppositions
        case "opposition_done":
            guard let study = selector.study else { throw StatusError(code: "bad_request", message: "opposition_done needs \"study\"") }
            return .withdrawalDone(study: study, by: try by())
        case "consent_informed": return .consentInformed(selector, by: try by())
        case "share_emergency":
            guard let study = selector.study, let reason = text("reason") else {
                throw StatusError(code: "bad_request", message: "share_emergency needs \"study\" and \"reason\"")
            }
            return .emergencyShare(study: study, by: try by(), reason: reason)
        default: return nil
        }
    }

    var object: [String: Any] {
        func selector(_ s: Selector) -> [String: Any] {
            var object: [String: Any] = [:]
            object["patient"] = s.patient
            object["issuer"] = s.issuer
            object["ins"] = s.ins
            object["study"] = s.study
            return object
        }
        var object: [String: Any]
        switch self {
        case .addOpposition(let s, let by, let reason), .removeOpposition(let s, let by, let reason):
            object = selector(s)
            object["by"] = by
            object["reason"] = reason
            if case .addOpposition = self { object["command"] = "opposition_add" } else { object["command"] = "opposition_remove" }
        case .listOppositions:
            object = ["command": "opposition_list"]
        case .withdrawalDone(let study, let by):
            object = ["command": "opposition_done", "study": study, "by": by]
        case .consentInformed(let s, let by):
            object = selector(s)
            object["command"] = "consent_informed"
            object["by"] = by
        case .emergencyShare(let study, let by, let reason):
            object = ["command": "share_emergency", "study": study, "by": by, "reason": reason]
        }
        return object
    }
}
