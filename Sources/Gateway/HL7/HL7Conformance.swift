import HL7

/// What this version of the listener accepts (docs/hl7.md is the conformance statement): the
/// versions, processing IDs and message types, and the segments each message type must carry
/// to be applied. A message outside it is rejected before it is journaled, so an AA always
/// means "durably kept and understood".
enum HL7Conformance {
    static let versions: Set<String> = ["2.3", "2.3.1", "2.4", "2.5", "2.5.1"]
    /// HL7 table 0103: production, debugging, training.
    static let processingIDs: Set<String> = ["P", "D", "T"]
    /// Message code → trigger event → required segments.
    static let messageTypes: [String: [String: [String]]] = [
        // Reports from the RIS (IHE Radiology: the report as observations of the order).
        "ORU": ["R01": ["PID", "OBR", "OBX"]],
        // Identity from the PAS (IHE PIR, PAM France): update, update without visit, change of
        // patient identifier, merge.
        "ADT": ["A08": ["PID"], "A31": ["PID"], "A47": ["PID", "MRG"], "A40": ["PID", "MRG"]],
    ]

    /// Why `message` cannot be accepted (the ACK code and its ERR), or nil.
    static func refusal(of message: HL7Message) -> (HL7AcknowledgmentCode, HL7Acknowledgment.ErrorDetail)? {
        let header = message.header
        guard versions.contains(header.versionID) else {
            return (.applicationReject, .init(code: .unsupportedVersionID,
                                              text: "version \(header.versionID) is not supported (2.3 to 2.5.1)",
                                              location: HL7ErrorLocation(segment: "MSH", field: 12)))
        }
        guard processingIDs.contains(header.processingID) else {
            return (.applicationReject, .init(code: .unsupportedProcessingID,
                                              text: "processing ID \(header.processingID) is not supported (P, D or T)",
                                              location: HL7ErrorLocation(segment: "MSH", field: 11)))
        }
        guard let events = messageTypes[header.messageCode] else {
            return (.applicationReject, .init(code: .unsupportedMessageType,
                                              text: "message type \(header.messageCode) is not supported (ORU, ADT)",
                                              location: HL7ErrorLocation(segment: "MSH", field: 9, component: 1)))
        }
        guard let required = events[header.triggerEvent] else {
            let known = events.keys.sorted().joined(separator: ", ")
            return (.applicationReject, .init(code: .unsupportedEventCode,
                                              text: "\(header.messageCode)^\(header.triggerEvent) is not supported (\(known))",
                                              location: HL7ErrorLocation(segment: "MSH", field: 9, component: 2)))
        }
        for name in required where message.segment(named: name) == nil {
            return (.applicationError, .init(code: .segmentSequenceError,
                                             text: "\(header.messageCode)^\(header.triggerEvent) without a \(name) segment",
                                             location: HL7ErrorLocation(segment: name)))
        }
        if let mrg = message.segment(named: "MRG"), mrg.field(1).value().isEmpty {
            return (.applicationError, .init(code: .requiredFieldMissing, text: "MRG-1 (prior patient identifier) is empty",
                                             location: HL7ErrorLocation(segment: "MRG", field: 1)))
        }
        return nil
    }

    /// An A40 (merge) or A47 (change of identifier) whose patient (PID-3) and prior patient
    /// (MRG-1) belong to different issuers: a correction never crosses issuers (one site's
    /// number cannot become another's). The reason and both patients, or nil. An identifier
    /// without assigning authority counts as the site's.
    static func crossIssuer(_ message: HL7Message, issuers: PatientIdentityUpdate.Issuers)
        -> (reason: String, patients: [(id: String, issuer: String)])? {
        guard message.header.messageCode == "ADT", ["A40", "A47"].contains(message.header.triggerEvent),
              let pid = message.segment(named: "PID"), let mrg = message.segment(named: "MRG"),
              let patient = issuers.patient(in: pid.field(3)), let prior = issuers.patient(in: mrg.field(1)),
              patient.issuer != prior.issuer else { return nil }
        return ("\(message.header.messageCode)^\(message.header.triggerEvent) across issuers: PID-3 \(patient.id) of "
                + "\(patient.issuer), MRG-1 \(prior.id) of \(prior.issuer)", [patient, prior])
    }
}
