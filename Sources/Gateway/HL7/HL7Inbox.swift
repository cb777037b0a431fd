import Audit
import Foundation
import HL7
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Spool

/// The listener's policy: who may connect and send, what is accepted, and the contract that
/// an AA goes out only once the message is durable in the spool's journal (the same group
/// commit as received instances). A resend of a control ID already accepted from the same
/// sender is answered with the ACK it got the first time, and journaled only once.
///
/// Frames from every connection join one queue, drained on the listener's own event loop once
/// per turn of the loop (after every readable connection was read): the drain decides,
/// journals the accepted messages with one sync, then answers them all. The listener's loop is
/// its own (`HL7Listener`): blocking it for the sync stops nothing else, and a message crosses
/// no thread on its way from the socket to the disk and back (a hand-over costs ~50 µs of
/// wake-up on these machines; a thread per message cost ~300 µs of CPU each). Under load a
/// batch grows with the connections.
final class HL7Inbox: MLLPMessageHandler, Sendable {
    private let settings: HL7Settings
    private let spool: Spool
    private let logger: Logger
    private let metrics = HL7Metrics()
    private let state = NIOLockedValueBox(State())
    private let lastAcknowledgmentID = NIOLockedValueBox<UInt64>(0)

    private struct State {
        var pending: [Pending] = []
        var draining = false
        /// Accepted messages durable but not yet indexed, by sender and control ID: their ACK.
        var unindexed: [SenderKey: [UInt8]] = [:]
        /// The hash of every accepted sender and control ID: a new control ID (the common case)
        /// is known new without a query (a query costs ~150 µs of the ACK's latency); a hash
        /// present is checked in the spool. Rebuilt at each start.
        var acceptedHashes: Set<Int> = []
    }

    private struct Pending {
        var inbound: MLLPInbound
        var peer: String
        var receivedAt: Date
        var promise: EventLoopPromise<MLLPReply>
    }

    private struct SenderKey: Hashable {
        var application: String
        var facility: String
        var controlID: String
    }

    /// Called once the row of an accepted message the bridge applies is indexed.
    private let accepted: @Sendable () -> Void

    private let audit: AuditTrail
    /// The site's issuer (`[site] issuer_of_patient_id`, `issuer_oid`): that of an identifier that names none.
    private let issuers: PatientIdentityUpdate.Issuers

    init(settings: HL7Settings, issuers: PatientIdentityUpdate.Issuers, spool: Spool, audit: AuditTrail,
         logger: Logger, accepted: @escaping @Sendable () -> Void = {}) throws {
        self.accepted = accepted
        self.audit = audit
        self.issuers = issuers
        self.settings = settings
        self.spool = spool
        self.logger = logger
        var hashes: Set<Int> = []
        try spool.database.forEachAcceptedHL7Key { application, facility, controlID in
            hashes.insert(SenderKey(application: application, facility: facility, controlID: controlID).hashValue)
        }
        state.withLockedValue { $0.acceptedHashes = hashes }
    }

    // MARK: MLLPMessageHandler

    func accepts(peer: SocketAddress?) -> Bool {
        guard !settings.allowedHosts.isEmpty else { return true }
        let address = peer?.ipAddress ?? ""
        let allowed = settings.allowedHosts.contains { $0.contains(address) }
        if !allowed {
            metrics.connectionsRefused.increment()
            logger.warning("HL7 connection refused: the peer is not in hl7.allowed_hosts", metadata: ["peer": "\(address)"])
        }
        return allowed
    }

    func handle(_ inbound: MLLPInbound, peer: SocketAddress?, connection: UInt64,
                on eventLoop: any EventLoop) -> EventLoopFuture<MLLPReply> {
        let started = ContinuousClock.now
        let promise = eventLoop.makePromise(of: MLLPReply.self)
        let startDrain = state.withLockedValue { state in
            state.pending.append(Pending(inbound: inbound, peer: peer?.ipAddress ?? "unknown", receivedAt: Date(),
                                         promise: promise))
            defer { state.draining = true }
            return !state.draining
        }
        if startDrain {
            // After the loop's other reads of this turn: they join the batch.
            eventLoop.execute { [self] in drain() }
        }
        return promise.futureResult.always { [metrics] _ in
            metrics.acknowledgmentDuration.recordNanoseconds(Int64((ContinuousClock.now - started) / .nanoseconds(1)))
        }
    }

    func connectionEvent(_ event: MLLPConnectionEvent, peer: SocketAddress?, connection: UInt64) {
        let metadata: Logger.Metadata = ["peer": "\(peer?.ipAddress ?? "unknown")", "hl7_connection": "\(connection)"]
        switch event {
        case .opened:
            metrics.connections.increment()
            logger.debug("HL7 connection opened", metadata: metadata)
        case .closed:
            logger.debug("HL7 connection closed", metadata: metadata)
        case .idleTimeout:
            logger.info("HL7 connection closed after hl7.idle_timeout without a byte", metadata: metadata)
        case .notMLLP(let seen):
            metrics.notMLLP.increment()
            logger.warning("HL7 connection closed: the peer does not speak MLLP",
                           metadata: metadata.merging(["seen": "\(seen)"]) { $1 })
        case .unfinishedFrame(let bytes):
            logger.warning("HL7 connection ended in the middle of a message (no end block): nothing acknowledged",
                           metadata: metadata.merging(["bytes": "\(bytes)"]) { $1 })
        case .error(let reason):
            logger.warning("HL7 connection failed", metadata: metadata.merging(["error": "\(reason)"]) { $1 })
        }
    }

    // MARK: Draining (on the listener's event loop, one drain at a time)

    private func drain() {
        while true {
            let batch = state.withLockedValue { state -> [Pending] in
                defer { state.pending = [] }
                if state.pending.isEmpty { state.draining = false }
                return state.pending
            }
            if batch.isEmpty { return }
            process(batch)
        }
    }

    /// What a frame becomes before the batch is journaled.
    private enum Verdict {
        case reply(MLLPReply)
        /// The same ACK as an earlier copy (in this batch: the index of the first).
        case sameAs(Int)
        case accept(NewHL7Message, SenderKey, HL7MessageHeader, HL7EncodingCharacters, HL7CharacterSet)
    }

    private func process(_ batch: [Pending]) {
        // One look at the disk per batch (statfs), for all its bytes.
        let room = spool.hasRoom(forAdditional: batch.reduce(0) { total, pending in
            if case .message(let bytes) = pending.inbound { return total + UInt64(bytes.count) }
            return total
        })
        var verdicts = batch.map { decide($0, room: room) }
        resolveResends(&verdicts, peers: batch.map(\.peer))
        // The accepted messages, journaled together.
        let accepted = verdicts.indices.compactMap { index -> (Int, NewHL7Message, SenderKey)? in
            guard case .accept(let message, let key, _, _, _) = verdicts[index] else { return nil }
            return (index, message, key)
        }
        var replies: [MLLPReply?] = verdicts.map { verdict in
            if case .reply(let reply) = verdict { return reply }
            return nil
        }
        if !accepted.isEmpty {
            let keys = accepted.map(\.2)
            let types = accepted.map(\.1.messageType)
            // Before the journal: the index queue may drop an entry as soon as it is synced.
            state.withLockedValue { state in
                for (_, message, key) in accepted {
                    state.unindexed[key] = message.acknowledgment
                    state.acceptedHashes.insert(key.hashValue)
                }
            }
            let results = spool.journalHL7(batch: accepted.map(\.1)) { [self] index, result in
                _ = state.withLockedValue { $0.unindexed.removeValue(forKey: keys[index]) }
                if case .success(true) = result, HL7Bridge.appliedTypes.contains(types[index]) { self.accepted() }
                if case .failure(let error) = result {
                    logger.error("HL7 message durable but not indexed: indexed again at the next start",
                                 metadata: ["hl7_control_id": "\(keys[index].controlID)", "error": "\(error)"])
                }
            }
            for ((index, message, key), result) in zip(accepted, results) {
                guard case .accept(_, _, let header, let encoding, let characterSet) = verdicts[index] else { continue }
                switch result {
                case .success(let location):
                    replies[index] = .acknowledge(message.acknowledgment)
                    metrics.accepted.increment()
                    logger.info("HL7 message accepted", metadata: metadata(header, peer: message.peer).merging([
                        "bytes": "\(message.message.count)", "segment": "\(location.relativePath)",
                    ]) { $1 })
                case .failure(let error):
                    _ = state.withLockedValue { $0.unindexed.removeValue(forKey: key) }
                    metrics.refused.increment()
                    logger.error("HL7 message could not be stored: answered AR",
                                 metadata: metadata(header, peer: message.peer).merging(["error": "\(error)"]) { $1 })
                    replies[index] = .acknowledge(unavailable(header, encoding: encoding, characterSet: characterSet))
                }
            }
        }
        for (index, verdict) in verdicts.enumerated() {
            if case .sameAs(let first) = verdict { replies[index] = replies[first] }
        }
        for (pending, reply) in zip(batch, replies) {
            if let reply { pending.promise.succeed(reply) } else { pending.promise.fail(HL7InboxError.noReply) }
        }
    }

    /// Resends: a control ID already accepted (indexed, or durable and waiting for its row)
    /// gets its first ACK; twice in one batch, the second copy gets the first one's.
    private func resendsChecked(_ key: SenderKey) -> [UInt8]? {
        let (unindexed, known) = state.withLockedValue { ($0.unindexed[key], $0.acceptedHashes.contains(key.hashValue)) }
        if let unindexed { return unindexed }
        guard known else { return nil }
        return try? spool.database.hl7Acknowledgment(sendingApplication: key.application, sendingFacility: key.facility,
                                                     controlID: key.controlID)
    }

    private func resolveResends(_ verdicts: inout [Verdict], peers: [String]) {
        var firstInBatch: [SenderKey: Int] = [:]
        for index in verdicts.indices {
            guard case .accept(_, let key, let header, _, _) = verdicts[index] else { continue }
            if let first = firstInBatch[key] {
                verdicts[index] = .sameAs(first)
            } else if let acknowledgment = resendsChecked(key) {
                verdicts[index] = .reply(.acknowledge(acknowledgment))
            } else {
                firstInBatch[key] = index
                continue
            }
            metrics.duplicates.increment()
            logger.info("HL7 message already accepted: answered with the same ACK, not kept again",
                        metadata: metadata(header, peer: peers[index]))
        }
    }

    private func decide(_ pending: Pending, room: Bool) -> Verdict {
        let (peer, receivedAt) = (pending.peer, pending.receivedAt)
        let bytes: [UInt8]
        switch pending.inbound {
        case .oversized(let head, let size):
            guard let header = HL7MessageHeader.bestEffort(head) else {
                logger.warning("HL7 frame over hl7.max_message_size without an MSH segment: connection closed",
                               metadata: ["peer": "\(peer)", "bytes": "\(size)"])
                return .reply(.close)
            }
            let text = "message of \(size) bytes exceeds the maximum of \(settings.maxMessageSize) bytes"
            return .reply(refuse(head, header: header, encoding: HL7EncodingCharacters(declaredIn: head) ?? .standard,
                                 characterSet: HL7CharacterSet(declaredIn: head) ?? .ascii, peer: peer,
                                 receivedAt: receivedAt, code: .applicationReject,
                                 error: .init(code: .applicationInternalError, text: text, location: nil)))
        case .message(let message):
            bytes = message
        }
        let message: HL7Message
        do {
            message = try HL7Message.parse(bytes)
        } catch {
            guard let header = HL7MessageHeader.bestEffort(bytes) else {
                metrics.notMLLP.increment()
                logger.warning("HL7 frame that is not an HL7 message (no MSH segment): connection closed",
                               metadata: ["peer": "\(peer)", "bytes": "\(bytes.count)", "reason": "\(error.reason)"])
                return .reply(.close)
            }
            return .reply(refuse(bytes, header: header, encoding: HL7EncodingCharacters(declaredIn: bytes) ?? .standard,
                                 characterSet: HL7CharacterSet(declaredIn: bytes) ?? .ascii, peer: peer,
                                 receivedAt: receivedAt, code: .applicationError,
                                 error: .init(code: error.code, text: error.reason, location: error.location)))
        }
        let header = message.header
        func refused(_ code: HL7AcknowledgmentCode, _ error: HL7Acknowledgment.ErrorDetail) -> Verdict {
            .reply(refuse(bytes, header: header, encoding: message.encoding, characterSet: message.characterSet,
                          peer: peer, receivedAt: receivedAt, code: code, error: error))
        }
        if !settings.allowedSenders.isEmpty, !settings.allowedSenders.contains(where: {
            $0.matches(application: header.sendingApplication, facility: header.sendingFacility)
        }) {
            return refused(.applicationReject, .init(
                code: .applicationInternalError,
                text: "sending application \(header.sendingApplication)^\(header.sendingFacility) is not in hl7.allowed_senders",
                location: HL7ErrorLocation(segment: "MSH", field: 3)))
        }
        if let (code, error) = HL7Conformance.refusal(of: message) { return refused(code, error) }
        if let crossing = HL7Conformance.crossIssuer(message, issuers: issuers) {
            audit.post(AuditEvent(action: .identityUpdateRefused, outcome: .minorFailure,
                                  outcomeDescription: crossing.reason,
                                  actor: .init(address: peer, userName: "HL7 \(header.sendingApplication)^\(header.sendingFacility)"),
                                  patients: crossing.patients.map { AuditEvent.Patient(id: $0.id, issuer: $0.issuer) },
                                  details: ["hl7_control_id": header.controlID]))
            return refused(.applicationError, .init(code: .applicationInternalError, text: crossing.reason,
                                                    location: HL7ErrorLocation(segment: "MRG", field: 1)))
        }
        guard room else {
            return refused(.applicationReject, .init(code: .applicationInternalError,
                                                     text: "the spool is full (below spool.min_free): send again later",
                                                     location: nil))
        }
        let key = SenderKey(application: header.sendingApplication, facility: header.sendingFacility,
                            controlID: header.controlID)
        let acknowledgment = HL7Acknowledgment.build(
            for: header, encoding: message.encoding, characterSet: message.characterSet, code: .applicationAccept,
            controlID: nextAcknowledgmentID(), timestamp: receivedAt, error: nil,
            application: settings.application, facility: settings.facility ?? "")
        let accepted = NewHL7Message(sendingApplication: key.application, sendingFacility: key.facility,
                                     controlID: key.controlID, messageType: "\(header.messageCode)^\(header.triggerEvent)",
                                     version: header.versionID, peer: peer, receivedAt: receivedAt, message: bytes,
                                     acknowledgment: acknowledgment)
        return .accept(accepted, key, header, message.encoding, message.characterSet)
    }

    /// Answers AE/AR, and keeps the message as refused (`hl7 list --failed`).
    private func refuse(_ bytes: [UInt8], header: HL7MessageHeader, encoding: HL7EncodingCharacters,
                        characterSet: HL7CharacterSet, peer: String, receivedAt: Date, code: HL7AcknowledgmentCode,
                        error: HL7Acknowledgment.ErrorDetail) -> MLLPReply {
        let acknowledgment = HL7Acknowledgment.build(
            for: header, encoding: encoding, characterSet: characterSet, code: code, controlID: nextAcknowledgmentID(),
            timestamp: receivedAt, error: error, application: settings.application, facility: settings.facility ?? "")
        metrics.refused.increment()
        logger.warning("HL7 message refused", metadata: metadata(header, peer: peer).merging([
            "ack_code": "\(code.rawValue)", "reason": "\(error.text)",
        ]) { $1 })
        let row = NewHL7Message(sendingApplication: header.sendingApplication, sendingFacility: header.sendingFacility,
                                controlID: header.controlID, messageType: "\(header.messageCode)^\(header.triggerEvent)",
                                version: header.versionID, peer: peer, receivedAt: receivedAt,
                                message: Array(bytes.prefix(64 * 1024)), acknowledgment: acknowledgment)
        do {
            try spool.database.recordRefusedHL7(row, reason: "\(code.rawValue) \(error.code.rawValue): \(error.text)")
        } catch {
            logger.error("could not record a refused HL7 message", metadata: ["error": "\(error)"])
        }
        return .acknowledge(acknowledgment)
    }

    /// AR for a message that could not be made durable: the sender keeps it and sends it again.
    private func unavailable(_ header: HL7MessageHeader, encoding: HL7EncodingCharacters,
                             characterSet: HL7CharacterSet) -> [UInt8] {
        HL7Acknowledgment.build(
            for: header, encoding: encoding, characterSet: characterSet, code: .applicationReject,
            controlID: nextAcknowledgmentID(), timestamp: Date(),
            error: .init(code: .applicationInternalError, text: "the message could not be stored: send it again later",
                         location: nil),
            application: settings.application, facility: settings.facility ?? "")
    }

    /// MSH-10 of our ACKs: unique and increasing (nanoseconds since 1970, at least one more than the last).
    private func nextAcknowledgmentID() -> String {
        let now = UInt64(Date().timeIntervalSince1970 * 1_000_000_000)
        return String(lastAcknowledgmentID.withLockedValue { last in
            last = max(last + 1, now)
            return last
        })
    }

    private func metadata(_ header: HL7MessageHeader, peer: String) -> Logger.Metadata {
        [
            "hl7_control_id": "\(header.controlID)", "hl7_message_type": "\(header.messageCode)^\(header.triggerEvent)",
            "hl7_sender": "\(header.sendingApplication)^\(header.sendingFacility)", "peer": "\(peer)",
        ]
    }
}

enum HL7InboxError: Error {
    /// Cannot happen: every verdict ends with a reply.
    case noReply
}

/// The listener's counters (Prometheus text on the status socket).
struct HL7Metrics: Sendable {
    let accepted = Counter(label: "passerelle_hl7_messages_total", dimensions: [("outcome", "accepted")])
    let duplicates = Counter(label: "passerelle_hl7_messages_total", dimensions: [("outcome", "duplicate")])
    let refused = Counter(label: "passerelle_hl7_messages_total", dimensions: [("outcome", "refused")])
    let connections = Counter(label: "passerelle_hl7_connections_total", dimensions: [("outcome", "accepted")])
    let connectionsRefused = Counter(label: "passerelle_hl7_connections_total", dimensions: [("outcome", "refused")])
    let notMLLP = Counter(label: "passerelle_hl7_connections_total", dimensions: [("outcome", "not_hl7")])
    let acknowledgmentDuration = Timer(label: "passerelle_hl7_acknowledgment_seconds")
}
