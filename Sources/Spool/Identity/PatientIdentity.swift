import Foundation
import GRDB

/// The identity the site's patient administration system (PAS) gives a patient now, as HL7
/// identity updates left it (docs/hl7.md): what an instance of that patient carries when it
/// leaves, and what a destination must show once corrected. Keyed by patient ID *and* issuer:
/// a correction never crosses issuers.
public struct PatientIdentity: Sendable, Equatable {
    public var issuer: String
    /// The ID now in force: after a change of identifier (A47) or a merge (A40), the new one.
    public var patientID: String
    /// DICOM PN (`FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX`); nil: the instance's own value stays.
    public var name: String?
    /// DICOM DA (YYYYMMDD); nil: unchanged.
    public var birthDate: String?
    /// M, F or O; nil: unchanged.
    public var sex: String?
    /// The INS, only when the PAS qualified the identity (PID-32 = VALI).
    public var ins: INSValue?
    /// Whether the PAS said anything about the INS: then an instance's INS is replaced by
    /// `ins` (removed when nil: an identity no longer qualified loses it).
    public var insKnown: Bool

    public struct INSValue: Sendable, Equatable {
        public var value: String
        /// 1.2.250.1.213.1.4.8 (INS-NIR), .9 (INS-NIA), .10/.11 (test identities).
        public var assigningAuthority: String
        public init(value: String, assigningAuthority: String) {
            self.value = value
            self.assigningAuthority = assigningAuthority
        }
    }

    public init(issuer: String, patientID: String, name: String? = nil, birthDate: String? = nil, sex: String? = nil,
                ins: INSValue? = nil, insKnown: Bool = false) {
        self.issuer = issuer
        self.patientID = patientID
        self.name = name
        self.birthDate = birthDate
        self.sex = sex
        self.ins = ins
        self.insKnown = insKnown
    }
}

/// One applied identity update: the patient's identity in the PAS now and, for a change of
/// identifier or a merge, the prior ID it replaces (same issuer).
public struct IdentityUpdateRecord: Sendable, Equatable {
    public var identity: PatientIdentity
    public var priorPatientID: String?
    /// `ADT^A08`, …, for the rows and the log.
    public var event: String
    public var controlID: String

    public init(identity: PatientIdentity, priorPatientID: String?, event: String, controlID: String) {
        self.identity = identity
        self.priorPatientID = priorPatientID
        self.event = event
        self.controlID = controlID
    }

    /// The patient IDs whose studies change: the prior one (its studies take the new ID) and
    /// the patient's own (its demographics).
    public var affectedPatientIDs: [String] {
        [priorPatientID, identity.patientID].compactMap { $0 }.reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
    }
}

/// Where the correction of one study at one destination stands. `pending`: to do (or
/// failing, `attempts` and `lastError` say so); `verified`: QIDO-RS there shows the identity.
public enum IdentityCorrectionState: String, Sendable, Codable, CaseIterable {
    case pending, verified
}

/// The correction of a study already delivered to a destination.
public struct IdentityCorrection: Sendable, Equatable, Codable {
    public var id: Int64
    public var studyInstanceUID: String
    public var destination: String
    public var issuer: String
    /// The ID the study was found under there (its identity now is this one's, resolved).
    public var patientID: String
    public var state: IdentityCorrectionState
    public var attempts: Int
    public var nextAt: Date
    public var lastError: String?
    /// The HL7 message (MSH-10) that asked for it last.
    public var controlID: String
    public var createdAt: Date
    public var updatedAt: Date
}

/// A search of one destination for the studies of a corrected patient, the spool's purged
/// ones included.
public struct IdentitySweep: Sendable, Equatable {
    public var destination: String
    public var issuer: String
    public var patientID: String
    public var controlID: String
    public var attempts: Int
}

extension SpoolDatabase {
    static func migrateIdentity(_ db: Database) throws {
        try db.execute(sql: """
            -- The PAS's identity per patient (issuer, ID): demographics, the ID replacing it.
            CREATE TABLE patient_identity (
                issuer TEXT NOT NULL,
                patient_id TEXT NOT NULL,
                replaced_by TEXT,
                patient_name TEXT,
                birth_date TEXT,
                sex TEXT,
                ins TEXT,
                ins_authority TEXT,
                ins_known INTEGER NOT NULL DEFAULT 0,
                control_id TEXT NOT NULL,
                updated_at REAL NOT NULL,
                PRIMARY KEY (issuer, patient_id)
            ) WITHOUT ROWID;
            CREATE TABLE identity_sweep (
                destination TEXT NOT NULL,
                issuer TEXT NOT NULL,
                patient_id TEXT NOT NULL,
                control_id TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_at REAL NOT NULL,
                last_error TEXT,
                PRIMARY KEY (destination, issuer, patient_id)
            ) WITHOUT ROWID;
            CREATE TABLE identity_correction (
                id INTEGER PRIMARY KEY,
                study_instance_uid TEXT NOT NULL,
                destination TEXT NOT NULL,
                issuer TEXT NOT NULL,
                patient_id TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('pending', 'verified')),
                attempts INTEGER NOT NULL DEFAULT 0,
                next_at REAL NOT NULL,
                last_error TEXT,
                control_id TEXT NOT NULL,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                UNIQUE (study_instance_uid, destination)
            );
            CREATE INDEX identity_correction_due ON identity_correction (state, next_at);
            """)
    }
}
