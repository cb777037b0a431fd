import Foundation

/// A DICOM Audit Message (PS3.15 A.5.1 schema) for one ``AuditEvent``; the event codes are
/// those of PS3.16 CID 400–405 as docs/conformance.md lists them.
public struct DICOMAuditMessage: Sendable, Equatable {
    /// A coded value: `csd-code`, `codeSystemName`, `originalText` (PS3.15 A.5.1 CodedValueType).
    public struct Code: Sendable, Equatable {
        public var code: String
        public var system: String
        public var meaning: String

        public init(_ code: String, _ meaning: String, system: String = "DCM") {
            self.code = code
            self.system = system
            self.meaning = meaning
        }
    }

    /// This gateway, as the audit source and as a participant.
    public struct Source: Sendable, Equatable {
        /// AuditSourceID: the site's emitter code (else the host name).
        public var sourceID: String
        /// AuditEnterpriseSiteID: the regional site ID.
        public var enterpriseSiteID: String?
        /// The gateway's AE title (its UserID as a participant).
        public var aeTitle: String
        public var hostName: String
        public var processID: String

        public init(sourceID: String, enterpriseSiteID: String?, aeTitle: String, hostName: String, processID: String) {
            self.sourceID = sourceID
            self.enterpriseSiteID = enterpriseSiteID
            self.aeTitle = aeTitle
            self.hostName = hostName
            self.processID = processID
        }
    }

    /// EventID, EventTypeCode (if any) and EventActionCode of an action (PS3.15 A.5.3).
    public struct Coding: Sendable, Equatable {
        public var eventID: Code
        public var eventType: Code?
        /// C create, R read, U update, D delete, E execute.
        public var actionCode: String
    }

    // PS3.16 CID 400 (Audit Event ID), CID 401–403 (Event Type Code), CID 402 (Role ID).
    static let applicationActivity = Code("110100", "Application Activity")
    static let instancesTransferred = Code("110104", "DICOM Instances Transferred")
    static let studyDeleted = Code("110105", "DICOM Study Deleted")
    static let export = Code("110106", "Export")
    static let patientRecord = Code("110110", "Patient Record")
    static let query = Code("110112", "Query")
    static let securityAlert = Code("110113", "Security Alert")
    static let userAuthentication = Code("110114", "User Authentication")
    static let applicationStart = Code("110120", "Application Start")
    static let applicationStop = Code("110121", "Application Stop")
    static let login = Code("110122", "Login")
    static let nodeAuthentication = Code("110126", "Node Authentication")
    static let emergencyOverrideStarted = Code("110127", "Emergency Override Started")
    static let softwareConfiguration = Code("110131", "Software Configuration")
    static let application = Code("110150", "Application")
    static let applicationLauncher = Code("110151", "Application Launcher")
    static let destinationRole = Code("110152", "Destination Role ID")
    static let sourceRole = Code("110153", "Source Role ID")
    static let studyInstanceUID = Code("110180", "Study Instance UID")
    static let sopClassUID = Code("110181", "SOP Class UID")
    static let patientNumber = Code("2", "Patient Number", system: "RFC-3881")

    /// The event codes of each action (the table of docs/conformance.md).
    public static func coding(for action: AuditEvent.Action) -> Coding {
        switch action {
        case .applicationStart: Coding(eventID: applicationActivity, eventType: applicationStart, actionCode: "E")
        case .applicationStop: Coding(eventID: applicationActivity, eventType: applicationStop, actionCode: "E")
        case .configurationReload: Coding(eventID: securityAlert, eventType: softwareConfiguration, actionCode: "E")
        case .associationAccepted: Coding(eventID: userAuthentication, eventType: login, actionCode: "E")
        case .associationRejected: Coding(eventID: securityAlert, eventType: nodeAuthentication, actionCode: "E")
        case .instancesReceived: Coding(eventID: instancesTransferred, eventType: nil, actionCode: "C")
        case .query: Coding(eventID: query, eventType: nil, actionCode: "E")
        case .retrieve: Coding(eventID: instancesTransferred, eventType: nil, actionCode: "R")
        case .upload: Coding(eventID: export, eventType: nil, actionCode: "R")
        case .verification: Coding(eventID: query, eventType: nil, actionCode: "E")
        case .withdrawal: Coding(eventID: studyDeleted, eventType: nil, actionCode: "D")
        case .oppositionAdded: Coding(eventID: patientRecord, eventType: nil, actionCode: "C")
        case .oppositionRemoved: Coding(eventID: patientRecord, eventType: nil, actionCode: "D")
        case .consentInformed: Coding(eventID: patientRecord, eventType: nil, actionCode: "U")
        case .emergencyShare: Coding(eventID: securityAlert, eventType: emergencyOverrideStarted, actionCode: "E")
        case .purge: Coding(eventID: studyDeleted, eventType: nil, actionCode: "D")
        case .reportCreated: Coding(eventID: patientRecord, eventType: nil, actionCode: "C")
        case .identityUpdateRefused, .identityUpdated, .identityCorrected:
            Coding(eventID: patientRecord, eventType: nil, actionCode: "U")
        }
    }

    /// Which side of a transfer the requestor and the gateway are (RoleIDCode).
    static func roles(for action: AuditEvent.Action) -> (actor: Code?, gateway: Code?, destination: Code?) {
        switch action {
        case .instancesReceived: (sourceRole, destinationRole, nil)
        case .retrieve, .upload, .withdrawal, .emergencyShare: (nil, sourceRole, destinationRole)
        case .applicationStart, .applicationStop: (applicationLauncher, application, nil)
        default: (nil, nil, nil)
        }
    }

    /// The default query SOP class when the event does not name one (Study Root C-FIND).
    static let studyRootFind = "1.2.840.10008.5.1.4.1.2.2.1"

    public let xml: String

    public init(_ event: AuditEvent, source: Source) {
        let coding = Self.coding(for: event.action)
        let roles = Self.roles(for: event.action)
        var x = XMLWriter()
        x.raw(#"<?xml version="1.0" encoding="UTF-8"?>"#)
        x.raw("<AuditMessage>")
        x.open("EventIdentification", [("EventActionCode", coding.actionCode),
                                       ("EventDateTime", AuditChain.timestamp(event.at)),
                                       ("EventOutcomeIndicator", String(event.outcome.rawValue))])
        x.code("EventID", coding.eventID)
        if let type = coding.eventType { x.code("EventTypeCode", type) }
        if let description = event.outcomeDescription {
            x.element("EventOutcomeDescription", text: description)
        }
        x.close("EventIdentification")

        // The requestor: a user, or a calling AE title, at an address; a node known by its
        // address alone (a TLS handshake refused before any AE title) is named by it.
        let actor = event.actor
        let gatewayRequests = actor.aeTitle == nil && actor.userName == nil && actor.address == nil
        if !gatewayRequests {
            var attributes = [("UserID", actor.userName ?? actor.aeTitle ?? actor.address.map(Self.host) ?? "unknown")]
            if actor.userName != nil, let ae = actor.aeTitle { attributes.append(("AlternativeUserID", "AETITLES=\(ae)")) }
            attributes.append(("UserIsRequestor", "true"))
            if let address = actor.address.map(Self.host) {
                attributes += [("NetworkAccessPointID", address),
                               ("NetworkAccessPointTypeCode", Self.isIPAddress(address) ? "2" : "1")]
            }
            x.participant(attributes, role: roles.actor)
        }
        // The gateway itself.
        x.participant([("UserID", source.aeTitle), ("AlternativeUserID", source.processID),
                       ("UserIsRequestor", gatewayRequests ? "true" : "false"),
                       ("NetworkAccessPointID", source.hostName),
                       ("NetworkAccessPointTypeCode", Self.isIPAddress(source.hostName) ? "2" : "1")],
                      role: roles.gateway)
        // The other party: a called AE title, a move destination, a destination's name.
        if let destination = event.destination {
            x.participant([("UserID", destination), ("UserIsRequestor", "false")], role: roles.destination)
        }

        x.open("AuditSourceIdentification", [("AuditEnterpriseSiteID", source.enterpriseSiteID),
                                             ("AuditSourceID", source.sourceID)].compactMap { key, value in
            value.map { (key, $0) }
        })
        // PS3.15 A.5.1: 4 = Application Server process tier in a multi-tier system.
        x.code("AuditSourceTypeCode", Code("4", "Application Server process tier", system: "DCM"))
        x.close("AuditSourceIdentification")

        if event.action == .query {
            x.open("ParticipantObjectIdentification", [("ParticipantObjectID", event.details["sop_class_uid"] ?? Self.studyRootFind),
                                                       ("ParticipantObjectTypeCode", "2"),
                                                       ("ParticipantObjectTypeCodeRole", "3")])
            x.code("ParticipantObjectIDTypeCode", Self.sopClassUID)
            x.element("ParticipantObjectQuery", text: Data((event.details["keys"] ?? "").utf8).base64EncodedString())
            x.detail("QueryLevel", event.details["level"])
            x.close("ParticipantObjectIdentification")
        }
        for study in event.studies {
            x.open("ParticipantObjectIdentification", [("ParticipantObjectID", study),
                                                       ("ParticipantObjectTypeCode", "2"),
                                                       ("ParticipantObjectTypeCodeRole", "3")])
            x.code("ParticipantObjectIDTypeCode", Self.studyInstanceUID)
            if event.studies.count == 1 { x.detail("NumberOfInstances", event.details["count"]) }
            x.close("ParticipantObjectIdentification")
        }
        for patient in event.patients {
            x.open("ParticipantObjectIdentification", [("ParticipantObjectID", "\(patient.id)^^^\(patient.issuer)"),
                                                       ("ParticipantObjectTypeCode", "1"),
                                                       ("ParticipantObjectTypeCodeRole", "1")])
            x.code("ParticipantObjectIDTypeCode", Self.patientNumber)
            x.close("ParticipantObjectIdentification")
        }
        x.raw("</AuditMessage>")
        xml = x.text
    }

    /// "10.1.2.3:51234" → "10.1.2.3"; "[::1]:104" → "::1"; a name stays as is.
    static func host(_ address: String) -> String {
        if address.hasPrefix("["), let end = address.firstIndex(of: "]") {
            return String(address[address.index(after: address.startIndex)..<end])
        }
        let colons = address.filter { $0 == ":" }.count
        if colons == 1, let colon = address.lastIndex(of: ":"), Int(address[address.index(after: colon)...]) != nil {
            return String(address[..<colon])
        }
        return address
    }

    static func isIPAddress(_ text: String) -> Bool {
        if text.contains(":") { return true }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { UInt8($0) != nil }
    }
}

/// A minimal XML writer: attribute values and text are escaped (&, <, >, ", ', and the
/// control characters XML 1.0 forbids are dropped).
struct XMLWriter {
    private(set) var text = ""

    mutating func raw(_ s: String) { text += s }

    mutating func open(_ name: String, _ attributes: [(String, String)], selfClosing: Bool = false) {
        text += "<\(name)"
        for (key, value) in attributes { text += " \(key)=\"\(Self.escape(value))\"" }
        text += selfClosing ? "/>" : ">"
    }

    mutating func close(_ name: String) { text += "</\(name)>" }

    mutating func element(_ name: String, text content: String) {
        text += "<\(name)>\(Self.escape(content))</\(name)>"
    }

    mutating func code(_ name: String, _ code: DICOMAuditMessage.Code) {
        open(name, [("csd-code", code.code), ("codeSystemName", code.system), ("originalText", code.meaning)],
             selfClosing: true)
    }

    mutating func participant(_ attributes: [(String, String)], role: DICOMAuditMessage.Code?) {
        guard let role else { return open("ActiveParticipant", attributes, selfClosing: true) }
        open("ActiveParticipant", attributes)
        code("RoleIDCode", role)
        close("ActiveParticipant")
    }

    mutating func detail(_ type: String, _ value: String?) {
        guard let value else { return }
        open("ParticipantObjectDetail", [("type", type), ("value", Data(value.utf8).base64EncodedString())],
             selfClosing: true)
    }

    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t", "\n", "\r": out += "&#\(scalar.value);"
            default:
                // XML 1.0 Char: no other C0 control, no U+FFFE/U+FFFF.
                if scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF { continue }
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
