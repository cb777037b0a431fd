import Audit
import DICOMCore
import DICOMNetwork
import Logging
import NIOConcurrencyHelpers
import Spool

/// The site's SCP: applies the `AssociationPolicy` to associations, receives C-STORE data sets
/// into the spool and hands query/retrieve requests to the `CommunityProxy`.
public final class SiteServiceProvider: DICOMServiceProvider {
    private func sizeHint(_ id: UInt64) -> ReceptionSizeHint {
        sizeHints.withLockedValue { hints in
            if let hint = hints[id] { return hint }
            let hint = ReceptionSizeHint()
            hints[id] = hint
            return hint
        }
    }

    /// Counts each instance received (stored or a duplicate) for the association's audit rows.
    private func receivedTally(_ id: UInt64) -> @Sendable (_ study: String, _ patientID: String, _ issuer: String) -> Void {
        guard let audit else { return { _, _, _ in } }
        return { [received] study, patientID, issuer in
            received.withLockedValue { all in
                all[id, default: [:]][study, default: ReceivedStudy(patient: audit.patient(id: patientID, issuer: issuer))]
                    .count += 1
            }
        }
    }

    /// Association accepted or rejected, with the user identity when one was negotiated.
    static func auditEvent(_ request: AssociateRQ, peer: String, decision: AssociationDecision,
                           refusal: String? = nil) -> AuditEvent {
        let actor = AuditEvent.Actor(aeTitle: request.callingAETitle, address: peer,
                                     userName: request.userInformation.auditUserName)
        switch decision {
        case .accept:
            return AuditEvent(action: .associationAccepted, actor: actor, destination: request.calledAETitle)
        case .reject(let rejection):
            return AuditEvent(action: .associationRejected, outcome: .minorFailure,
                              outcomeDescription: refusal ?? "\(rejection.reason)", actor: actor,
                              destination: request.calledAETitle)
        }
    }

    private let policy: NIOLockedValueBox<AssociationPolicy>
    private let spool: Spool
    private let logger: Logger
    private let active = NIOLockedValueBox(0)
    private let metrics = StorageMetrics()

    /// Called after each instance is durable (the uploader starts at once).
    private let instanceStored: @Sendable () -> Void

    private let community: CommunityProxy?
    private let audit: AuditTrail?
    /// Instances received per association and study, written to the audit trail when the association ends.
    private let received = NIOLockedValueBox<[UInt64: [String: ReceivedStudy]]>([:])
    /// Per association, the size of its last instance (how the next one is written).
    private let sizeHints = NIOLockedValueBox<[UInt64: ReceptionSizeHint]>([:])

    struct ReceivedStudy {
        var patient: AuditEvent.Patient
        var count = 0
    }

    public init(policy: AssociationPolicy, spool: Spool, logger: Logger, community: CommunityProxy? = nil,
                audit: AuditTrail? = nil, instanceStored: @escaping @Sendable () -> Void = {}) {
        self.audit = audit
        self.instanceStored = instanceStored
        self.community = community
        self.policy = NIOLockedValueBox(policy)
        self.spool = spool
        self.logger = logger
    }

    /// Replaces the policy for new associations (configuration reload).
    public func update(policy: AssociationPolicy) {
        self.policy.withLockedValue { $0 = policy }
    }

    public var activeAssociations: Int { active.withLockedValue { $0 } }

    public func associationRequested(_ request: AssociateRQ, peer: String) -> AssociationDecision {
        let policy = self.policy.withLockedValue { $0 }
        // Count and decide under one lock so that concurrent requests cannot both take the last slot.
        let decision = active.withLockedValue { count in
            let decision = policy.decide(request, peer: peer, activeAssociations: count)
            if case .accept = decision { count += 1 }
            return decision
        }
        switch decision {
        case .accept: metrics.associationsAccepted.increment()
        case .reject: metrics.associationsRejected.increment()
        }
        let refusal = policy.callingHostRefusal(callingAETitle: request.callingAETitle, peer: peer)
        if let refusal {
            logger.warning("association refused: \(refusal)", metadata: [
                "calling_ae": "\(request.callingAETitle)", "peer": "\(peer)",
            ])
        }
        audit?.post(Self.auditEvent(request, peer: peer, decision: decision, refusal: refusal))
        return decision
    }

    /// A refused TLS handshake is a node-authentication failure like a refused calling host:
    /// the same Security Alert row, the address and the reason (the log line is DICOMNetwork's).
    public func secureConnectionRefused(peer: String, reason: String) {
        metrics.associationsRejected.increment()
        audit?.post(AuditEvent(action: .associationRejected, outcome: .minorFailure, outcomeDescription: "TLS: \(reason)",
                               actor: .init(address: peer), details: ["transport": "TLS"]))
    }

    public func associationEnded(_ association: AssociationContext, reason: AssociationEndReason) {
        active.withLockedValue { $0 -= 1 }
        receptionEnded(association)
        if case .aborted(let why) = reason {
            metrics.associationsAborted.increment()
            logger.info("association ended by abort", metadata: [
                "association": "\(association.id)", "calling_ae": "\(association.callingAETitle)", "reason": "\(why)",
            ])
        }
    }

    // MARK: Retrievals of the migration (C-GET: Passerelle is the requestor)

    /// The reception of one C-STORE: on an association to the storage AE title, or a C-GET
    /// sub-operation of a migration (the PACS as calling AE title).
    func reception(_ request: CStoreRQ, transferSyntax: String,
                   association: AssociationContext) -> any StoreReceiver {
        var logger = self.logger
        logger[metadataKey: "association"] = "\(association.id)"
        return InstanceReception(spool: spool, request: request, transferSyntaxUID: transferSyntax,
                                 callingAETitle: association.callingAETitle, logger: logger, metrics: metrics,
                                 sizeHint: sizeHint(association.id),
                                 onStored: instanceStored, onReceived: receivedTally(association.id))
    }

    /// An association that stored instances ended (or the C-GET one of a retrieval): what it
    /// stored is audited, per study.
    func receptionEnded(_ association: AssociationContext) {
        sizeHints.withLockedValue { _ = $0.removeValue(forKey: association.id) }
        if let audit, let studies = received.withLockedValue({ $0.removeValue(forKey: association.id) }) {
            let actor = AuditEvent.Actor(aeTitle: association.callingAETitle, address: association.peer,
                                         userName: association.userName)
            audit.post(studies.sorted { $0.key < $1.key }.map { study, tally in
                AuditEvent(action: .instancesReceived, actor: actor, destination: association.calledAETitle,
                           patients: [tally.patient], studies: [study], details: ["count": String(tally.count)])
            })
        }
    }

    public func verify(_ association: AssociationContext) -> DIMSEStatus {
        .success
    }

    public func beginQueryRetrieve(_ request: QueryRetrieveRequest, association: AssociationContext,
                                   responder: QueryRetrieveResponder) -> any QueryRetrieveOperation {
        guard let community else {
            responder.respond(QueryRetrieveResponder.message(for: request, status: .sopClassNotSupported,
                                                             errorComment: "no [[community]] is configured"))
            return FinishedOperation()
        }
        return community.begin(request, association: association, responder: responder)
    }

    public func beginStore(_ request: CStoreRQ, transferSyntax: String,
                           association: AssociationContext) -> any StoreReceiver {
        if community?.calledAETitles.contains(association.calledAETitle) == true {
            // Storage contexts of a search folder carry the SCP role only (C-GET).
            return RefusingStoreReceiver(StoreOutcome(status: .sopClassNotSupported,
                                                      errorComment: "send to the storage AE title, not a community's"))
        }
        return reception(request, transferSyntax: transferSyntax, association: association)
    }
}
