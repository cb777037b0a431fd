import Foundation
import GRDB

/// Which studies a right applies to: a patient (ID qualified by its issuer), an INS, one study.
public enum RightsSubject: Sendable, Equatable, Hashable, CustomStringConvertible {
    case patient(id: String, issuer: String)
    case ins(String)
    case study(String)

    var scope: String {
        switch self {
        case .patient: "patient"
        case .ins: "ins"
        case .study: "study"
        }
    }

    var value: String {
        switch self {
        case .patient(let id, _): id
        case .ins(let ins): ins
        case .study(let uid): uid
        }
    }

    var issuer: String {
        if case .patient(_, let issuer) = self { return issuer }
        return ""
    }

    /// Withdrawals this subject covers (by what a withdrawal row records).
    var withdrawalFilter: String {
        switch self {
        case .patient: "patient_id = ? AND issuer = ?"
        case .ins: "(' ' || ins || ' ') LIKE ('% ' || ? || ' %')"
        case .study: "study_uid = ?"
        }
    }

    var withdrawalArguments: StatementArguments {
        switch self {
        case .patient(let id, let issuer): [id, issuer]
        case .ins(let ins): [ins]
        case .study(let uid): [uid]
        }
    }

    public var description: String {
        switch self {
        case .patient(let id, let issuer): "patient \(id) (\(issuer))"
        case .ins(let ins): "INS \(ins)"
        case .study(let uid): "study \(uid)"
        }
    }
}

/// What the sharing check needs: the shared destinations, whether studies wait for the patient
/// to be informed (`[consent] default = "hold"`), and the issuer of IDs received without one.
public struct SharingRules: Sendable, Equatable {
    public var sharedDestinations: Set<String>
    public var holdUntilInformed: Bool
    public var siteIssuer: String

    public init(sharedDestinations: Set<String>, holdUntilInformed: Bool, siteIssuer: String) {
        self.sharedDestinations = sharedDestinations
        self.holdUntilInformed = holdUntilInformed
        self.siteIssuer = siteIssuer
    }
}

/// Why a study is withheld from the shared destinations.
public enum SharingBlock: String, Sendable, Codable {
    case opposition
    /// `[consent] default = "hold"` and the patient is not known to be informed.
    case consent
}

public enum ConsentBasis: String, Sendable, Codable {
    case informed
    case emergency
}

public struct Opposition: Sendable, Equatable, Codable, FetchableRecord, TableRecord {
    public static let databaseTableName = "opposition"
    public var id: Int64
    public var scope: String
    public var value: String
    public var issuer: String
    public var addedAt: Date
    public var addedBy: String
    public var reason: String?
    public var removedAt: Date?
    public var removedBy: String?
    public var removalReason: String?

    public init(row: Row) throws {
        id = row["id"]
        scope = row["scope"]
        value = row["value"]
        issuer = row["issuer"]
        addedAt = Date(timeIntervalSince1970: row["added_at"])
        addedBy = row["added_by"]
        reason = row["reason"]
        removedAt = (row["removed_at"] as Double?).map(Date.init(timeIntervalSince1970:))
        removedBy = row["removed_by"]
        removalReason = row["removal_reason"]
    }

    public var subject: RightsSubject {
        switch scope {
        case "patient": .patient(id: value, issuer: issuer)
        case "ins": .ins(value)
        default: .study(value)
        }
    }

    static func fetchActive(_ subject: RightsSubject, db: Database) throws -> Opposition? {
        try fetchOne(db, sql: """
            SELECT * FROM opposition WHERE scope = ? AND value = ? AND issuer = ? AND removed_at IS NULL
            """, arguments: [subject.scope, subject.value, subject.issuer])
    }
}

public enum WithdrawalState: String, Sendable, Codable {
    case pending
    /// QIDO-RS at the destination no longer finds the study.
    case withdrawn
    /// The opposition was lifted before the withdrawal ran.
    case cancelled
    /// The opposition was lifted after the withdrawal; the spool no longer holds the study.
    case needsResend = "needs_resend"
    /// The opposition was lifted after the withdrawal; the spool sends the study again.
    case reshared
}

public struct Withdrawal: Sendable, Equatable, Codable, FetchableRecord, TableRecord {
    public static let databaseTableName = "withdrawal"
    public var id: Int64
    public var studyUID: String
    public var destination: String
    public var patientID: String?
    public var issuer: String?
    /// The INS values the study carried when the withdrawal was queued.
    public var ins: [String]
    public var state: WithdrawalState
    public var attempts: Int
    public var nextAt: Date
    public var lastError: String?
    public var requestedAt: Date
    public var requestedBy: String
    public var confirmedBy: String?
    public var doneAt: Date?

    public init(row: Row) throws {
        id = row["id"]
        studyUID = row["study_uid"]
        destination = row["destination"]
        patientID = row["patient_id"]
        issuer = row["issuer"]
        ins = (row["ins"] as String).split(separator: " ").map(String.init)
        state = WithdrawalState(rawValue: row["state"]) ?? .pending
        attempts = row["attempts"]
        nextAt = Date(timeIntervalSince1970: row["next_at"])
        lastError = row["last_error"]
        requestedAt = Date(timeIntervalSince1970: row["requested_at"])
        requestedBy = row["requested_by"]
        confirmedBy = row["confirmed_by"]
        doneAt = (row["done_at"] as Double?).map(Date.init(timeIntervalSince1970:))
    }
}

public struct OppositionChange: Sendable, Equatable {
    public var opposition: Opposition
    /// Studies of the spool the opposition covers.
    public var studiesInSpool: Int
    /// Withdrawals queued (add) or changed (remove: cancelled, reshared, needs_resend).
    public var withdrawals: [Withdrawal]
}

public struct ConsentChange: Sendable, Equatable {
    public var studiesInSpool: Int
    /// Study UIDs released to the shared destinations.
    public var released: [String]
}

public struct RightsTotals: Sendable, Equatable {
    public var activeOppositions = 0
    /// destination → reason → studies
    public var withheld: [String: [String: Int]] = [:]
    /// destination → state → withdrawals
    public var withdrawals: [String: [String: Int]] = [:]
    public var pendingSweeps = 0
}

public enum RightsError: Error, Equatable, CustomStringConvertible {
    case alreadyOpposed(RightsSubject)
    case notOpposed(RightsSubject)
    case opposed(RightsSubject)
    case unknownStudy(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case .alreadyOpposed(let s): "an opposition for \(s) is already registered"
        case .notOpposed(let s): "no active opposition for \(s)"
        case .opposed(let s): "\(s) is covered by an opposition: an emergency never overrides it"
        case .unknownStudy(let uid): "no study \(uid) in the spool"
        case .unsupported(let why): why
        }
    }
}
