import Foundation

/// One act of the audit trail (docs/audit.md): who did what to which patient's studies, when,
/// and how it ended. Gateway code builds these; ``AuditChain`` links them and
/// ``DICOMAuditMessage`` tells them to an ATNA repository.
public struct AuditEvent: Sendable, Equatable, Codable {
    public enum Action: String, Sendable, Codable, CaseIterable {
        case applicationStart, applicationStop, configurationReload
        case associationAccepted, associationRejected
        case instancesReceived, query, retrieve, upload, verification
        case withdrawal, oppositionAdded, oppositionRemoved, consentInformed, emergencyShare, purge
        /// A report made from an HL7 ORU^R01 (docs/hl7.md); an identity update from the PAS refused,
        /// applied (the identity in force changed), and carried to a destination (verified there).
        case reportCreated, identityUpdateRefused, identityUpdated, identityCorrected
    }

    /// EventOutcomeIndicator (PS3.15 A.5.1, RFC 3881 §5.1.4).
    public enum Outcome: Int, Sendable, Codable {
        case success = 0, minorFailure = 4, seriousFailure = 8, majorFailure = 12
    }

    /// Who acted. A person through `passerellectl --by NAME` is `userName` with address "local".
    public struct Actor: Sendable, Equatable, Codable {
        public var aeTitle: String?
        public var address: String?
        /// The user identity negotiated on the association (PS3.7 D.3.3.7): never a passcode.
        public var userName: String?

        public init(aeTitle: String? = nil, address: String? = nil, userName: String? = nil) {
            self.aeTitle = aeTitle
            self.address = address
            self.userName = userName
        }
    }

    /// A patient ID qualified by its issuer (DESIGN.md: no ID without its issuer).
    public struct Patient: Sendable, Equatable, Codable, Hashable {
        public var id: String
        public var issuer: String

        public init(id: String, issuer: String) {
            self.id = id
            self.issuer = issuer
        }
    }

    public var action: Action
    public var at: Date
    public var outcome: Outcome
    public var outcomeDescription: String?
    public var actor: Actor
    /// The other party: called AE title, destination name, move destination.
    public var destination: String?
    public var patients: [Patient]
    public var studies: [String]
    /// Count, level, keys, reason…
    public var details: [String: String]

    public init(action: Action, at: Date = Date(), outcome: Outcome = .success, outcomeDescription: String? = nil,
                actor: Actor, destination: String? = nil, patients: [Patient] = [], studies: [String] = [],
                details: [String: String] = [:]) {
        self.action = action
        self.at = at
        self.outcome = outcome
        self.outcomeDescription = outcomeDescription
        self.actor = actor
        self.destination = destination
        self.patients = patients
        self.studies = studies
        self.details = details
    }
}

extension AuditEvent.Actor {
    /// The gateway itself (start, stop, upload, purge…).
    public static let gateway = AuditEvent.Actor()
}
