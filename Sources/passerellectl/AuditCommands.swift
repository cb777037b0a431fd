import ArgumentParser
import Audit
import Foundation
import Gateway
import Spool

/// `passerellectl audit`: the audit trail, read from the spool database read-only (the daemon
/// may run or not).
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Check and export the audit trail.", subcommands: [Verify.self, Export.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the hash chain: exit 0 when intact, 1 naming the first bad row.",
            discussion: "With --head, the given hash (from the journal or a repository message) must be a row of "
                + "the chain, else rows after it were cut.")

        @OptionGroup var options: ConfigOptions
        @Option(help: "Spool directory (overrides the configuration's [spool] path).")
        var spool: String?
        @Option(help: "A head hash recorded earlier (journal, audit repository).")
        var head: String?

        func run() throws {
            let database = try SpoolCommand.open(spool, options).database
            var verifier = AuditChain.Verifier(head: head)
            var after: Int64 = 0
            while true {
                let page = try database.auditRecords(after: after, limit: 1000)
                guard let last = page.last else { break }
                for record in page {
                    let row = AuditChain.Row(id: record.id, content: record.content, previousHash: record.previousHash,
                                             hash: record.hash, action: record.action, outcome: record.outcome)
                    if let broken = verifier.check(row) { fail(broken) }
                }
                after = last.id
            }
            if let broken = verifier.finish() { fail(broken) }
            print("audit chain intact: \(verifier.rows) rows"
                  + (verifier.lastHash.map { ", head \($0) (row \(verifier.lastID ?? 0))" } ?? ""))
        }

        private func fail(_ broken: AuditChain.Break) -> Never {
            FileHandle.standardError.write(Data("audit chain broken: \(broken)\n".utf8))
            Foundation.exit(1)
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the acts that touched a patient's studies (who, what, when, outcome).")

        enum Format: String, ExpressibleByArgument, CaseIterable { case csv, json }

        @OptionGroup var options: ConfigOptions
        @Option(help: "Spool directory (overrides the configuration's [spool] path).")
        var spool: String?
        @Option(help: "The patient ID.")
        var patient: String
        @Option(help: "Its issuer (default: [site] issuer_of_patient_id).")
        var issuer: String?
        @Option(help: "Only acts at or after this date (YYYY-MM-DD or RFC 3339).")
        var since: String?
        @Option(help: "csv or json.")
        var format: Format = .csv

        func run() throws {
            guard let issuer = try issuer ?? options.load().site.issuerOfPatientID else {
                throw ValidationError("no --issuer and no [site] issuer_of_patient_id in the configuration")
            }
            if let since, AuditExport.sinceBound(since) == nil {
                throw ValidationError("--since \(since): write YYYY-MM-DD or an RFC 3339 date-time")
            }
            let database = try SpoolCommand.open(spool, options).database
            let records = try database.auditRecords(patientID: patient, issuer: issuer,
                                                    since: since.flatMap(AuditExport.sinceBound))
            let rows = AuditExport.rows(records, patient: AuditEvent.Patient(id: patient, issuer: issuer))
            switch format {
            case .csv: print(AuditExport.csv(rows), terminator: "")
            case .json: print(try AuditExport.json(rows))
            }
        }
    }
}
