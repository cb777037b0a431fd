import Dispatch
import Foundation
import GRDB
import NIOCore

/// Group commit for the durability contract: one `fdatasync` of the journal covers every
/// record appended since the previous one, across associations; its senders are answered as
/// soon as it returns. The records are then indexed, in order, one SQLite transaction per
/// group that does not sync (the journal is replayed after a power cut), on a serial queue of
/// their own: the index is off the acknowledgement's path.
///
/// The first thread to arrive leads: it takes every waiting record, syncs them, hands them to
/// the index queue and wakes the others; records appended meanwhile form the next group.
/// Nobody waits for a timer, so a lone reception commits at once. Callers are thread-pool
/// threads (blocking).
final class GroupCommit: @unchecked Sendable {
    /// What a record asks of the index once it is durable.
    enum Work {
        /// A received instance.
        case index(NewInstance)
        /// A survivor copied forward out of a segment being reclaimed: its row moves `to` the copy.
        case relocate(instanceID: Int64, from: StoredLocation, to: StoredLocation)
        /// An accepted HL7 message.
        case hl7(NewHL7Message, JournalLocation)
    }

    /// One record waiting to be made durable and indexed. Its mutable state is guarded by
    /// `condition`.
    final class Ticket: @unchecked Sendable {
        let work: Work
        let segment: JournalSegment
        let location: JournalLocation
        /// Called on the index queue with the row's outcome.
        let indexed: (@Sendable (Result<RecordOutcome, any Error>) -> Void)?
        /// Indexed at once, not gathered over `indexDelay`: someone waits for the row, or reads
        /// it as soon as the sender is answered (an HL7 message's `hl7 show` after its AA).
        let urgent: Bool
        /// Set by the leader after the sync, and by the index queue: under `condition`.
        var durable: Result<Void, any Error>?
        var result: Result<RecordOutcome, any Error>?

        init(work: Work, segment: JournalSegment, location: JournalLocation,
             indexed: (@Sendable (Result<RecordOutcome, any Error>) -> Void)?, urgent: Bool? = nil) {
            self.urgent = urgent ?? (indexed == nil)
            self.work = work
            self.segment = segment
            self.location = location
            self.indexed = indexed
        }
    }

    /// What `commit` waits for.
    enum Wait {
        /// The record is durable; `indexed` is called later, on the index queue.
        case durable(indexed: @Sendable (Result<RecordOutcome, any Error>) -> Void)
        /// The record is durable and indexed: `commit` returns the row's outcome.
        case indexed
    }

    private let condition = NSCondition()
    private var waiting: [Ticket] = []
    private var leading = false
    /// Records synced and not yet indexed: beyond `maximumUnindexed`, the next sync waits
    /// (the index queue cannot keep up; memory stays bounded).
    private var unindexed = 0
    /// Durable groups waiting for the index queue, in sync order, and whether a drain is
    /// scheduled (under `condition`).
    private var toIndex: [(indexable: [Ticket], failed: [Ticket])] = []
    private var indexScheduled = false
    /// The scheduled drain waits `indexDelay`: nobody waits for these rows (their senders were
    /// answered once durable), so a few milliseconds gather the groups of a steady flow — one
    /// message or instance per sync at low rates — into one transaction instead of one each.
    /// A record someone waits for (`Wait.indexed`), or an HL7 message, is indexed at once.
    private var indexDeferred = false
    static let indexDelay: DispatchTimeInterval = .milliseconds(20)
    private let maximumUnindexed = 4096
    /// Serializes appends with their place in `waiting`: a group is a run of consecutive
    /// records, so its last one is the segment's new checkpoint.
    private let appendLock = NSLock()
    private let indexQueue = DispatchQueue(label: "passerelle.spool.index")
    /// Records durable and acknowledged whose index transaction failed for want of room
    /// (SQLite full, or an I/O error under it): indexed again, first, every `retryDelay`
    /// until it succeeds (index queue only). Meanwhile `indexWaitsForRoom` is set, and the
    /// spool refuses receptions (`Spool.hasRoom`).
    private var retrying: [Ticket] = []
    static let retryDelay: DispatchTimeInterval = .seconds(1)
    /// Under `condition`.
    private var waitsForRoom = false

    /// Whether received records wait for room to be indexed (see `retrying`).
    var indexWaitsForRoom: Bool {
        condition.lock()
        defer { condition.unlock() }
        return waitsForRoom
    }
    private let database: SpoolDatabase
    private let journal: Journal
    private let root: String

    init(database: SpoolDatabase, journal: Journal, root: String) {
        self.database = database
        self.journal = journal
        self.root = root
    }

    /// Appends a complete record to the active segment and returns once it is durable (and
    /// indexed, per `wait`).
    func commit(header: JournalRecordHeader, payload: [ByteBuffer], wait: Wait,
                work: (JournalLocation) -> Work) throws -> (RecordOutcome?, JournalLocation) {
        appendLock.lock()
        let ticket: Ticket
        do {
            let (segment, location) = try journal.append(header: try header.encoded(), payload: payload,
                                                         payloadLength: header.payloadLength)
            ticket = Ticket(work: work(location), segment: segment, location: location, indexed: wait.callback)
        } catch {
            appendLock.unlock()
            throw error
        }
        condition.lock()
        waiting.append(ticket)
        appendLock.unlock()
        return (try self.wait(for: ticket, until: wait), ticket.location)
    }

    /// A record of a batch (`commit(batch:)`).
    struct BatchRecord {
        var header: JournalRecordHeader
        var payload: [ByteBuffer]
        var work: (JournalLocation) -> Work
        var indexed: @Sendable (Result<RecordOutcome, any Error>) -> Void
    }

    /// Appends a batch of complete records, consecutively, and returns once they are all
    /// durable: one caller, one wait, one sync for all (a busy HL7 listener hands its messages
    /// over this way rather than one thread per message). Each record's result is its place,
    /// or why it could not be appended or synced.
    func commit(batch: [BatchRecord]) -> [Result<JournalLocation, any Error>] {
        appendLock.lock()
        var tickets: [Ticket?] = []
        var results: [Result<JournalLocation, any Error>] = []
        for record in batch {
            do {
                let (segment, location) = try journal.append(header: try record.header.encoded(), payload: record.payload,
                                                             payloadLength: record.header.payloadLength)
                tickets.append(Ticket(work: record.work(location), segment: segment, location: location,
                                      indexed: record.indexed, urgent: true))
                results.append(.success(location))
            } catch {
                tickets.append(nil)
                results.append(.failure(error))
            }
        }
        condition.lock()
        let appended = tickets.compactMap { $0 }
        waiting += appended
        appendLock.unlock()
        guard let last = appended.last else {
            condition.unlock()
            return results
        }
        // Groups are runs of consecutive records synced in order: the last durable, all are.
        _ = try? wait(for: last, until: .durable(indexed: { _ in }))
        condition.lock()
        for (index, ticket) in tickets.enumerated() {
            if let ticket, case .failure(let error) = ticket.durable! { results[index] = .failure(error) }
        }
        condition.unlock()
        return results
    }

    /// Finishes a streamed record and returns once it is durable (and indexed, per `wait`).
    func commit(_ writer: JournalRecordWriter, header: JournalRecordHeader, wait: Wait,
                work: (JournalLocation) -> Work) throws -> (RecordOutcome?, JournalLocation) {
        try commitWritten(finish: { try writer.finish(header: header) }, discard: writer.discard, enqueued: {},
                          wait: wait, work: work)
    }

    /// Finishes a record written at the journal's head and returns once it is durable (and
    /// indexed, per `wait`). The head is released only once the record has its place among
    /// the waiting ones, so the head segment's records are committed in their order.
    func commit(_ writer: JournalHeadWriter, header: JournalRecordHeader, wait: Wait,
                work: (JournalLocation) -> Work) throws -> (RecordOutcome?, JournalLocation) {
        try commitWritten(finish: { try writer.finish(header: header) }, discard: writer.discard,
                          enqueued: writer.release, wait: wait, work: work)
    }

    /// A record whose payload is already written: `finish` writes its header (`discard` drops
    /// it if that fails), then it joins the waiting records (`enqueued` runs under the lock).
    private func commitWritten(finish: () throws -> (JournalSegment, JournalLocation), discard: () -> Void,
                               enqueued: () -> Void, wait: Wait,
                               work: (JournalLocation) -> Work) throws -> (RecordOutcome?, JournalLocation) {
        let (segment, location): (JournalSegment, JournalLocation)
        do {
            (segment, location) = try finish()
        } catch {
            discard()
            throw error
        }
        let ticket = Ticket(work: work(location), segment: segment, location: location, indexed: wait.callback)
        condition.lock()
        waiting.append(ticket)
        enqueued()
        return (try self.wait(for: ticket, until: wait), location)
    }

    /// Returns once every record made durable before the call is indexed (a deferred drain
    /// is done now).
    func waitForIndex() {
        indexQueue.sync { drainIndex() }
    }

    /// Called with `condition` locked and `ticket` waiting.
    private func wait(for ticket: Ticket, until wait: Wait) throws -> RecordOutcome? {
        while ticket.durable == nil {
            if leading || unindexed > maximumUnindexed {
                condition.wait()
                continue
            }
            leading = true
            let group = waiting
            waiting = []
            condition.unlock()
            let ready = sync(group)
            condition.lock()
            for (ticket, result) in ready { ticket.durable = result }
            let indexable = ready.filter { (try? $0.1.get()) != nil }.map(\.0)
            unindexed += indexable.count
            leading = false
            condition.broadcast()
            if indexable.isEmpty {
                for ticket in group { journal.settled(ticket.location.relativePath) }
            } else {
                // Handed over under the lock: groups reach the queue in the order of their syncs.
                // Groups synced while the queue is busy are indexed together, in one
                // transaction: under load the index costs one commit per burst, not per sync.
                let failed = group.filter { ticket in !indexable.contains { $0 === ticket } }
                toIndex.append((indexable, failed))
                let urgent = indexable.contains(where: \.urgent)
                if !indexScheduled || (indexDeferred && urgent) {
                    indexScheduled = true
                    indexDeferred = !urgent
                    if urgent {
                        indexQueue.async { [self] in drainIndex() }
                    } else {
                        indexQueue.asyncAfter(deadline: .now() + Self.indexDelay) { [self] in drainIndex() }
                    }
                }
            }
        }
        if case .failure(let error) = ticket.durable! {
            condition.unlock()
            throw error
        }
        guard case .indexed = wait else {
            condition.unlock()
            return nil
        }
        while ticket.result == nil { condition.wait() }
        condition.unlock()
        return try ticket.result!.get()
    }

    /// Syncs every segment of the group; never throws.
    private func sync(_ group: [Ticket]) -> [(Ticket, Result<Void, any Error>)] {
        var syncErrors: [ObjectIdentifier: any Error] = [:]
        var segments: [ObjectIdentifier: JournalSegment] = [:]
        for ticket in group { segments[ObjectIdentifier(ticket.segment)] = ticket.segment }
        for (id, segment) in segments {
            do {
                try segment.sync()
            } catch {
                syncErrors[id] = error
            }
        }
        return group.map { ticket in
            (ticket, syncErrors[ObjectIdentifier(ticket.segment)].map { .failure($0) } ?? .success(()))
        }
    }

    /// On the index queue: everything synced so far (after what waits for room), one transaction.
    private func drainIndex() {
        condition.lock()
        let groups = toIndex
        toIndex = []
        indexScheduled = false
        indexDeferred = false
        condition.unlock()
        guard !groups.isEmpty || !retrying.isEmpty else { return }
        index(groups.flatMap(\.indexable), settling: groups.flatMap(\.failed))
    }

    /// On the index queue: one transaction for durable groups (after those waiting for room),
    /// their checkpoints moved past them. A failure for want of room keeps the records whose
    /// senders were already answered for `retryLater()`; any other failure leaves them to the
    /// replay at the next start (they are durable).
    private func index(_ fresh: [Ticket], settling failed: [Ticket]) {
        let group = retrying + fresh
        retrying = []
        guard !group.isEmpty else {
            for ticket in failed { journal.settled(ticket.location.relativePath) }
            return
        }
        var checkpoints: [String: Int] = [:]
        for ticket in group {
            checkpoints[ticket.location.relativePath] = max(checkpoints[ticket.location.relativePath] ?? 0,
                                                           ticket.location.end)
        }
        let root = self.root
        var outcome: (results: [Result<RecordOutcome, any Error>], keep: [Ticket]) = ([], [])
        do {
            outcome.results = try database.recordJournaled(group.map(\.work), checkpoints: checkpoints) { current, new in
                StoredLocation.sameDataSet(current, new, root: root)
            }
        } catch {
            // Out of room: who waits for the row is answered now; the others are kept.
            outcome.keep = Self.wantsRoom(error) ? group.filter { $0.indexed != nil } : []
            outcome.results = group.map { _ in .failure(error) }
        }
        let keep = outcome.keep
        let done = zip(group, outcome.results).filter { ticket, _ in !keep.contains { $0 === ticket } }
        for ticket in done.map(\.0) + failed { journal.settled(ticket.location.relativePath) }
        condition.lock()
        for (ticket, result) in done { ticket.result = result }
        unindexed -= done.count
        waitsForRoom = !keep.isEmpty
        condition.broadcast()
        condition.unlock()
        for (ticket, result) in done { ticket.indexed?(result) }
        if !keep.isEmpty {
            retrying = keep
            indexQueue.asyncAfter(deadline: .now() + Self.retryDelay) { [self] in retryLater() }
        }
    }

    /// On the index queue, while records wait for room: tries them again (with whatever was
    /// synced meanwhile, though the spool refuses receptions then).
    private func retryLater() {
        if !retrying.isEmpty { drainIndex() }
    }

    /// SQLite out of room: the database or disk full, or an I/O error writing it.
    static func wantsRoom(_ error: any Error) -> Bool {
        guard let error = error as? DatabaseError else { return false }
        return error.resultCode == .SQLITE_FULL || error.resultCode == .SQLITE_IOERR
    }
}

extension GroupCommit.Wait {
    var callback: (@Sendable (Result<RecordOutcome, any Error>) -> Void)? {
        if case .durable(let indexed) = self { return indexed }
        return nil
    }
}
