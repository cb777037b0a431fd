import Audit
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import Spool

/// Sends the audit rows to the ATNA repository in id order, each as a DICOM audit message in
/// an RFC 5424 record; while the repository is down rows wait in the spool (the outbox
/// cursor) and go later, none dropped. Logs the chain head every 5 minutes. Records the
/// application's stop (`GatewayRuntime` records its start, before anything else).
public final class AuditSender: Service, Sendable {
    struct State {
        var lastSentAt: Date?
        var lastError: (at: Date, message: String)?
    }

    private let trail: AuditTrail
    private let database: SpoolDatabase
    private let threadPool: NIOThreadPool
    private let client: SyslogClient?
    private let source: DICOMAuditMessage.Source
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    static let headInterval: TimeInterval = 300
    static let batch = 100
    static let backoffMinimum: Duration = .milliseconds(500)
    static let backoffMaximum: Duration = .seconds(30)
    /// How long a stop waits for the last rows (the application stop among them) to be sent.
    static let flushOnStop: Duration = .seconds(3)

    public init(trail: AuditTrail, database: SpoolDatabase, threadPool: NIOThreadPool,
                configuration: GatewayConfiguration, logger: Logger) throws {
        self.trail = trail
        self.database = database
        self.threadPool = threadPool
        self.client = try configuration.audit.repository.map { try SyslogClient(repository: $0) }
        let host = ProcessInfo.processInfo.hostName
        self.source = DICOMAuditMessage.Source(
            sourceID: configuration.site.emitter ?? host, enterpriseSiteID: configuration.site.id.map(String.init),
            aeTitle: configuration.dicom.aeTitle, hostName: host,
            processID: String(ProcessInfo.processInfo.processIdentifier))
        self.logger = logger
    }

    public var repository: AuditRepository? { client?.repository }

    public func run() async throws {
        guard trail.isEnabled else {
            logger.warning("audit.enabled is false: acts are not recorded (for measurements only)")
            // A service that returns early stops the whole group: wait for the stop like the others.
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown { await self.loop() }
        await trail.record(AuditEvent(action: .applicationStop, actor: .gateway))
        // Bounded: a repository that is down keeps these rows for the next start.
        await withTaskGroup(of: Void.self) { group in
            group.addTask { _ = await self.sendQueued() }
            group.addTask { try? await Task.sleep(for: Self.flushOnStop) }
            await group.next()
            group.cancelAll()
        }
        logHead()
        await client?.close()
    }

    private func loop() async {
        var delay = Self.backoffMinimum
        var lastHead = Date.distantPast
        while !Task.isCancelled {
            if Date().timeIntervalSince(lastHead) >= Self.headInterval {
                lastHead = Date()
                logHead()
            }
            if await sendQueued() {
                delay = Self.backoffMinimum
                await trail.recorded.wait(upTo: .seconds(Int64(Self.headInterval)))
            } else {
                // New rows do not cut the backoff short: they wait their turn in the outbox.
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, Self.backoffMaximum)
            }
        }
    }

    /// Runs a spool call on the thread pool (its future, so a stop does not drop a cursor update).
    private func spool<T: Sendable>(_ body: @escaping @Sendable (SpoolDatabase) throws -> T) async throws -> T {
        let database = self.database
        return try await threadPool.runIfActive(eventLoop: MultiThreadedEventLoopGroup.singleton.any()) {
            try body(database)
        }.get()
    }

    /// Sends every queued row; false when the repository could not take them all.
    func sendQueued() async -> Bool {
        guard let client else {
            // No repository: nothing is queued (rows stay in the spool for export and verify).
            _ = try? await spool { database in
                if let head = try database.auditHead() { try database.setAuditSentThrough(head.id) }
            }
            return true
        }
        while !Task.isCancelled {
            let rows: [AuditRecord], head: AuditRecord?
            do {
                (rows, head) = try await spool { database in
                    let sent = try database.auditSentThrough()
                    return (try database.auditRecords(after: sent, limit: Self.batch), try database.auditHead())
                }
            } catch {
                logger.error("audit rows unreadable", metadata: ["error": "\(error)"])
                return false
            }
            guard !rows.isEmpty, let head else { return true }
            var sentThrough: Int64?
            var failure: (any Error)?
            for row in rows where failure == nil && !Task.isCancelled {
                do {
                    try await client.send(message(for: row, head: head))
                    sentThrough = row.id
                } catch {
                    failure = error
                }
            }
            if let sentThrough {
                state.withLockedValue { $0.lastSentAt = Date() }
                do {
                    try await spool { try $0.setAuditSentThrough(sentThrough) }
                } catch {
                    // Sent again after a restart: at least once, never lost.
                    logger.error("audit outbox cursor not saved", metadata: ["error": "\(error)"])
                }
            }
            if let failure {
                let wasFailing = state.withLockedValue { state in
                    defer { state.lastError = (Date(), "\(failure)") }
                    return state.lastError.map { error in state.lastSentAt.map { $0 < error.at } ?? true } ?? false
                }
                if !wasFailing {
                    logger.warning("audit repository unreachable: messages wait in the spool", metadata: [
                        "repository": "\(client.repository)", "error": "\(failure)"])
                }
                return false
            }
        }
        return false
    }

    /// The syslog record of one row: its DICOM audit message, and the chain head in the structured data.
    func message(for row: AuditRecord, head: AuditRecord) -> SyslogMessage {
        let event = AuditChain.event(fromCanonicalContent: row.content)
            ?? AuditEvent(action: .applicationStart, outcome: .majorFailure, outcomeDescription: "unreadable audit row",
                          actor: .gateway)
        return SyslogMessage(
            severity: SyslogMessage.severity(for: event.outcome), timestamp: event.at, hostName: source.hostName,
            processID: source.processID,
            parameters: [("seq", String(row.id)), ("hash", row.hash), ("head", head.hash), ("headSeq", String(head.id))],
            message: DICOMAuditMessage(event, source: source).xml)
    }

    private func logHead() {
        guard let head = try? database.auditHead() else { return }
        logger.notice("audit chain head", metadata: ["audit_head": "\(head.hash)", "audit_seq": "\(head.id)"])
    }

    /// For `status`: queue depth, head, last error.
    func status() throws -> StatusReport.Audit {
        let head = try database.auditHead()
        let state = self.state.withLockedValue { $0 }
        let failing = state.lastError.map { error in state.lastSentAt.map { $0 < error.at } ?? true } ?? false
        return StatusReport.Audit(
            enabled: trail.isEnabled, repository: client.map { "\($0.repository)" },
            queueDepth: client == nil ? 0 : try database.auditQueueDepth(), headSeq: head?.id, head: head?.hash,
            lastSentAt: state.lastSentAt,
            lastError: failing ? state.lastError.map { .init(at: $0.at, message: $0.message) } : nil)
    }
}
