import Foundation
import NIOCore

/// Group commit for the durability contract: one `fdatasync` of the journal covers every
/// record appended since the previous one, across associations; then the records are indexed
/// in one SQLite transaction that does not sync (the journal is replayed after a power cut),
/// and only then are their senders answered.
///
/// The first thread to arrive leads: it takes every waiting record, syncs and indexes them,
/// and wakes the others; records appended meanwhile form the next group. Nobody waits for a
/// timer, so a lone reception commits at once. Callers are thread-pool threads (blocking).
final class GroupCommit: @unchecked Sendable {
    /// What a record asks of the index once it is durable.
    enum Work {
        /// A received instance.
        case index(NewInstance)
        /// A survivor copied forward out of a segment being reclaimed: its row moves `to` the copy.
        case relocate(instanceID: Int64, from: StoredLocation, to: StoredLocation)
    }

    /// One record waiting to be made durable and indexed; `result` is set by the leader.
    final class Ticket {
        let work: Work
        let segment: JournalSegment
        let location: JournalLocation
        var result: Result<RecordOutcome, any Error>?

        init(work: Work, segment: JournalSegment, location: JournalLocation) {
            self.work = work
            self.segment = segment
            self.location = location
        }
    }

    private let condition = NSCondition()
    private var waiting: [Ticket] = []
    private var leading = false
    /// Serializes appends with their place in `waiting`: a group is a run of consecutive
    /// records, so its last one is the segment's new checkpoint.
    private let appendLock = NSLock()
    private let database: SpoolDatabase
    private let journal: Journal
    private let root: String

    init(database: SpoolDatabase, journal: Journal, root: String) {
        self.database = database
        self.journal = journal
        self.root = root
    }

    /// Appends a complete record to the active segment and returns once it is durable and indexed.
    func commit(header: JournalRecordHeader, payload: [ByteBuffer],
                work: (JournalLocation) -> Work) throws -> (RecordOutcome, JournalLocation) {
        appendLock.lock()
        let ticket: Ticket
        do {
            let (segment, location) = try journal.append(header: try header.encoded(), payload: payload,
                                                         payloadLength: header.payloadLength)
            ticket = Ticket(work: work(location), segment: segment, location: location)
        } catch {
            appendLock.unlock()
            throw error
        }
        condition.lock()
        waiting.append(ticket)
        appendLock.unlock()
        return (try wait(for: ticket), ticket.location)
    }

    /// Finishes a streamed record and returns once it is durable and indexed.
    func commit(_ writer: JournalRecordWriter, header: JournalRecordHeader,
                work: (JournalLocation) -> Work) throws -> (RecordOutcome, JournalLocation) {
        let (segment, location): (JournalSegment, JournalLocation)
        do {
            (segment, location) = try writer.finish(header: header)
        } catch {
            writer.discard()
            throw error
        }
        let ticket = Ticket(work: work(location), segment: segment, location: location)
        condition.lock()
        waiting.append(ticket)
        return (try wait(for: ticket), location)
    }

    /// Finishes a record written at the journal's head and returns once it is durable and
    /// indexed. The head is released only once the record has its place among the waiting
    /// ones, so the head segment's records are committed in their order.
    func commit(_ writer: JournalHeadWriter, header: JournalRecordHeader,
                work: (JournalLocation) -> Work) throws -> (RecordOutcome, JournalLocation) {
        let (segment, location): (JournalSegment, JournalLocation)
        do {
            (segment, location) = try writer.finish(header: header)
        } catch {
            writer.discard()
            throw error
        }
        let ticket = Ticket(work: work(location), segment: segment, location: location)
        condition.lock()
        waiting.append(ticket)
        writer.release()
        return (try wait(for: ticket), location)
    }

    /// Called with `condition` locked and `ticket` waiting.
    private func wait(for ticket: Ticket) throws -> RecordOutcome {
        while ticket.result == nil {
            if leading {
                condition.wait()
                continue
            }
            leading = true
            let group = waiting
            waiting = []
            condition.unlock()
            perform(group)
            condition.lock()
            leading = false
            condition.broadcast()
        }
        condition.unlock()
        // The leader wrote the result before taking the lock to wake us: it is visible here.
        return try ticket.result!.get()
    }

    /// Sets every ticket's result; never throws.
    private func perform(_ group: [Ticket]) {
        defer { for ticket in group { journal.settled(ticket.location.relativePath) } }
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
        var ready: [Ticket] = []
        var checkpoints: [String: Int] = [:]
        for ticket in group {
            if let error = syncErrors[ObjectIdentifier(ticket.segment)] {
                ticket.result = .failure(error)
            } else {
                ready.append(ticket)
                checkpoints[ticket.location.relativePath] = max(checkpoints[ticket.location.relativePath] ?? 0,
                                                               ticket.location.end)
            }
        }
        guard !ready.isEmpty else { return }
        let root = self.root
        do {
            let outcomes = try database.recordJournaled(ready.map(\.work), checkpoints: checkpoints) { current, new in
                StoredLocation.sameDataSet(current, new, root: root)
            }
            for (ticket, outcome) in zip(ready, outcomes) {
                ticket.result = outcome
            }
        } catch {
            for ticket in ready {
                ticket.result = .failure(error)
            }
        }
    }
}
