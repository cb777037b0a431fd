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
            throw StatusError(code: "unknown_command",
                              message: "unknown command \"\(command)\"; known: status, queue, metrics, retry, pause, resume, urgent")
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
