import Foundation
import NIOCore

extension Spool {
    /// Journals a batch of accepted HL7 messages and returns once they are all durable: each
    /// message's place, or why it could not be made durable. `indexed` is called afterwards on
    /// the index queue, per message (its index in `messages`): `true` when its row is new.
    public func journalHL7(batch messages: [NewHL7Message],
                           indexed: @escaping @Sendable (Int, Result<Bool, any Error>) -> Void) -> [Result<JournalLocation, any Error>] {
        let records = messages.enumerated().map { index, message in
            GroupCommit.BatchRecord(
                header: JournalRecordHeader(type: .hl7Message, payloadLength: message.message.count,
                                            checksum: .crc32c(CRC32C.checksum(message.message)), fields: message.journalFields),
                payload: [ByteBuffer(bytes: message.message)],
                work: { .hl7(message, $0) },
                indexed: { result in
                    indexed(index, result.map { outcome in
                        if case .duplicate = outcome { return false }
                        return true
                    })
                })
        }
        return groupCommit.commit(batch: records)
    }

    /// Indexes an HL7 message found by replay and moves its segment's checkpoint past it.
    /// Returns false when it was already indexed.
    public func indexReplayedHL7(_ record: JournalRecord) throws -> Bool {
        let segment = try JournalSegment.open(root: files.root, relativePath: record.location.relativePath)
        let payload = try segment.read(record.location.payloadLength, at: record.location.payloadOffset)
        let message = try NewHL7Message(fields: record.header.fields, message: payload)
        let outcome = try database.recordJournaled([.hl7(message, record.location)],
                                                   checkpoints: [record.location.relativePath: record.location.end]) { _, _ in false }[0].get()
        if case .duplicate = outcome { return false }
        return true
    }
}
