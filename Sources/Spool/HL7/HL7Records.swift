import Foundation
import GRDB

/// An HL7 v2 message the listener accepted: what its journal record carries and its row
/// indexes. The message is kept as received (bytes in the character set of its MSH-18), with
/// the acknowledgement sent for it, so a resend of the same control ID gets the same ACK.
public struct NewHL7Message: Sendable, Equatable {
    public var sendingApplication: String
    public var sendingFacility: String
    /// MSH-10.
    public var controlID: String
    /// MSH-9 as `CODE^EVENT`, e.g. `ORU^R01`.
    public var messageType: String
    /// MSH-12.
    public var version: String
    /// The peer's address, as the listener saw it.
    public var peer: String
    public var receivedAt: Date
    public var message: [UInt8]
    public var acknowledgment: [UInt8]

    public init(sendingApplication: String, sendingFacility: String, controlID: String, messageType: String,
                version: String, peer: String, receivedAt: Date, message: [UInt8], acknowledgment: [UInt8]) {
        self.sendingApplication = sendingApplication
        self.sendingFacility = sendingFacility
        self.controlID = controlID
        self.messageType = messageType
        self.version = version
        self.peer = peer
        self.receivedAt = receivedAt
        self.message = message
        self.acknowledgment = acknowledgment
    }
}

/// Where a message stands. `received`: durable and acknowledged, not yet applied;
/// `applied`; `waiting`: applied as far as it can be, waiting for something (a report for its
/// study); `failed`: applying it failed (detail says why); `refused`: answered AE/AR, never
/// journaled (detail says why).
public enum HL7MessageState: String, Sendable, CaseIterable, Codable {
    case received, applied, waiting, failed, refused
}

/// A message as `passerellectl hl7 list | show` reports it.
public struct HL7MessageRow: Sendable, Equatable {
    public var id: Int64
    public var sendingApplication: String
    public var sendingFacility: String
    public var controlID: String
    public var messageType: String
    public var version: String
    public var peer: String
    public var receivedAt: Date
    public var state: HL7MessageState
    public var detail: String
    public var message: [UInt8]
    public var acknowledgment: [UInt8]
    /// The journal segment and offset of its durable copy (nil for a refused message).
    public var journalSegment: String?
    public var journalOffset: Int?
}

/// Field names of a `.hl7Message` journal record's header: what replay needs to index it again.
public enum HL7JournalFields {
    public static let sendingApplication = "sending_application"
    public static let sendingFacility = "sending_facility"
    public static let controlID = "control_id"
    public static let messageType = "message_type"
    public static let version = "version"
    public static let peer = "peer"
    /// Seconds since 1970, as a decimal.
    public static let receivedAt = "received_at"
    /// The ACK sent, base64 (its bytes are in the message's character set, not always UTF-8).
    public static let acknowledgment = "ack_base64"
}

extension NewHL7Message {
    /// The journal record's header fields.
    var journalFields: [String: String] {
        [
            HL7JournalFields.sendingApplication: sendingApplication,
            HL7JournalFields.sendingFacility: sendingFacility,
            HL7JournalFields.controlID: controlID,
            HL7JournalFields.messageType: messageType,
            HL7JournalFields.version: version,
            HL7JournalFields.peer: peer,
            HL7JournalFields.receivedAt: String(receivedAt.timeIntervalSince1970),
            HL7JournalFields.acknowledgment: Data(acknowledgment).base64EncodedString(),
        ]
    }

    /// The message a journal record holds (replay).
    init(fields: [String: String], message: [UInt8]) throws(JournalError) {
        guard let controlID = fields[HL7JournalFields.controlID],
              let ack = fields[HL7JournalFields.acknowledgment].flatMap({ Data(base64Encoded: $0) }),
              let receivedAt = fields[HL7JournalFields.receivedAt].flatMap(Double.init) else {
            throw JournalError("HL7 record lacks its control ID, acknowledgement or reception time")
        }
        self.init(sendingApplication: fields[HL7JournalFields.sendingApplication] ?? "",
                  sendingFacility: fields[HL7JournalFields.sendingFacility] ?? "",
                  controlID: controlID, messageType: fields[HL7JournalFields.messageType] ?? "",
                  version: fields[HL7JournalFields.version] ?? "", peer: fields[HL7JournalFields.peer] ?? "",
                  receivedAt: Date(timeIntervalSince1970: receivedAt), message: message, acknowledgment: Array(ack))
    }
}

extension SpoolDatabase {
    /// `hl7_message`: every message received, accepted or refused. The control ID is unique
    /// per sender among accepted messages (a resend is answered from here, never applied
    /// twice); refused ones may repeat.
    static func migrateHL7(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE hl7_message (
                id INTEGER PRIMARY KEY,
                sending_application TEXT NOT NULL,
                sending_facility TEXT NOT NULL,
                control_id TEXT NOT NULL,
                message_type TEXT NOT NULL,
                version TEXT NOT NULL,
                peer TEXT NOT NULL,
                received_at REAL NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('received', 'applied', 'waiting', 'failed', 'refused')),
                detail TEXT NOT NULL DEFAULT '',
                message BLOB NOT NULL,
                acknowledgment BLOB NOT NULL,
                journal_segment TEXT,
                journal_offset INTEGER,
                updated_at REAL NOT NULL
            );
            CREATE UNIQUE INDEX hl7_message_sender_control
                ON hl7_message (sending_application, sending_facility, control_id) WHERE state <> 'refused';
            -- By state and type: what the bridge applies, what failed.
            CREATE INDEX hl7_message_state ON hl7_message (state, message_type, id);
            CREATE TABLE hl7_report (
                id INTEGER PRIMARY KEY,
                hl7_message_ref INTEGER REFERENCES hl7_message(id) ON DELETE SET NULL,
                study_instance_uid TEXT NOT NULL,
                filler_order_number TEXT NOT NULL,
                result_status TEXT NOT NULL,
                sop_class_uid TEXT NOT NULL,
                sop_instance_uid TEXT NOT NULL UNIQUE,
                series_instance_uid TEXT NOT NULL,
                created_at REAL NOT NULL
            );
            CREATE INDEX hl7_report_study ON hl7_report (study_instance_uid, filler_order_number);
            """)
    }

    /// Inside `recordJournaled`: the row of a durable message. A message already indexed
    /// (replay of a record whose row survived) is left as it is.
    func insertHL7(_ message: NewHL7Message, at location: JournalLocation, db: Database) throws -> Bool {
        try db.cachedStatement(sql: """
            INSERT OR IGNORE INTO hl7_message (sending_application, sending_facility, control_id, message_type,
                version, peer, received_at, state, message, acknowledgment, journal_segment, journal_offset, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, 'received', ?, ?, ?, ?, ?)
            """).execute(arguments: [
                message.sendingApplication, message.sendingFacility, message.controlID, message.messageType,
                message.version, message.peer, message.receivedAt.timeIntervalSince1970, Data(message.message),
                Data(message.acknowledgment), location.relativePath, location.payloadOffset,
                message.receivedAt.timeIntervalSince1970,
            ])
        return db.changesCount == 1
    }

    /// A message answered AE/AR: kept for `hl7 list --failed`, never applied.
    public func recordRefusedHL7(_ message: NewHL7Message, reason: String) throws {
        try writeBookkeeping { db in
            try db.execute(sql: """
                INSERT INTO hl7_message (sending_application, sending_facility, control_id, message_type, version,
                    peer, received_at, state, detail, message, acknowledgment, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, 'refused', ?, ?, ?, ?)
                """, arguments: [
                    message.sendingApplication, message.sendingFacility, message.controlID, message.messageType,
                    message.version, message.peer, message.receivedAt.timeIntervalSince1970, reason,
                    Data(message.message), Data(message.acknowledgment), message.receivedAt.timeIntervalSince1970,
                ])
        }
    }

    /// The ACK already sent for an accepted message with this sender and control ID.
    public func hl7Acknowledgment(sendingApplication: String, sendingFacility: String,
                                  controlID: String) throws -> [UInt8]? {
        try writer.read { db in
            try Data.fetchOne(db, sql: """
                SELECT acknowledgment FROM hl7_message
                WHERE sending_application = ? AND sending_facility = ? AND control_id = ? AND state <> 'refused'
                """, arguments: [sendingApplication, sendingFacility, controlID]).map { Array($0) }
        }
    }

    /// Calls `body` with the sender and control ID of every accepted message (start-up: the
    /// listener keeps them in memory so that a new control ID needs no query).
    public func forEachAcceptedHL7Key(_ body: (_ application: String, _ facility: String, _ controlID: String) -> Void) throws {
        try writer.read { db in
            let rows = try Row.fetchCursor(db, sql: """
                SELECT sending_application, sending_facility, control_id FROM hl7_message WHERE state <> 'refused'
                """)
            while let row = try rows.next() { body(row[0], row[1], row[2]) }
        }
    }

    /// The accepted messages of these types still to apply (`received`, `waiting`), oldest first.
    public func hl7MessagesToApply(types: [String]) throws -> [HL7MessageRow] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT \(Self.hl7Columns) FROM hl7_message
                WHERE state IN ('received', 'waiting') AND message_type IN (\(types.map { _ in "?" }.joined(separator: ", ")))
                ORDER BY id
                """, arguments: StatementArguments(types)).map(Self.hl7Row)
        }
    }

    /// The studies of the spool a report may belong to, with their patient, by Study Instance
    /// UID or by accession number.
    public func reportStudies(studyInstanceUID: String?, accessionNumber: String?) throws -> [ReportStudy] {
        try writer.read { db in
            let (condition, key) = studyInstanceUID.map { ("s.study_instance_uid = ?", $0) }
                ?? ("s.accession_number = ?", accessionNumber ?? "")
            return try Row.fetchAll(db, sql: """
                SELECT s.study_instance_uid, p.patient_id, p.issuer_of_patient_id, p.patient_name, p.birth_date, p.sex,
                       s.study_date, s.study_time, s.accession_number, s.study_description
                FROM study s JOIN patient p ON p.id = s.patient_ref
                WHERE \(condition) AND EXISTS (SELECT 1 FROM series r JOIN instance i ON i.series_ref = r.id WHERE r.study_ref = s.id)
                """, arguments: [key]).map { row in
                ReportStudy(studyInstanceUID: row[0], patientID: row[1], issuerOfPatientID: row[2], patientName: row[3],
                            patientBirthDate: row[4], patientSex: row[5], studyDate: row[6], studyTime: row[7],
                            accessionNumber: row[8], studyDescription: row[9])
            }
        }
    }

    /// Marks a message applied and records the report instance it became, in one transaction.
    public func recordHL7Report(_ report: HL7ReportRecord, messageID: Int64, detail: String, at date: Date = Date()) throws {
        try writer.write { db in
            try db.execute(sql: """
                INSERT INTO hl7_report (hl7_message_ref, study_instance_uid, filler_order_number, result_status,
                    sop_class_uid, sop_instance_uid, series_instance_uid, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [messageID, report.studyInstanceUID, report.fillerOrderNumber, report.resultStatus,
                                 report.sopClassUID, report.sopInstanceUID, report.seriesInstanceUID,
                                 date.timeIntervalSince1970])
            try db.execute(sql: "UPDATE hl7_message SET state = 'applied', detail = ?, updated_at = ? WHERE id = ?",
                           arguments: [detail, date.timeIntervalSince1970, messageID])
        }
    }

    /// The last report instance made for this study and order (the predecessor of a correction).
    public func latestHL7Report(studyInstanceUID: String, fillerOrderNumber: String) throws -> HL7ReportRecord? {
        try writer.read { db in
            try Row.fetchOne(db, sql: """
                SELECT study_instance_uid, filler_order_number, result_status, sop_class_uid, sop_instance_uid,
                       series_instance_uid
                FROM hl7_report WHERE study_instance_uid = ? AND filler_order_number = ? ORDER BY id DESC LIMIT 1
                """, arguments: [studyInstanceUID, fillerOrderNumber]).map { row in
                HL7ReportRecord(studyInstanceUID: row[0], fillerOrderNumber: row[1], resultStatus: row[2],
                                sopClassUID: row[3], sopInstanceUID: row[4], seriesInstanceUID: row[5])
            }
        }
    }

    /// Deletes the messages done with (applied, failed, refused) received before `date`; those
    /// still to apply stay. Past this, a resend of the same control ID counts as a new message.
    /// The reports made stay (a later correction still names its predecessor). Returns how many.
    @discardableResult
    public func pruneHL7Messages(receivedBefore date: Date) throws -> Int {
        try writer.write { db in
            try db.execute(sql: """
                DELETE FROM hl7_message WHERE state IN ('applied', 'failed', 'refused') AND received_at < ?
                """, arguments: [date.timeIntervalSince1970])
            return db.changesCount
        }
    }

    /// Moves a message to `state` (the bridge applying it).
    public func setHL7State(id: Int64, _ state: HL7MessageState, detail: String = "", at date: Date = Date()) throws {
        try writer.write { db in
            try db.execute(sql: "UPDATE hl7_message SET state = ?, detail = ?, updated_at = ? WHERE id = ?",
                           arguments: [state.rawValue, detail, date.timeIntervalSince1970, id])
        }
    }

    /// Messages, newest first, optionally only in some states.
    public func hl7Messages(states: [HL7MessageState]? = nil, limit: Int = 100) throws -> [HL7MessageRow] {
        try writer.read { db in
            var sql = "SELECT \(Self.hl7Columns) FROM hl7_message"
            var arguments: StatementArguments = []
            if let states {
                sql += " WHERE state IN (\(states.map { _ in "?" }.joined(separator: ", ")))"
                arguments += StatementArguments(states.map(\.rawValue))
            }
            sql += " ORDER BY id DESC LIMIT ?"
            arguments += [limit]
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.hl7Row)
        }
    }

    /// Every message with this control ID (from any sender), oldest first. A scan: no index
    /// on the control ID alone, which would cost every message a page of the WAL.
    public func hl7Messages(controlID: String) throws -> [HL7MessageRow] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT \(Self.hl7Columns) FROM hl7_message WHERE control_id = ? ORDER BY id",
                             arguments: [controlID]).map(Self.hl7Row)
        }
    }

    /// How many messages are in each state.
    public func hl7Counts() throws -> [HL7MessageState: Int] {
        try writer.read { db in
            var counts: [HL7MessageState: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) FROM hl7_message GROUP BY state") {
                if let state = HL7MessageState(rawValue: row[0]) { counts[state] = row[1] }
            }
            return counts
        }
    }

    private static let hl7Columns = """
        id, sending_application, sending_facility, control_id, message_type, version, peer, received_at, state,
        detail, message, acknowledgment, journal_segment, journal_offset
        """

    private static func hl7Row(_ row: Row) -> HL7MessageRow {
        let received: Double = row[7]
        let state: String = row[8]
        let message: Data = row[10]
        let acknowledgment: Data = row[11]
        return HL7MessageRow(id: row[0], sendingApplication: row[1], sendingFacility: row[2], controlID: row[3],
                             messageType: row[4], version: row[5], peer: row[6],
                             receivedAt: Date(timeIntervalSince1970: received),
                             state: HL7MessageState(rawValue: state) ?? .received, detail: row[9],
                             message: Array(message), acknowledgment: Array(acknowledgment),
                             journalSegment: row[12], journalOffset: row[13])
    }
}

/// A study of the spool, as a report made for it repeats it (patient and general study modules).
public struct ReportStudy: Sendable, Equatable {
    public var studyInstanceUID: String
    public var patientID: String
    public var issuerOfPatientID: String
    public var patientName: String?
    public var patientBirthDate: String?
    public var patientSex: String?
    public var studyDate: String?
    public var studyTime: String?
    public var accessionNumber: String?
    public var studyDescription: String?

    public init(studyInstanceUID: String, patientID: String, issuerOfPatientID: String, patientName: String?,
                patientBirthDate: String?, patientSex: String?, studyDate: String?, studyTime: String?,
                accessionNumber: String?, studyDescription: String?) {
        self.studyInstanceUID = studyInstanceUID
        self.patientID = patientID
        self.issuerOfPatientID = issuerOfPatientID
        self.patientName = patientName
        self.patientBirthDate = patientBirthDate
        self.patientSex = patientSex
        self.studyDate = studyDate
        self.studyTime = studyTime
        self.accessionNumber = accessionNumber
        self.studyDescription = studyDescription
    }
}

/// A report instance made from an ORU^R01.
public struct HL7ReportRecord: Sendable, Equatable {
    public var studyInstanceUID: String
    public var fillerOrderNumber: String
    public var resultStatus: String
    public var sopClassUID: String
    public var sopInstanceUID: String
    public var seriesInstanceUID: String

    public init(studyInstanceUID: String, fillerOrderNumber: String, resultStatus: String, sopClassUID: String,
                sopInstanceUID: String, seriesInstanceUID: String) {
        self.studyInstanceUID = studyInstanceUID
        self.fillerOrderNumber = fillerOrderNumber
        self.resultStatus = resultStatus
        self.sopClassUID = sopClassUID
        self.sopInstanceUID = sopInstanceUID
        self.seriesInstanceUID = seriesInstanceUID
    }
}
