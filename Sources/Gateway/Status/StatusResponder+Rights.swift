import Foundation
import Spool

extension StatusResponder {
    func respond(to request: RightsRequest) throws -> AnyEncodable {
        guard let rights else {
            throw StatusError(code: "unavailable", message: "patient rights are not available in this process")
        }
        func subject(_ s: RightsRequest.Selector) throws(StatusError) -> RightsSubject {
            try rights.subject(patient: s.patient, issuer: s.issuer, ins: s.ins, study: s.study)
        }
        switch request {
        case .addOpposition(let selector, let by, let reason):
            let change = try rights.addOpposition(try subject(selector), by: by, reason: reason)
            return AnyEncodable(OppositionAnswer(change))
        case .removeOpposition(let selector, let by, let reason):
            let change = try rights.removeOpposition(try subject(selector), by: by, reason: reason)
            return AnyEncodable(OppositionAnswer(change))
        case .listOppositions:
            return AnyEncodable(OppositionList(oppositions: try rights.oppositions(),
                                               withdrawals: try rights.withdrawals(since: nil)))
        case .withdrawalDone(let study, let by):
            return AnyEncodable(["withdrawals": try rights.confirmWithdrawal(study: study, by: by)])
        case .consentInformed(let selector, let by):
            let change = try rights.recordConsent(try subject(selector), basis: .informed, by: by, reason: nil)
            return AnyEncodable(ConsentAnswer(studiesInSpool: change.studiesInSpool, released: change.released))
        case .emergencyShare(let study, let by, let reason):
            let change = try rights.recordConsent(.study(study), basis: .emergency, by: by, reason: reason)
            return AnyEncodable(ConsentAnswer(studiesInSpool: change.studiesInSpool, released: change.released))
        }
    }

    /// The `rights` part of `status`.
    func rightsStatus() throws -> StatusReport.Rights {
        let configuration = rights?.current ?? self.configuration
        let totals = try spool.database.rightsTotals()
        var alarms: [StatusReport.Rights.Alarm] = []
        let manual = Set(configuration.destinations.filter { $0.withdraw == .manual }.map(\.name))
        for withdrawal in try spool.database.openWithdrawals() {
            let kind: String
            if withdrawal.state == .needsResend {
                kind = "needs_resend"
            } else if manual.contains(withdrawal.destination) && withdrawal.confirmedBy == nil {
                kind = "manual_withdrawal"
            } else if withdrawal.lastError != nil && withdrawal.attempts > 0 {
                kind = "withdrawal_failing"
            } else {
                continue
            }
            alarms.append(.init(kind: kind, studyUID: withdrawal.studyUID, destination: withdrawal.destination,
                                since: withdrawal.doneAt ?? withdrawal.requestedAt,
                                message: withdrawal.state == .needsResend
                                    ? "opposition lifted after the withdrawal; the spool no longer holds the study: send it again"
                                    : withdrawal.lastError ?? "manual withdrawal required"))
        }
        return StatusReport.Rights(
            consentDefault: configuration.consent.default.rawValue,
            sharedDestinations: configuration.sharingRules.sharedDestinations.sorted(),
            activeOppositions: totals.activeOppositions, withheld: totals.withheld, withdrawals: totals.withdrawals,
            pendingSweeps: totals.pendingSweeps, alarms: alarms)
    }
}

struct OppositionAnswer: Encodable {
    var opposition: Opposition
    var studiesInSpool: Int
    var withdrawals: [Withdrawal]

    init(_ change: OppositionChange) {
        opposition = change.opposition
        studiesInSpool = change.studiesInSpool
        withdrawals = change.withdrawals
    }
}

struct OppositionList: Encodable {
    var oppositions: [Opposition]
    var withdrawals: [Withdrawal]
}

struct ConsentAnswer: Encodable {
    var studiesInSpool: Int
    var released: [String]
}
