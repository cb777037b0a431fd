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
                      EchoCommand.self, SendCommand.self]
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
        commandName: "spool", abstract: "Read the spool database.", subcommands: [List.self])

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
            let root = try spool ?? options.load().spool.path
            let absoluteRoot = URL(fileURLWithPath: root).standardizedFileURL.path
            let database: SpoolDatabase
            do {
                database = try SpoolDatabase(readOnlyPath: "\(absoluteRoot)/\(Spool.databaseFileName)")
            } catch let error as SpoolError {
                FileHandle.standardError.write(Data("passerellectl: \(error)\n".utf8))
                throw ExitCode(66)
            }
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
