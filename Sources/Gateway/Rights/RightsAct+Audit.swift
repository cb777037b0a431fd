import Audit
import Foundation
import Spool

extension RightsAct {
    /// The audit row of a rights act: a person (`--by`, on this box) or the gateway acting on a
    /// person's request, with the patients and studies it touched, so that a patient's access
    /// report lists it.
    func auditEvent(patients: [AuditEvent.Patient]) -> AuditEvent {
        func person(_ name: String) -> AuditEvent.Actor { .init(address: "local", userName: name) }
        func details(_ subject: RightsSubject, _ reason: String?) -> [String: String] {
            var details = ["subject": subject.description]
            if let reason { details["reason"] = reason }
            return details
        }
        switch self {
        case .oppositionAdded(let subject, let by, let reason, let studies):
            return AuditEvent(action: .oppositionAdded, actor: person(by), patients: patients,
                              studies: subject.studies(plus: studies), details: details(subject, reason))
        case .oppositionRemoved(let subject, let by, let reason, let studies):
            return AuditEvent(action: .oppositionRemoved, actor: person(by), patients: patients,
                              studies: subject.studies(plus: studies), details: details(subject, reason))
        case .consentInformed(let subject, let by, let studies):
            return AuditEvent(action: .consentInformed, actor: person(by), patients: patients,
                              studies: subject.studies(plus: studies), details: details(subject, nil))
        case .emergencyShare(let subject, let by, let reason, let studies):
            var details = details(subject, reason)
            details["purpose"] = "emergency"
            return AuditEvent(action: .emergencyShare, actor: person(by), patients: patients,
                              studies: subject.studies(plus: studies), details: details)
        case .emergencyShareRefused(let subject, let by, let reason):
            var details = details(subject, reason)
            details["purpose"] = "emergency"
            return AuditEvent(action: .emergencyShare, outcome: .seriousFailure,
                              outcomeDescription: "refused: an opposition covers the study", actor: person(by),
                              patients: patients, studies: subject.studies(plus: []), details: details)
        case .withdrawal(let withdrawal, let method, let outcome):
            var event = AuditEvent(action: .withdrawal, actor: .gateway, destination: withdrawal.destination,
                                   patients: patients, studies: [withdrawal.studyUID],
                                   details: ["method": method, "requested_by": withdrawal.requestedBy])
            if case .failure(let failure) = outcome {
                event.outcome = .seriousFailure
                event.outcomeDescription = failure.message
            }
            return event
        case .reportWithdrawal(let withdrawal, let method):
            return AuditEvent(action: .withdrawal, actor: .gateway, destination: withdrawal.destination, patients: patients,
                              studies: [withdrawal.studyInstanceUID],
                              details: ["method": method, "sop_instance_uid": withdrawal.sopInstanceUID,
                                        "reason": "report cancelled (OBR-25 = X)", "hl7_control_id": withdrawal.controlID])
        }
    }
}

extension RightsSubject {
    func studies(plus others: [String]) -> [String] {
        if case .study(let uid) = self, !others.contains(uid) { return [uid] + others }
        return others
    }
}
