import ArgumentParser
import Foundation
import Gateway

#if canImport(Glibc)
import Glibc
#endif

/// Which part of the PACS: `--from`, `--since`, `--until`, `--modalities`.
struct PACSSelection: ParsableArguments {
    @Option(help: "The PACS: the title of an [[ae]] entry.")
    var from: String
    @Option(help: "First study date (2024-01-31; default 1993-01-01).")
    var since: String?
    @Option(help: "Last study date (default today).")
    var until: String?
    @Option(help: "Only these modalities, comma-separated (CT,MR…).")
    var modalities: String?

    var request: BackfillRequest.Selection {
        .init(source: from, since: since, until: until,
              modalities: modalities?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } ?? [])
    }
}

/// `passerellectl backfill`: the migration of the site's archive (docs/migration.md).
struct BackfillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill", abstract: "Migrate the PACS's existing studies to the archive (docs/migration.md).",
        subcommands: [Plan.self, Start.self, Status.self, Pause.self, Resume.self, Cancel.self])

    struct Plan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Walk the PACS by C-FIND only and print what a start would fetch; nothing is moved.")
        @OptionGroup var options: SocketOptions
        @OptionGroup var selection: PACSSelection
        @Flag(help: "Print the JSON result.")
        var json = false

        func run() throws {
            let result = try Survey.run(.survey(kind: "plan", selection.request), options: options)
            if json {
                print(try JSONText.pretty(result))
                return
            }
            print("\(result["studies"] ?? 0) studies, \(result["instances"] ?? 0) instances at \(selection.from); "
                  + "\(result["already_archived"] ?? 0) studies already archived; \(result["queries"] ?? 0) C-FIND queries")
            print("year  modality  studies  instances  already archived")
            for group in result["by_year_modality"] as? [[String: Any]] ?? [] {
                let modality = (group["modality"] as? String).flatMap { $0.isEmpty ? nil : $0 } ?? "?"
                print("\(group["year"] ?? "")  \(modality.padding(toLength: 8, withPad: " ", startingAt: 0))  "
                      + "\(pad(group["studies"]))  \(pad(group["instances"], 9))  \(group["already_archived"] ?? 0)")
            }
            let rate = result["last_job_instances_per_second"] as? Double
            if let seconds = result["estimated_seconds"] as? Double {
                print("estimated duration: \(Duration.text(seconds)) (the configured limits"
                      + (rate.map { String(format: ", and the last job's %.0f instances/s", $0) } ?? "") + ")")
            } else {
                print("estimated duration: unknown until a first job has run (no hourly cap configured; "
                      + "bounded by the PACS and the upload link)")
            }
            if let limits = result["limits"] as? String { print("limits: \(limits)") }
            if let error = result["archive_error"] as? String {
                print("the archive could not be asked (already archived counts nothing): \(error)")
            }
        }

        private func pad(_ value: Any?, _ width: Int = 7) -> String {
            "\(value ?? 0)".padding(toLength: width, withPad: " ", startingAt: 0)
        }
    }

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a migration job: every study of the selection retrieved into the spool, then uploaded.")
        @OptionGroup var options: SocketOptions
        @OptionGroup var selection: PACSSelection
        @Option(name: .customLong("window"),
                help: "A time window for this job only, e.g. \"20:00-07:00\" (repeatable; overrides [backfill] schedule).")
        var windows: [String] = []
        @Flag(help: "Print the JSON answer.")
        var json = false

        func run() throws {
            let answer = try options.client().send(.backfill(.start(selection.request,
                                                                    windows: windows.isEmpty ? nil : windows)))
            let result = answer["result"] as? [String: Any] ?? [:]
            if json {
                print(try JSONText.pretty(result))
            } else {
                print("backfill job \(result["job"] ?? "?") started; follow it with: passerellectl backfill status")
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Progress of the migration jobs.")
        @OptionGroup var options: SocketOptions
        @Flag(help: "Print the JSON answer.")
        var json = false
        @Flag(help: "Refresh every two seconds until every job is finished (a progress bar on a terminal).")
        var follow = false

        func run() throws {
            let terminal = isatty(STDOUT_FILENO) == 1
            while true {
                let answer = try options.client().send(.backfill(.status))
                let result = answer["result"] as? [String: Any] ?? [:]
                let jobs = result["jobs"] as? [[String: Any]] ?? []
                if json {
                    print(try JSONText.pretty(result))
                } else {
                    if follow && terminal { print("\u{1B}[H\u{1B}[2J", terminator: "") }
                    if jobs.isEmpty { print("no backfill job") }
                    for job in jobs { print(Self.describe(job, bar: terminal)) }
                }
                let unfinished = jobs.contains { ["running", "paused"].contains($0["state"] as? String ?? "") }
                guard follow, unfinished else { return }
                fflush(nil)
                Thread.sleep(forTimeInterval: 2)
            }
        }

        static func describe(_ job: [String: Any], bar: Bool) -> String {
            let studies = job["studies"] as? [String: Int] ?? [:]
            let total = studies.values.reduce(0, +)
            let finished = (studies["retrieved"] ?? 0) + (studies["already_archived"] ?? 0) + (studies["failed"] ?? 0)
            let daysTotal = job["days_total"] as? Int ?? 0, daysDone = job["days_done"] as? Int ?? 0
            // Until the walk is over, the studies found so far are not all there will be.
            let fraction = total == 0 ? (daysTotal == 0 ? 0 : Double(daysDone) / Double(daysTotal))
                : Double(finished) / Double(total) * (daysTotal == 0 ? 1 : Double(daysDone) / Double(daysTotal))
            var lines: [String] = []
            let modalities = (job["modalities"] as? [String] ?? []).joined(separator: ",")
            lines.append("job \(job["id"] ?? "?")  \(job["kind"] ?? "")  from \(job["source"] ?? "")  "
                         + "\(job["since"] ?? "")…\(job["until"] ?? "")\(modalities.isEmpty ? "" : "  \(modalities)")  "
                         + "\(job["state"] ?? "")")
            let percent = Int((fraction * 100).rounded(.down))
            if bar {
                let width = 30
                let filled = Int(fraction * Double(width))
                lines.append("  [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
                             + "] \(percent)%")
            } else {
                lines.append("  progress \(percent)%")
            }
            lines.append("  days walked \(daysDone)/\(daysTotal)  studies found \(total): retrieved \(studies["retrieved"] ?? 0), "
                         + "already archived \(studies["already_archived"] ?? 0), retrieving \(studies["retrieving"] ?? 0), "
                         + "waiting \(studies["found"] ?? 0), failed \(studies["failed"] ?? 0)")
            lines.append("  instances retrieved \(job["instances_retrieved"] ?? 0) of \(job["instances_expected"] ?? 0) listed")
            if let eta = job["eta_seconds"] as? Int, job["state"] as? String == "running" {
                lines.append("  estimated time to finish \(Duration.text(Double(eta)))")
            }
            if let gate = job["gate"] as? String { lines.append("  waiting: \(gate)") }
            for failure in job["failures"] as? [[String: Any]] ?? [] {
                lines.append("  failed \(failure["study"] ?? ""): \(failure["reason"] ?? "")")
            }
            return lines.joined(separator: "\n")
        }
    }

    struct Pause: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pause migration jobs (all running ones by default).")
        @OptionGroup var options: SocketOptions
        @Option(help: "Only this job.")
        var job: Int64?

        func run() throws {
            let answer = try options.client().send(.backfill(.pause(job: job)))
            let jobs = (answer["result"] as? [String: Any])?["jobs"] as? [Any] ?? []
            print(jobs.isEmpty ? "no running job" : "paused: job \(jobs.map { "\($0)" }.joined(separator: ", "))")
        }
    }

    struct Resume: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resume paused migration jobs (all by default).")
        @OptionGroup var options: SocketOptions
        @Option(help: "Only this job.")
        var job: Int64?

        func run() throws {
            let answer = try options.client().send(.backfill(.resume(job: job)))
            let jobs = (answer["result"] as? [String: Any])?["jobs"] as? [Any] ?? []
            print(jobs.isEmpty ? "no paused job" : "resumed: job \(jobs.map { "\($0)" }.joined(separator: ", "))")
        }
    }

    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a migration job (what it retrieved stays in the spool and is uploaded).")
        @OptionGroup var options: SocketOptions
        @Option(help: "The job.")
        var job: Int64

        func run() throws {
            _ = try options.client().send(.backfill(.cancel(job: job)))
            print("backfill job \(job) cancelled")
        }
    }
}

/// `passerellectl reconcile`: what the PACS holds that the archive does not, and the reverse.
struct ReconcileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Compare the PACS (C-FIND) with the archive (QIDO-RS) and the spool, study by study.")
    @OptionGroup var options: SocketOptions
    @OptionGroup var selection: PACSSelection
    @Option(help: "Write every difference as CSV to this file.")
    var csv: String?
    @Option(help: "Write the full result as JSON to this file (with fix_job after --fix).")
    var json: String?
    @Flag(help: "Queue the missing and incomplete studies as a backfill job.")
    var fix = false

    func run() throws {
        let (id, result) = try Survey.start(.survey(kind: "reconcile", selection.request), options: options)
        let missing = result["missing"] as? [[String: Any]] ?? []
        let differs = result["count_differs"] as? [[String: Any]] ?? []
        let only = result["only_at_archive"] as? [[String: Any]] ?? []
        print("\(result["studies"] ?? 0) studies at \(selection.from): \(result["matching"] ?? 0) match the archive, "
              + "\(missing.count) missing at the archive, \(differs.count) with another instance count; "
              + "\(only.count) only at the archive")
        for entry in missing.prefix(20) {
            let spool = entry["in_spool"] as? Int ?? 0
            print("  missing       \(entry["study"] ?? "")  \(entry["study_date"] ?? "")  \(entry["pacs_instances"] ?? "?") instances"
                  + (spool > 0 ? " (\(spool) in the spool, on their way)" : ""))
        }
        for entry in differs.prefix(20) {
            print("  count differs \(entry["study"] ?? "")  PACS \(entry["pacs_instances"] ?? "?"), archive \(entry["archive_instances"] ?? "?")")
        }
        for entry in only.prefix(20) {
            print("  only archive  \(entry["study"] ?? "")  \(entry["study_date"] ?? "")  \(entry["archive_instances"] ?? "?") instances")
        }
        if missing.count + differs.count + only.count > 60 { print("  … (the files hold every line)") }
        if let csv {
            var lines = ["status,study_instance_uid,study_date,patient_id,pacs_instances,archive_instances,spool_instances"]
            for (status, entries) in [("missing", missing), ("count_differs", differs), ("only_at_archive", only)] {
                for entry in entries {
                    let fields = [status, entry["study"], entry["study_date"], entry["patient_id"], entry["pacs_instances"],
                                  entry["archive_instances"], entry["in_spool"]]
                    lines.append(fields.map { Self.csvField($0) }.joined(separator: ","))
                }
            }
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: csv))
        }
        var written = result
        if fix {
            if missing.count + differs.count > 0 {
                let answer = try options.client().send(.backfill(.fix(survey: id)))
                let job = (answer["result"] as? [String: Any])?["job"] ?? "?"
                written["fix_job"] = job
                print("backfill job \(job) queued for \(missing.count + differs.count) studies; "
                      + "follow it with: passerellectl backfill status")
            } else {
                print("nothing to fix")
            }
        }
        if let json {
            try Data((try JSONText.pretty(written) + "\n").utf8).write(to: URL(fileURLWithPath: json))
        }
    }

    /// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.
    static func csvField(_ value: Any?) -> String {
        guard let value, !(value is NSNull) else { return "" }
        let text = "\(value)"
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// Runs a plan or reconciliation in the daemon and waits for its result, showing progress on
/// a terminal (stderr).
enum Survey {
    static func run(_ request: BackfillRequest, options: SocketOptions) throws -> [String: Any] {
        try start(request, options: options).result
    }

    static func start(_ request: BackfillRequest, options: SocketOptions) throws -> (id: Int, result: [String: Any]) {
        let client = try options.client()
        let answer = try client.send(.backfill(request))
        guard let id = (answer["result"] as? [String: Any])?["survey"] as? Int else {
            throw StatusClient.Failure(description: "unexpected answer from passerelled")
        }
        let terminal = isatty(STDERR_FILENO) == 1
        while true {
            let report = try client.send(.backfill(.surveyResult(id: id)))["result"] as? [String: Any] ?? [:]
            switch report["state"] as? String {
            case "done":
                if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
                return (id, report["result"] as? [String: Any] ?? [:])
            case "failed":
                if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
                throw StatusClient.Failure(description: "\(report["error"] ?? "the survey failed")")
            default:
                if terminal {
                    let line = "\rwalking the PACS: day \(report["days_done"] ?? 0)/\(report["days_total"] ?? 0), "
                        + "\(report["queries"] ?? 0) queries"
                    FileHandle.standardError.write(Data(line.utf8))
                }
                Thread.sleep(forTimeInterval: 0.3)
            }
        }
    }
}

extension Duration {
    /// "3 h 20 min", "45 s".
    static func text(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        if total < 60 { return "\(total) s" }
        if total < 3600 { return "\(total / 60) min" }
        if total < 86400 * 2 { return "\(total / 3600) h \(total % 3600 / 60) min" }
        return "\(total / 86400) days \(total % 86400 / 3600) h"
    }
}
