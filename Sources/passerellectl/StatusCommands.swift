import ArgumentParser
import Foundation
import Gateway

/// Options to reach a running daemon: its configuration tells where the status socket is.
struct SocketOptions: ParsableArguments {
    @OptionGroup var config: ConfigOptions
    @Option(help: "Status socket path (overrides the configuration).")
    var socket: String?

    func client() throws -> StatusClient {
        StatusClient(path: try socket ?? config.load().statusSocketPath)
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show the daemon's state.")
    @OptionGroup var options: SocketOptions
    @Flag(help: "Print the JSON answer.")
    var json = false

    func run() throws {
        let answer = try options.client().send(.status)
        if json {
            print(try JSONText.pretty(answer["result"] ?? [:]))
            return
        }
        guard let result = answer["result"] as? [String: Any] else { return }
        print(StatusText.summary(result))
    }
}

struct QueueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "queue", abstract: "List the studies in the spool.")
    @OptionGroup var options: SocketOptions
    @Flag(help: "Print the JSON answer.")
    var json = false

    func run() throws {
        let answer = try options.client().send(.queue)
        let studies = answer["result"] as? [[String: Any]] ?? []
        if json {
            print(try JSONText.pretty(studies))
            return
        }
        for study in studies {
            let modalities = (study["modalities"] as? [String] ?? []).joined(separator: "/")
            let deliveries = (study["destinations"] as? [String: [String: Any]] ?? [:]).sorted { $0.key < $1.key }
                .map { "\($0.key) \($0.value["state"] ?? "")" }
            print("\(study["study_instance_uid"] ?? "")  \(modalities)  patient \(study["patient_id"] ?? "")"
                  + "  \(study["instances"] ?? 0) instances  \(study["bytes"] ?? 0) bytes  last \(study["last_received_at"] ?? "")"
                  + ((study["urgent"] as? Bool ?? false) ? "  URGENT" : "")
                  + (deliveries.isEmpty ? "" : "  " + deliveries.joined(separator: ", ")))
        }
        print("\(studies.count) study(ies)")
    }
}

struct MetricsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "metrics", abstract: "Print the Prometheus metrics.")
    @OptionGroup var options: SocketOptions

    func run() throws {
        let answer = try options.client().send(.metrics)
        print((answer["result"] as? [String: Any])?["text"] as? String ?? "", terminator: "")
    }
}

enum JSONText {
    static func pretty(_ value: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: value,
                                                     options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]),
               as: UTF8.self)
    }
}

enum StatusText {
    /// The readable `status`: listeners, associations, spool, disk.
    static func summary(_ result: [String: Any]) -> String {
        var lines: [String] = []
        lines.append("passerelled \(result["version"] ?? "?"), up \(duration(result["uptime_seconds"] as? Int ?? 0))")
        for listener in result["listening"] as? [[String: Any]] ?? [] {
            let ports = [listener["port"].map { ":\($0)" }, listener["tls_port"].map { ":\($0) (TLS)" }].compactMap { $0 }
            lines.append("listening: AE \(listener["ae_title"] ?? "") on \(listener["bind"] ?? "")\(ports.joined(separator: ", "))")
        }
        if let associations = result["associations"] as? [String: Any] {
            lines.append("associations: \(associations["active"] ?? 0) active (max \(associations["maximum"] ?? 0))")
        }
        if let spool = result["spool"] as? [String: Any] {
            let states = spool["states"] as? [String: [String: Any]] ?? [:]
            let current = states["current"]
            lines.append("spool: \(spool["path"] ?? "") — \(spool["studies"] ?? 0) studies, "
                         + "\(current?["instances"] ?? 0) instances (\(bytes(current?["bytes"] as? Int ?? 0)))")
            if let superseded = states["superseded"] {
                lines.append("       \(superseded["instances"] ?? 0) superseded revisions kept")
            }
            if let journal = spool["journal"] as? [String: Any] {
                lines.append("       journal: \(journal["segments"] ?? 0) segments (\(bytes(journal["bytes"] as? Int ?? 0))), "
                             + "\(journal["ready"] ?? 0) ready")
            }
            let free = spool["free_bytes"] as? Int ?? 0
            let minimum = spool["minimum_free_bytes"] as? Int ?? 0
            let warning = (spool["below_minimum_free"] as? Bool ?? false) ? "  ** BELOW min_free: C-STORE refused (A700) **" : ""
            lines.append("disk: \(bytes(free)) free, min_free \(bytes(minimum))\(warning)")
        }
        let destinations = result["destinations"] as? [[String: Any]] ?? []
        if destinations.isEmpty { lines.append("destinations: none (studies wait in the spool)") }
        for destination in destinations {
            lines.append("destination \(destination["name"] ?? ""): \(destination["health"] ?? "")  \(destination["url"] ?? "")")
            let instances = destination["instances"] as? [String: [String: Any]] ?? [:]
            let counts = ["queued", "in_flight", "retry", "stored", "rejected"].map { state in
                "\(instances[state]?["instances"] as? Int ?? 0) \(state.replacingOccurrences(of: "_", with: " "))"
            }
            lines.append("  instances: " + counts.joined(separator: ", "))
            let studies = destination["studies"] as? [String: Int] ?? [:]
            lines.append("  studies: " + ["receiving", "uploading", "verifying", "verified", "rejected", "withheld"]
                .map { "\(studies[$0] ?? 0) \($0)" }.joined(separator: ", "))
            if let success = destination["last_success_at"] as? String { lines.append("  last success: \(success)") }
            if let error = destination["last_error"] as? [String: Any] {
                lines.append("  last error: \(error["at"] ?? "") \(error["message"] ?? "")")
            }
            if let next = destination["next_retry_at"] as? String { lines.append("  next retry: \(next)") }
            if let expiry = destination["client_certificate_expires_at"] as? String {
                lines.append("  client certificate expires: \(expiry)")
            }
        }
        for community in result["communities"] as? [[String: Any]] ?? [] {
            let requests = community["requests"] as? [String: Int] ?? [:]
            lines.append("community \(community["ae_title"] ?? ""): \(community["health"] ?? "")  "
                         + "\(community["destination"] ?? "") \(community["url"] ?? "")")
            lines.append("  requests: " + ["FIND", "MOVE", "GET"].map { "\(requests[$0] ?? 0) \($0)" }.joined(separator: ", ")
                         + "; \(community["instances_sent"] ?? 0) instances sent; cache "
                         + "\(community["cached_instances"] ?? 0) instances (\(bytes(community["cached_bytes"] as? Int ?? 0)))")
            if let success = community["last_success_at"] as? String { lines.append("  last success: \(success)") }
            if let error = community["last_error"] as? [String: Any] {
                lines.append("  last error: \(error["at"] ?? "") \(error["message"] ?? "")")
            }
        }
        if let rights = result["rights"] as? [String: Any] {
            let shared = rights["shared_destinations"] as? [String] ?? []
            lines.append("rights: consent \(rights["consent_default"] ?? ""), \(rights["active_oppositions"] ?? 0) active "
                         + "opposition(s), shared destinations: \(shared.isEmpty ? "none" : shared.joined(separator: ", "))")
            let withheld = rights["withheld"] as? [String: [String: Int]] ?? [:]
            let withdrawals = rights["withdrawals"] as? [String: [String: Int]] ?? [:]
            for name in shared {
                lines.append("  \(name): \(withheld[name]?["opposition"] ?? 0) studies withheld (opposition), "
                             + "\(withheld[name]?["consent"] ?? 0) held (consent), "
                             + "\(withdrawals[name]?["pending"] ?? 0) withdrawal(s) pending, "
                             + "\(withdrawals[name]?["needs_resend"] ?? 0) to send again")
            }
            for alarm in rights["alarms"] as? [[String: Any]] ?? [] {
                lines.append("  ** \(alarm["kind"] ?? ""): \(alarm["study_uid"] ?? "") at \(alarm["destination"] ?? "") "
                             + "since \(alarm["since"] ?? ""): \(alarm["message"] ?? "") **")
            }
        }
        if let audit = result["audit"] as? [String: Any] {
            lines.append("audit: " + ((audit["enabled"] as? Bool ?? true) ? "" : "DISABLED  ")
                         + "\(audit["repository"] as? String ?? "no repository")  queue \(audit["queue_depth"] ?? 0)  "
                         + "head \(audit["head"] as? String ?? "-") (row \(audit["head_seq"] ?? 0))")
            if let error = audit["last_error"] as? [String: Any] {
                lines.append("  last error: \(error["at"] ?? "") \(error["message"] ?? "")")
            }
        }
        return lines.joined(separator: "\n")
    }

    static func bytes(_ count: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) B" : String(format: "%.1f %@", value, units[unit])
    }

    static func duration(_ seconds: Int) -> String {
        seconds >= 86_400 ? "\(seconds / 86_400)d \(seconds % 86_400 / 3600)h"
            : seconds >= 3600 ? "\(seconds / 3600)h \(seconds % 3600 / 60)m" : "\(seconds / 60)m \(seconds % 60)s"
    }
}
