import ArgumentParser
import Foundation
import Gateway
import Spool

/// `passerellectl hl7`: the messages the MLLP listener received, from the spool database
/// (read-only: it answers whether the daemon runs or not).
struct HL7Command: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hl7", abstract: "HL7 v2 messages received from the RIS and the PAS (docs/hl7.md).",
        subcommands: [Status.self, List.self, Show.self, Corrections.self])

    struct Location: ParsableArguments {
        @OptionGroup var options: ConfigOptions
        @Option(help: "Spool directory (overrides the configuration's [spool] path).")
        var spool: String?

        func database() throws -> SpoolDatabase { try SpoolCommand.open(spool, options).database }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Messages per state, and the listener's settings.")
        @OptionGroup var location: Location
        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            let configuration = try location.options.load()
            let counts = try location.database().hl7Counts()
            let states = HL7MessageState.allCases.map { ($0.rawValue, counts[$0] ?? 0) }
            if json {
                var object: [String: Any] = ["messages": Dictionary(uniqueKeysWithValues: states)]
                object["listener"] = configuration.hl7.map { ["bind": $0.bind, "port": $0.port] as [String: Any] } ?? NSNull()
                print(try JSONText.pretty(object))
                return
            }
            if let hl7 = configuration.hl7 {
                let senders = hl7.allowedSenders.isEmpty ? "any" : hl7.allowedSenders.map(\.description).joined(separator: ", ")
                print("listener  \(hl7.bind):\(hl7.port)\(hl7.tls == nil ? "" : " (TLS)")  senders: \(senders)")
            } else {
                print("listener  off (no [hl7] section)")
            }
            print(states.map { "\($0.0) \($0.1)" }.joined(separator: "  "))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The latest messages, newest first.")
        @OptionGroup var location: Location
        @Flag(help: "Only the messages refused or whose application failed.")
        var failed = false
        @Option(help: "How many.")
        var limit = 50
        @Flag(help: "Print a JSON array instead of a table.")
        var json = false

        func run() throws {
            let rows = try location.database().hl7Messages(states: failed ? [.refused, .failed] : nil, limit: limit)
            if json {
                print(try JSONText.pretty(rows.map(HL7Command.object)))
                return
            }
            let formatter = ISO8601DateFormatter()
            for row in rows {
                var line = "\(formatter.string(from: row.receivedAt))  \(row.state.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0))"
                    + "  \(row.messageType.padding(toLength: 7, withPad: " ", startingAt: 0))  \(row.controlID)"
                    + "  from \(row.sendingApplication)^\(row.sendingFacility) (\(row.peer))"
                if !row.detail.isEmpty { line += "\n    \(row.detail)" }
                print(line)
            }
        }
    }

    struct Corrections: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Identity corrections of delivered studies (ADT): pending, failing or verified at each destination.")
        @OptionGroup var location: Location
        @Flag(help: "Only those not verified yet.")
        var pending = false
        @Option(help: "How many.")
        var limit = 50
        @Flag(help: "Print a JSON array instead of a table.")
        var json = false

        func run() throws {
            let database = try location.database()
            let rows = try database.identityCorrections(state: pending ? .pending : nil, limit: limit)
            let sweeps = try database.pendingIdentitySweeps()
            if json {
                let formatter = ISO8601DateFormatter()
                print(try JSONText.pretty(rows.map { row -> [String: Any] in
                    var object: [String: Any] = [
                        "study_instance_uid": row.studyInstanceUID, "destination": row.destination, "issuer": row.issuer,
                        "patient_id": row.patientID, "state": row.state.rawValue, "attempts": row.attempts,
                        "control_id": row.controlID, "created_at": formatter.string(from: row.createdAt),
                        "updated_at": formatter.string(from: row.updatedAt),
                    ]
                    object["last_error"] = row.lastError ?? NSNull()
                    if row.state == .pending { object["next_attempt"] = formatter.string(from: row.nextAt) }
                    return object
                }))
                return
            }
            let formatter = ISO8601DateFormatter()
            for row in rows {
                var line = "\(formatter.string(from: row.updatedAt))  \(row.state.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0))"
                    + "  \(row.destination)  study \(row.studyInstanceUID)  patient \(row.patientID) of \(row.issuer)"
                    + "  (\(row.controlID))"
                if row.state == .pending, row.attempts > 0 {
                    line += "\n    failing, attempt \(row.attempts), next \(formatter.string(from: row.nextAt)): \(row.lastError ?? "")"
                }
                print(line)
            }
            for (sweep, error) in sweeps {
                print("searching \(sweep.destination) for patient \(sweep.patientID) of \(sweep.issuer) (\(sweep.controlID))"
                      + (error.map { ", attempt \(sweep.attempts): \($0)" } ?? ""))
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One message by its control ID (MSH-10): its state, the message and the ACK sent.")
        @OptionGroup var location: Location
        @Argument(help: "The message control ID (MSH-10).")
        var controlID: String
        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            let rows = try location.database().hl7Messages(controlID: controlID)
            guard !rows.isEmpty else {
                FileHandle.standardError.write(Data("passerellectl: no HL7 message with control ID \(controlID)\n".utf8))
                throw ExitCode(1)
            }
            if json {
                print(try JSONText.pretty(rows.map { row -> [String: Any] in
                    var object = HL7Command.object(row)
                    object["message"] = HL7Command.text(row.message)
                    object["ack"] = HL7Command.text(row.acknowledgment)
                    return object
                }))
                return
            }
            let formatter = ISO8601DateFormatter()
            for row in rows {
                print("""
                    \(row.messageType) \(row.controlID) from \(row.sendingApplication)^\(row.sendingFacility) (\(row.peer)), HL7 \(row.version)
                    received  \(formatter.string(from: row.receivedAt))
                    state     \(row.state.rawValue)\(row.detail.isEmpty ? "" : ": \(row.detail)")
                    journal   \(row.journalSegment.map { "\($0) at \(row.journalOffset ?? 0)" } ?? "-")
                    message:
                    \(HL7Command.text(row.message))
                    ack:
                    \(HL7Command.text(row.acknowledgment))
                    """)
            }
        }
    }

    /// Segments one per line; bytes that are not UTF-8 (an 8859/1 message) shown as Latin-1.
    static func text(_ bytes: [UInt8]) -> String {
        let text = String(validating: bytes, as: UTF8.self) ?? String(bytes.map { Character(Unicode.Scalar($0)) })
        return text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\r" || $0 == "\n" })
            .joined(separator: "\n")
    }

    static func object(_ row: HL7MessageRow) -> [String: Any] {
        [
            "id": row.id, "received_at": ISO8601DateFormatter().string(from: row.receivedAt), "state": row.state.rawValue,
            "detail": row.detail, "message_type": row.messageType, "control_id": row.controlID,
            "sending_application": row.sendingApplication, "sending_facility": row.sendingFacility,
            "version": row.version, "peer": row.peer, "bytes": row.message.count,
            "journal_segment": row.journalSegment ?? NSNull(), "journal_offset": row.journalOffset ?? NSNull(),
        ]
    }
}
