import ArgumentParser
import Foundation
import Gateway

struct RetryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry", abstract: "Queue again the retries and rejected instances of a study (or of all).")
    @OptionGroup var options: SocketOptions
    @Argument(help: "Study Instance UID.")
    var study: String?
    @Flag(help: "Every study.")
    var all = false

    func validate() throws {
        guard (study == nil) != !all else { throw ValidationError("give a STUDY_UID or --all") }
    }

    func run() throws {
        let answer = try options.client().send(.retry(study: all ? nil : study))
        let count = (answer["result"] as? [String: Any])?["requeued"] as? Int ?? 0
        print("\(count) instance(s) queued again")
    }
}

struct PauseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause", abstract: "Stop sending to a destination (kept across restarts) until resumed.")
    @OptionGroup var options: SocketOptions
    @Argument(help: "Destination name, as in [destinations.NAME].")
    var destination: String

    func run() throws {
        _ = try options.client().send(.pause(destination: destination))
        print("\(destination) paused")
    }
}

struct ResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Resume sending to a destination.")
    @OptionGroup var options: SocketOptions
    @Argument(help: "Destination name, as in [destinations.NAME].")
    var destination: String

    func run() throws {
        _ = try options.client().send(.resume(destination: destination))
        print("\(destination) resumed")
    }
}

struct UrgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "urgent", abstract: "Send a study before the rest of the queue.")
    @OptionGroup var options: SocketOptions
    @Argument(help: "Study Instance UID.")
    var study: String

    func run() throws {
        _ = try options.client().send(.urgent(study: study))
        print("\(study) is urgent")
    }
}
