import Foundation
import GRDB

/// A report instance cancelled by the RIS (ORU^R01 with OBR-25 = X), to remove from one shared
/// destination (docs/hl7.md): like a late opposition withdraws a study, the community stops
/// showing it; the archive keeps it (the medico-legal record of what was reported).
public struct ReportWithdrawal: Sendable, Equatable {
    public var id: Int64
    public var sopInstanceUID: String
    public var seriesInstanceUID: String
    public var studyInstanceUID: String
    public var destination: String
    public var state: ReportWithdrawalState
    public var attempts: Int
    public var nextAt: Date
    public var lastError: String?
    /// The cancelling message (MSH-10).
    public var controlID: String
}

public enum ReportWithdrawalState: String, Sendable, Codable {
    case pending, withdrawn
}

extension SpoolDatabase {
    static func migrateReportWithdrawal(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE report_withdrawal (
                id INTEGER PRIMARY KEY,
                sop_instance_uid TEXT NOT NULL,
                series_instance_uid TEXT NOT NULL,
                study_instance_uid TEXT NOT NULL,
                destination TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('pending', 'withdrawn')),
                attempts INTEGER NOT NULL DEFAULT 0,
                next_at REAL NOT NULL,
                last_error TEXT,
                control_id TEXT NOT NULL,
                created_at REAL NOT NULL,
                done_at REAL,
                UNIQUE (sop_instance_uid, destination)
            );
            CREATE INDEX report_withdrawal_due ON report_withdrawal (state, next_at);
            """)
    }

    /// Cancels the reports of one order (the first and its corrections), in one transaction:
    /// their instances no longer leave for `sharedDestinations`, a withdrawal is queued at each
    /// of them, and the message is `applied` with `detail(instances cancelled)`. Returns the
    /// instances cancelled.
    @discardableResult
    public func cancelHL7Reports(studyInstanceUID: String?, fillerOrderNumber: String,
                                 sharedDestinations: [String], messageID: Int64, controlID: String,
                                 detail: (_ instances: [String]) -> String, now: Date = Date()) throws -> [String] {
        try writer.write { db in
            let time = now.timeIntervalSince1970
            var condition = "filler_order_number = ?"
            var arguments: StatementArguments = [fillerOrderNumber]
            if let studyInstanceUID {
                condition += " AND study_instance_uid = ?"
                arguments += [studyInstanceUID]
            }
            let reports = try Row.fetchAll(db, sql: """
                SELECT sop_instance_uid, series_instance_uid, study_instance_uid FROM hl7_report WHERE \(condition)
                """, arguments: arguments)
            for report in reports {
                let sop: String = report[0]
                for destination in sharedDestinations {
                    try db.execute(sql: """
                        DELETE FROM delivery WHERE destination = ? AND state IN ('queued', 'retry', 'rejected')
                          AND instance_ref IN (SELECT id FROM instance WHERE sop_instance_uid = ?)
                        """, arguments: [destination, sop])
                    try db.execute(sql: """
                        INSERT INTO report_withdrawal (sop_instance_uid, series_instance_uid, study_instance_uid, destination,
                            state, next_at, control_id, created_at)
                        VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)
                        ON CONFLICT (sop_instance_uid, destination) DO NOTHING
                        """, arguments: [sop, report[1], report[2], destination, time, controlID, time])
                }
            }
            let instances = reports.map { $0[0] as String }
            try db.execute(sql: "UPDATE hl7_message SET state = 'applied', detail = ?, updated_at = ? WHERE id = ?",
                           arguments: [detail(instances), time, messageID])
            return instances
        }
    }

    public func dueReportWithdrawals(now: Date = Date(), limit: Int = 16) throws -> [ReportWithdrawal] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT \(Self.reportWithdrawalColumns) FROM report_withdrawal
                WHERE state = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?
                """, arguments: [now.timeIntervalSince1970, limit]).map(Self.reportWithdrawal)
        }
    }

    public func recordReportWithdrawn(_ withdrawal: ReportWithdrawal, now: Date = Date()) throws {
        try writer.write { db in
            try db.execute(sql: """
                UPDATE report_withdrawal SET state = 'withdrawn', last_error = NULL, done_at = ? WHERE id = ?
                """, arguments: [now.timeIntervalSince1970, withdrawal.id])
        }
    }

    /// `failed`: counted as an attempt (else a wait: chunks in flight, a person to act).
    public func postponeReportWithdrawal(_ withdrawal: ReportWithdrawal, until: Date, error: String?,
                                         failed: Bool = true) throws {
        try writeBookkeeping { db in
            try db.execute(sql: """
                UPDATE report_withdrawal SET next_at = ?, attempts = attempts + ?, last_error = COALESCE(?, last_error)
                WHERE id = ? AND state = 'pending'
                """, arguments: [until.timeIntervalSince1970, failed ? 1 : 0, error, withdrawal.id])
        }
    }

    /// When the next report withdrawal is due.
    public func nextReportWithdrawal() throws -> Date? {
        try writer.read { db in
            try Double.fetchOne(db, sql: "SELECT MIN(next_at) FROM report_withdrawal WHERE state = 'pending'")
                .map(Date.init(timeIntervalSince1970:))
        }
    }

    private static let reportWithdrawalColumns = """
        id, sop_instance_uid, series_instance_uid, study_instance_uid, destination, state, attempts, next_at,
        last_error, control_id
        """

    private static func reportWithdrawal(_ row: Row) -> ReportWithdrawal {
        ReportWithdrawal(id: row[0], sopInstanceUID: row[1], seriesInstanceUID: row[2], studyInstanceUID: row[3],
                         destination: row[4], state: ReportWithdrawalState(rawValue: row[5]) ?? .pending,
                         attempts: row[6], nextAt: Date(timeIntervalSince1970: row[7]), lastError: row[8],
                         controlID: row[9])
    }
}
