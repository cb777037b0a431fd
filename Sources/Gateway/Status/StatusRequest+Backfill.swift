import Foundation

/// The migration's requests (docs/migration.md, docs/status-socket.md).
public enum BackfillRequest: Equatable, Sendable {
    public struct Selection: Equatable, Sendable {
        public var source: String
        public var since: String?
        public var until: String?
        public var modalities: [String]

        public init(source: String, since: String? = nil, until: String? = nil, modalities: [String] = []) {
            self.source = source
            self.since = since
            self.until = until
            self.modalities = modalities
        }
    }

    case start(Selection, windows: [String]?)
    case status
    case pause(job: Int64?)
    case resume(job: Int64?)
    case cancel(job: Int64)
    /// `backfill plan` (kind "plan") or `reconcile` (kind "reconcile"): returns a survey ID.
    case survey(kind: String, Selection)
    case surveyResult(id: Int)
    /// `reconcile --fix`: the studies a finished reconciliation found missing or incomplete at
    /// the archive, queued as a job.
    case fix(survey: Int)

    static let commands = ["backfill_start", "backfill_status", "backfill_pause", "backfill_resume", "backfill_cancel",
                           "backfill_survey", "backfill_survey_result", "backfill_fix"]

    static func parse(command: String, _ object: [String: Any]) throws(StatusError) -> BackfillRequest? {
        guard commands.contains(command) else { return nil }
        func text(_ key: String) -> String? {
            (object[key] as? String).map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
        }
        func job() -> Int64? { (object["job"] as? NSNumber)?.int64Value }
        func selection() throws(StatusError) -> Selection {
            guard let source = text("source") else {
                throw StatusError(code: "bad_request", message: "\(command) needs \"source\": the PACS's AE title")
            }
            return Selection(source: source, since: text("since"), until: text("until"),
                             modalities: object["modalities"] as? [String] ?? [])
        }
        switch command {
        case "backfill_start": return .start(try selection(), windows: object["windows"] as? [String])
        case "backfill_status": return .status
        case "backfill_pause": return .pause(job: job())
        case "backfill_resume": return .resume(job: job())
        case "backfill_cancel":
            guard let job = job() else { throw StatusError(code: "bad_request", message: "backfill_cancel needs \"job\"") }
            return .cancel(job: job)
        case "backfill_survey":
            guard let kind = text("kind"), kind == "plan" || kind == "reconcile" else {
                throw StatusError(code: "bad_request", message: "backfill_survey needs \"kind\": \"plan\" or \"reconcile\"")
            }
            return .survey(kind: kind, try selection())
        case "backfill_survey_result":
            guard let id = (object["id"] as? NSNumber)?.intValue else {
                throw StatusError(code: "bad_request", message: "backfill_survey_result needs \"id\"")
            }
            return .surveyResult(id: id)
        default:
            guard let id = (object["survey"] as? NSNumber)?.intValue else {
                throw StatusError(code: "bad_request", message: "backfill_fix needs \"survey\"")
            }
            return .fix(survey: id)
        }
    }

    var object: [String: Any] {
        func selection(_ s: Selection) -> [String: Any] {
            var object: [String: Any] = ["source": s.source, "modalities": s.modalities]
            object["since"] = s.since
            object["until"] = s.until
            return object
        }
        var object: [String: Any]
        switch self {
        case .start(let s, let windows):
            object = selection(s)
            object["command"] = "backfill_start"
            object["windows"] = windows
        case .status: object = ["command": "backfill_status"]
        case .pause(let job): object = ["command": "backfill_pause"]; object["job"] = job
        case .resume(let job): object = ["command": "backfill_resume"]; object["job"] = job
        case .cancel(let job): object = ["command": "backfill_cancel", "job": job]
        case .survey(let kind, let s):
            object = selection(s)
            object["command"] = "backfill_survey"
            object["kind"] = kind
        case .surveyResult(let id): object = ["command": "backfill_survey_result", "id": id]
        case .fix(let id): object = ["command": "backfill_fix", "survey": id]
        }
        return object
    }
}
