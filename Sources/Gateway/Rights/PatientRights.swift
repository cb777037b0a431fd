import Audit
import Foundation
import Logging
import NIOConcurrencyHelpers
import Spool

/// The patient-rights correspondent's acts (docs/rights.md): oppositions, consent, emergency
/// shares, manual withdrawals confirmed. Each is one spool transaction, then the journal line
/// and the audit row; the uploader and the withdrawal service are woken for what changed.
///
/// Blocking (spool writes): the status server calls it on its thread pool.
public final class PatientRights: Sendable {
    private let spool: Spool
    private let configuration: NIOLockedValueBox<GatewayConfiguration>
    private let logger: Logger
    /// Studies were released to shared destinations.
    private let released: @Sendable () -> Void
    /// Withdrawals or sweeps were queued, or a manual one confirmed.
    let withdrawalsChanged = Wakeup()
    private let trail: AuditTrail?

    public init(configuration: GatewayConfiguration, spool: Spool, logger: Logger, audit: AuditTrail?,
                released: @escaping @Sendable () -> Void = {}) {
        self.configuration = NIOLockedValueBox(configuration)
        self.spool = spool
        self.logger = logger
        self.released = released
        self.trail = audit
    }

    /// Records the act in the audit trail (blocking: callers are on the thread pool), with the
    /// patients it touched as the spool knows them.
    func audit(_ act: RightsAct) {
        guard let trail, trail.isEnabled else { return }
        trail.recordNow(act.auditEvent(patients: patients(of: act)))
    }

    private func patients(of act: RightsAct) -> [AuditEvent.Patient] {
        let site = current.site.issuerOfPatientID ?? ""
        let subject: RightsSubject
        switch act {
        case .oppositionAdded(let s, _, _, _), .oppositionRemoved(let s, _, _, _), .consentInformed(let s, _, _),
             .emergencyShare(let s, _, _, _), .emergencyShareRefused(let s, _, _):
            subject = s
        case .withdrawal(let withdrawal, _, _):
            guard let id = withdrawal.patientID else { return [] }
            return [.init(id: id, issuer: withdrawal.issuer ?? site)]
        case .reportWithdrawal(let withdrawal, _):
            subject = .study(withdrawal.studyInstanceUID)
        }
        switch subject {
        case .patient(let id, let issuer):
            return [.init(id: id, issuer: issuer)]
        case .ins(let ins):
            return ((try? spool.database.patients(withINS: ins)) ?? []).map {
                .init(id: $0.patientID, issuer: $0.issuer.isEmpty ? site : $0.issuer)
            }
        case .study(let uid):
            return ((try? spool.database.patient(ofStudy: uid)) ?? nil).map {
                [.init(id: $0.patientID, issuer: $0.issuer.isEmpty ? site : $0.issuer)]
            } ?? []
        }
    }

    var current: GatewayConfiguration { configuration.withLockedValue { $0 } }

    /// A reload: what is withheld follows the new rules (a destination no longer shared, the
    /// consent rule changed).
    func apply(_ configuration: GatewayConfiguration) {
        self.configuration.withLockedValue { $0 = configuration }
        refreshSharing()
        withdrawalsChanged.signal()
    }

    /// Recomputes what is withheld under the rules in force (also at start: the configuration
    /// may have changed while the daemon was stopped).
    func refreshSharing() {
        do {
            let released = try spool.database.refreshSharing(rules: current.sharingRules)
            if released > 0 {
                logger.notice("studies released to the shared destinations by the configuration",
                              metadata: ["studies": "\(released)"])
                self.released()
            }
        } catch {
            logger.error("cannot apply the sharing rules to the spool", metadata: ["error": "\(error)"])
        }
    }

    /// A patient selector as the CLI gives it: `--issuer` defaults to the site's.
    public func subject(patient: String?, issuer: String?, ins: String?, study: String?) throws(StatusError) -> RightsSubject {
        let given = [patient, ins, study].compactMap { $0 }.filter { !$0.isEmpty }
        guard given.count == 1 else {
            throw StatusError(code: "bad_request", message: "name exactly one of patient, ins, study")
        }
        if let study, !study.isEmpty { return .study(study) }
        if let ins, !ins.isEmpty { return .ins(ins) }
        guard let issuer = issuer ?? current.site.issuerOfPatientID, !issuer.isEmpty else {
            throw StatusError(code: "bad_request",
                              message: "no issuer: give --issuer or set [site] issuer_of_patient_id")
        }
        return .patient(id: patient!, issuer: issuer)
    }

    // MARK: Oppositions

    public func addOpposition(_ subject: RightsSubject, by: String, reason: String?) throws -> OppositionChange {
        let rules = current.sharingRules
        let change: OppositionChange
        do {
            change = try spool.database.addOpposition(subject, by: by, reason: reason, rules: rules)
        } catch let error as RightsError {
            throw StatusError(code: "already_opposed", message: error.description)
        }
        logger.notice("opposition registered", metadata: [
            "subject": "\(subject)", "by": "\(by)", "reason": "\(reason ?? "")",
            "studies_in_spool": "\(change.studiesInSpool)", "withdrawals_queued": "\(change.withdrawals.count)",
            "shared_destinations": "\(rules.sharedDestinations.sorted().joined(separator: ","))",
        ])
        audit(.oppositionAdded(subject, by: by, reason: reason, studies: change.withdrawals.map(\.studyUID)))
        withdrawalsChanged.signal()
        return change
    }

    public func removeOpposition(_ subject: RightsSubject, by: String, reason: String?) throws -> OppositionChange {
        let change: OppositionChange
        do {
            change = try spool.database.removeOpposition(subject, by: by, reason: reason, rules: current.sharingRules)
        } catch let error as RightsError {
            throw StatusError(code: "not_opposed", message: error.description)
        }
        let resend = change.withdrawals.filter { $0.state == .needsResend }
        logger.notice("opposition removed", metadata: [
            "subject": "\(subject)", "by": "\(by)", "reason": "\(reason ?? "")",
            "studies_in_spool": "\(change.studiesInSpool)",
            "withdrawals_cancelled": "\(change.withdrawals.filter { $0.state == .cancelled }.count)",
            "shared_again": "\(change.withdrawals.filter { $0.state == .reshared }.count)",
            "needs_resend": "\(resend.count)",
        ])
        for withdrawal in resend {
            logger.warning("study no longer in the spool: send it again to the shared destination", metadata: [
                "study_uid": "\(withdrawal.studyUID)", "destination": "\(withdrawal.destination)"])
        }
        audit(.oppositionRemoved(subject, by: by, reason: reason, studies: change.withdrawals.map(\.studyUID)))
        released()
        withdrawalsChanged.signal()
        return change
    }

    public func oppositions() throws -> [Opposition] {
        try spool.database.oppositions()
    }

    // MARK: Consent

    /// `consent informed` (patient or study) or `share --emergency` (a study).
    public func recordConsent(_ subject: RightsSubject, basis: ConsentBasis, by: String,
                              reason: String?) throws -> ConsentChange {
        let change: ConsentChange
        do {
            change = try spool.database.recordConsent(subject, basis: basis, by: by, reason: reason,
                                                      rules: current.sharingRules)
        } catch let error as RightsError {
            switch error {
            case .opposed:
                logger.warning("emergency share refused: an opposition covers the study", metadata: [
                    "subject": "\(subject)", "by": "\(by)"])
                audit(.emergencyShareRefused(subject, by: by, reason: reason))
                throw StatusError(code: "opposed", message: error.description)
            case .unknownStudy: throw StatusError(code: "unknown_study", message: error.description)
            default: throw StatusError(code: "bad_request", message: error.description)
            }
        }
        logger.notice(basis == .emergency ? "emergency share" : "patient informed", metadata: [
            "subject": "\(subject)", "by": "\(by)", "reason": "\(reason ?? "")",
            "studies_released": "\(change.released.count)",
        ])
        audit(basis == .emergency ? .emergencyShare(subject, by: by, reason: reason, studies: change.released)
                                  : .consentInformed(subject, by: by, studies: change.released))
        released()
        return change
    }

    // MARK: Withdrawals

    /// A manual withdrawal done by an operator: QIDO-RS confirms it before it counts.
    public func confirmWithdrawal(study: String, by: String) throws -> [Withdrawal] {
        let pending = try spool.database.confirmWithdrawal(studyUID: study, by: by)
        guard !pending.isEmpty else {
            throw StatusError(code: "no_withdrawal", message: "no pending withdrawal of study \(study)")
        }
        logger.notice("manual withdrawal reported done; checking by QIDO-RS", metadata: [
            "study_uid": "\(study)", "by": "\(by)",
            "destinations": "\(pending.map(\.destination).joined(separator: ","))"])
        withdrawalsChanged.signal()
        return pending
    }

    public func withdrawals(since: Date?) throws -> [Withdrawal] {
        try spool.database.withdrawals(since: since)
    }
}

/// What the audit trail records of a rights act.
public enum RightsAct: Sendable {
    case oppositionAdded(RightsSubject, by: String, reason: String?, studies: [String])
    case oppositionRemoved(RightsSubject, by: String, reason: String?, studies: [String])
    case consentInformed(RightsSubject, by: String, studies: [String])
    case emergencyShare(RightsSubject, by: String, reason: String?, studies: [String])
    case emergencyShareRefused(RightsSubject, by: String, reason: String?)
    /// A study gone from a shared destination (or a failed attempt).
    case withdrawal(Withdrawal, method: String, outcome: Result<Void, WithdrawalFailure>)
    /// A report the RIS cancelled, gone from a shared destination.
    case reportWithdrawal(ReportWithdrawal, method: String)
}

public struct WithdrawalFailure: Error, Sendable {
    public var message: String
}
