import Audit
import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Spool

/// The audit trail (docs/audit.md): records each act as one hash-chained row of the spool's
/// `audit` table and wakes the ``AuditSender``. Recording never throws into the caller: a
/// failure is logged and counted (`passerelle_audit_failures_total`).
public final class AuditTrail: Sendable {
    private let database: SpoolDatabase
    private let threadPool: NIOThreadPool
    private let logger: Logger
    /// The issuer of this site's patient IDs, for patients received without one.
    let siteIssuer: String
    public let isEnabled: Bool
    let recorded = Wakeup()
    private let failures = Counter(label: "passerelle_audit_failures_total")

    public init(database: SpoolDatabase, threadPool: NIOThreadPool, enabled: Bool, siteIssuer: String?,
                logger: Logger) {
        self.database = database
        self.threadPool = threadPool
        self.isEnabled = enabled
        self.siteIssuer = siteIssuer ?? ""
        self.logger = logger
    }

    /// Records an act (waits for the row to be committed; not cancellable, so a cancelled
    /// request still leaves its trace).
    public func record(_ event: AuditEvent) async {
        await record([event])
    }

    /// Several acts in one transaction (one sync), waiting like ``record(_:)``.
    public func record(_ events: [AuditEvent]) async {
        guard isEnabled, !events.isEmpty else { return }
        do {
            try await threadPool.runIfActive(eventLoop: MultiThreadedEventLoopGroup.singleton.any()) {
                self.recordNow(events)
            }.get()
        } catch {
            for event in events { fail(error, event) }
        }
    }

    /// Records an act from code already on the thread pool (blocks for one commit).
    public func recordNow(_ event: AuditEvent) {
        recordNow([event])
    }

    /// Several acts in one transaction (one sync).
    public func recordNow(_ events: [AuditEvent]) {
        guard isEnabled, !events.isEmpty else { return }
        do {
            _ = try database.appendAudit(events.map(Self.draft), genesis: AuditChain.genesis) { previous, draft in
                AuditChain.hash(previous: previous, content: draft.content)
            }
            recorded.signal()
        } catch {
            for event in events { fail(error, event) }
        }
    }

    /// Records an act without waiting, for callers on an event loop.
    public func post(_ event: AuditEvent) {
        post([event])
    }

    /// Several acts without waiting, in one transaction.
    public func post(_ events: [AuditEvent]) {
        guard isEnabled, !events.isEmpty else { return }
        threadPool.submit { state in
            if case .active = state {
                self.recordNow(events)
            } else {
                for event in events { self.fail(CancellationError(), event) }
            }
        }
    }

    /// The row's content and the columns the export searches by.
    static func draft(_ event: AuditEvent) -> AuditDraft {
        let content = AuditChain.canonicalContent(event)
        var actors: [String] = []
        if let ae = event.actor.aeTitle { actors.append(ae) }
        if let user = event.actor.userName { actors.append(user) }
        return AuditDraft(at: AuditChain.timestamp(event.at), action: event.action.rawValue,
                          outcome: event.outcome.rawValue, content: content,
                          patients: event.patients.map { AuditPatientKey(id: $0.id, issuer: $0.issuer) },
                          studies: event.studies, actors: actors)
    }

    private func fail(_ error: any Error, _ event: AuditEvent) {
        failures.increment()
        logger.error("audit row not recorded", metadata: [
            "action": "\(event.action.rawValue)", "error": "\(error)",
            "studies": "\(event.studies.joined(separator: ","))",
        ])
    }

    /// A patient as received: the data set's issuer, else the site's.
    func patient(id: String, issuer: String) -> AuditEvent.Patient {
        AuditEvent.Patient(id: id, issuer: issuer.isEmpty ? siteIssuer : issuer)
    }
}
