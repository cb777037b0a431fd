import ArgumentParser
import Foundation
import Gateway

/// Which studies: one patient (ID with its issuer), one INS, or one study.
struct SubjectOptions: ParsableArguments {
    @Option(help: "Patient ID (IPP), qualified by --issuer.")
    var patient: String?
    @Option(help: "Issuer of the patient ID (default: [site] issuer_of_patient_id).")
    var issuer: String?
    @Option(help: "INS (national health identifier) carried in the Other Patient IDs Sequence.")
    var ins: String?
    @Option(help: "Study Instance UID.")
    var study: String?

    func validate() throws {
        guard [patient, ins, study].compactMap({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --patient, --ins, --study")
        }
        if issuer != nil && patient == nil { throw ValidationError("--issuer goes with --patient") }
    }

    var selector: RightsRequest.Selector {
        .init(patient: patient, issuer: issuer, ins: ins, study: study)
    }
}

struct OppositionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "opposition", abstract: "A patient's opposition to sharing with the regional community.",
        subcommands: [Add.self, Remove.self, List.self, Done.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register an opposition: shared destinations stop receiving the studies; those already shared are withdrawn.")
        @OptionGroup var options: SocketOptions
        @OptionGroup var subject: SubjectOptions
        @Option(help: "Who registers it (traced).")
        var by: String
        @Option(help: "Why (e.g. the request's reference).")
        var reason: String?

        func run() throws {
            let answer = try options.client().send(.rights(.addOpposition(subject.selector, by: by, reason: reason)))
            let result = answer["result"] as? [String: Any] ?? [:]
            let withdrawals = result["withdrawals"] as? [[String: Any]] ?? []
            print("opposition registered: \(result["studies_in_spool"] ?? 0) study(ies) in the spool covered, "
                  + "\(withdrawals.count) withdrawal(s) queued; shared destinations are being searched for older studies")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Lift an opposition (kept in the history): the studies are shared again.")
        @OptionGroup var options: SocketOptions
        @OptionGroup var subject: SubjectOptions
        @Option(help: "Who lifts it (traced).")
        var by: String
        @Option(help: "Why.")
        var reason: String?

        func run() throws {
            let answer = try options.client().send(.rights(.removeOpposition(subject.selector, by: by, reason: reason)))
            let result = answer["result"] as? [String: Any] ?? [:]
            let withdrawals = result["withdrawals"] as? [[String: Any]] ?? []
            let resend = withdrawals.filter { $0["state"] as? String == "needs_resend" }
            print("opposition removed: \(result["studies_in_spool"] ?? 0) study(ies) in the spool shared again")
            for withdrawal in resend {
                print("  needs resend: \(withdrawal["study_uid"] ?? "") to \(withdrawal["destination"] ?? "") "
                      + "(no longer in the spool)")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every opposition (active and lifted) and the withdrawals.")
        @OptionGroup var options: SocketOptions
        @Flag(help: "Print the JSON answer.")
        var json = false

        func run() throws {
            let answer = try options.client().send(.rights(.listOppositions))
            let result = answer["result"] as? [String: Any] ?? [:]
            if json {
                print(try JSONText.pretty(result))
                return
            }
            let oppositions = result["oppositions"] as? [[String: Any]] ?? []
            for o in oppositions {
                let subject = o["scope"] as? String == "patient" ? "patient \(o["value"] ?? "") (\(o["issuer"] ?? ""))"
                    : "\(o["scope"] ?? "") \(o["value"] ?? "")"
                var line = "\(o["removed_at"] is String ? "lifted " : "ACTIVE ") \(subject)  added \(o["added_at"] ?? "") by \(o["added_by"] ?? "")"
                if let reason = o["reason"] as? String { line += " (\(reason))" }
                if let removed = o["removed_at"] as? String { line += "  lifted \(removed) by \(o["removed_by"] ?? "")" }
                print(line)
            }
            print("\(oppositions.count) opposition(s)")
            for w in result["withdrawals"] as? [[String: Any]] ?? [] {
                var line = "withdrawal \(w["state"] ?? "") \(w["study_uid"] ?? "") from \(w["destination"] ?? "")"
                if let error = w["last_error"] as? String, w["state"] as? String == "pending" { line += "  (\(error))" }
                print(line)
            }
        }
    }

    struct Done: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Report a manual withdrawal done; Passerelle confirms by QIDO-RS that the study is gone.")
        @OptionGroup var options: SocketOptions
        @Argument(help: "Study Instance UID.")
        var study: String
        @Option(help: "Who did it (traced).")
        var by: String

        func run() throws {
            _ = try options.client().send(.rights(.withdrawalDone(study: study, by: by)))
            print("recorded; \(study) counts as withdrawn once QIDO-RS no longer finds it (see status)")
        }
    }
}

struct ConsentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consent", abstract: "Consent records ([consent] default = \"hold\").", subcommands: [Informed.self])

    struct Informed: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The patient was informed: held studies go to the shared destinations.")
        @OptionGroup var options: SocketOptions
        @Option(help: "Patient ID (IPP), qualified by --issuer.")
        var patient: String?
        @Option(help: "Issuer of the patient ID (default: [site] issuer_of_patient_id).")
        var issuer: String?
        @Option(help: "Study Instance UID.")
        var study: String?
        @Option(help: "Who records it (traced).")
        var by: String

        func validate() throws {
            guard (patient == nil) != (study == nil) else { throw ValidationError("give --patient or --study") }
        }

        func run() throws {
            let answer = try options.client().send(.rights(.consentInformed(
                .init(patient: patient, issuer: issuer, study: study), by: by)))
            let released = (answer["result"] as? [String: Any])?["released"] as? [String] ?? []
            print("recorded; \(released.count) study(ies) released to the shared destinations")
        }
    }
}

struct ShareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "share",
        abstract: "Share a held study at once for a life-threatening emergency (never over an opposition).")
    @OptionGroup var options: SocketOptions
    @Flag(help: "Required: this is an emergency share, traced as such.")
    var emergency = false
    @Argument(help: "Study Instance UID.")
    var study: String
    @Option(help: "Why (traced).")
    var reason: String
    @Option(help: "Who decides (traced).")
    var by: String

    func validate() throws {
        guard emergency else { throw ValidationError("only emergency shares exist: add --emergency") }
    }

    func run() throws {
        _ = try options.client().send(.rights(.emergencyShare(study: study, by: by, reason: reason)))
        print("\(study) shared (emergency, traced)")
    }
}
