import ArgumentParser
import Foundation
import Gateway
import Spool

@main
struct PasserelleCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passerellectl",
        abstract: "Inspect and control a Passerelle gateway.",
        version: PasserelleVersion.current,
        subcommands: [StatusCommand.self, QueueCommand.self, RetryCommand.self, PauseCommand.self, ResumeCommand.self,
                      UrgentCommand.self, MetricsCommand.self, SpoolCommand.self, ConfigCommand.self,
                      EchoCommand.self, SendCommand.self, OppositionCommand.self, ConsentCommand.self, ShareCommand.self,
                      AuditCommand.self, HL7Command.self, BackfillCommand.self, ReconcileCommand.self]
    )
}

/// Options naming the configuration, shared by the subcommands that need the spool.
struct ConfigOptions: ParsableArguments {
    @Option(help: "Configuration file (default: /etc/passerelle/passerelle.toml if it exists, else the embedded default).")
    var config: String?

    func load() throws -> GatewayConfiguration {
        if let config { return try ConfigurationLoader.load(path: config) }
        let system = "/etc/passerelle/passerelle.toml"
        if FileManager.default.fileExists(atPath: system) { return try ConfigurationLoader.load(path: system) }
        return .embeddedDefault
    }
}

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Configuration tools.", subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Validate the configuration as passerelled would.")
        @OptionGroup var options: ConfigOptions

        func run() throws {
            do {
                _ = try options.load()
                print("configuration OK")
            } catch let error as ConfigurationError {
                FileHandle.standardError.write(Data("\(error)\n".utf8))
                throw ExitCode(78)
            }
        }
    }
}

struct SpoolCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spool", abstract: "Read the spool database.", subcommands: [List.self, Access.self])

    /// Opens the spool database read-only (the daemon may be running); exit 66 when absent.
    static func open(_ spool: String?, _ options: ConfigOptions) throws -> (database: SpoolDatabase, root: String) {
        let root = try spool ?? options.load().spool.path
        let absoluteRoot = URL(fileURLWithPath: root).standardizedFileURL.path
        do {
            return (try SpoolDatabase(readOnlyPath: "\(absoluteRoot)/\(Spool.databaseFileName)"), absoluteRoot)
        } catch let error as SpoolError {
            FileHandle.standardError.write(Data("passerellectl: \(error)\n".utf8))
            throw ExitCode(66)
        }
    }

    struct Access: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the latest community queries and retrievals (who, what, when, outcome).")

        @OptionGroup var options: ConfigOptions
        @Option(help: "Spool directory (overrides the configuration's [spool] path).")
        var spool: String?
        @Option(help: "How many, newest first.")
        var limit = 50
        @Flag(help: "Print a JSON array instead of a table.")
        var json = false

        func run() throws {
            let accesses = try SpoolCommand.open(spool, options).database.communityAccesses(limit: limit)
            let formatter = ISO8601DateFormatter()
            if json {
                // The columns of community_access, as docs/community.md names them.
                let rows: [[String: Any]] = accesses.map { access in
                    ["at": formatter.string(from: access.at), "calling_ae": access.callingAETitle,
                     "called_ae": access.calledAETitle, "operation": access.operation,
                     "level": access.level ?? NSNull(), "query": access.query, "study_uids": access.studyUIDs,
                     "move_destination": access.moveDestination ?? NSNull(),
                     "status": String(format: "%04X", access.status), "results": access.results,
                     "completed": access.completed, "failed": access.failed, "warnings": access.warnings,
                     "duration_ms": access.durationMilliseconds, "error": access.error ?? NSNull()]
                }
                let data = try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            for access in accesses {
                let status = String(format: "%04X", access.status)
                var line = "\(formatter.string(from: access.at))  \(access.operation) \(access.level ?? "-")  "
                    + "\(access.callingAETitle) → \(access.calledAETitle)  status \(status)"
                if access.operation == "FIND" {
                    line += "  \(access.results) results"
                } else {
                    line += "  \(access.completed)/\(access.results) sent, \(access.failed) failed"
                    if let destination = access.moveDestination { line += " to \(destination)" }
                }
                line += "  \(access.durationMilliseconds) ms\n    \(access.query)"
                if let error = access.error { line += "\n    error: \(error)" }
                print(line)
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List every spooled instance (works whether the daemon runs or not).")

        @OptionGroup var options: ConfigOptions
        @Option(help: "Spool directory (overrides the configuration's [spool] path).")
        var spool: String?
        @Flag(help: "Print a JSON array instead of a table.")
        var json = false
        @Flag(help: "Include superseded revisions.")
        var revisions = false

        func run() throws {
            let (database, absoluteRoot) = try SpoolCommand.open(spool, options)
            let listings = try database.listInstances(includeSuperseded: revisions)
            // A spool written by a version without upload has no delivery table yet.
            let deliveries = (try? database.deliveries()) ?? [:]
            if json {
                print(try InstanceListingFormat.json(listings, deliveries: deliveries, root: absoluteRoot))
            } else {
                print(InstanceListingFormat.table(listings, deliveries: deliveries, root: absoluteRoot), terminator: "")
            }
        }
    }
}
