import Foundation

/// Group commit for the durability contract: receptions that finish at the same moment share
/// one fsync per store directory and one SQLite transaction (one WAL sync) instead of paying
/// for theirs one after the other.
///
/// The first thread to arrive leads: it takes every waiting entry, makes the group durable
/// and wakes the others; entries arriving meanwhile form the next group. Nobody waits for a
/// timer, so a lone reception commits at once. Callers are thread-pool threads (blocking).
final class GroupCommit: @unchecked Sendable {
    /// One instance waiting to be made durable and indexed; `result` is set by the leader.
    final class Ticket {
        let instance: NewInstance
        let directory: String
        var result: Result<RecordOutcome, any Error>?

        init(instance: NewInstance, directory: String) {
            self.instance = instance
            self.directory = directory
        }
    }

    private let condition = NSCondition()
    private var waiting: [Ticket] = []
    private var leading = false
    private let database: SpoolDatabase
    private let files: FileStore

    init(database: SpoolDatabase, files: FileStore) {
        self.database = database
        self.files = files
    }

    /// Returns once `instance` (already renamed into `directory`) is durable and indexed.
    func commit(_ instance: NewInstance, directory: String) throws -> RecordOutcome {
        let ticket = Ticket(instance: instance, directory: directory)
        condition.lock()
        waiting.append(ticket)
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
        var ready: [Ticket] = []
        var directoryErrors: [String: any Error] = [:]
        for directory in Set(group.map(\.directory)) {
            do {
                try FileStore.syncDirectory(directory)
            } catch {
                directoryErrors[directory] = error
            }
        }
        for ticket in group {
            if let error = directoryErrors[ticket.directory] {
                ticket.result = .failure(error)
            } else {
                ready.append(ticket)
            }
        }
        guard !ready.isEmpty else { return }
        let files = self.files
        do {
            let outcomes = try database.record(ready.map(\.instance)) { instance, currentPath, currentOffset in
                currentPath == instance.filePath
                    || files.dataSetsEqual(currentPath, offset: currentOffset, instance.filePath, offset: instance.dataSetOffset)
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
