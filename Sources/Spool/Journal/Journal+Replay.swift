import Crypto
import Foundation

/// A valid record found in a segment.
public struct JournalRecord: Sendable, Equatable {
    public var header: JournalRecordHeader
    public var location: JournalLocation
}

extension Journal {
    /// The valid records of a segment from `offset` on (padding records included: their
    /// payload is not checked). The scan stops at zeros (the written
    /// part ends) or at the first record whose header or payload does not check: a torn write,
    /// whose sender never got a success (records are written in order and one sync covers all
    /// those before it, so nothing acknowledged lies after it). `torn` says why, if so.
    func scan(_ relativePath: String, from start: Int) throws -> (records: [JournalRecord], torn: String?) {
        let segment = try JournalSegment.open(root: root, relativePath: relativePath)
        var records: [JournalRecord] = []
        var offset = max(start, JournalSegment.headerSize)
        while offset + JournalRecordHeader.prefixLength <= segment.capacity {
            let prefix = try segment.read(JournalRecordHeader.prefixLength, at: offset)
            let length: Int
            switch JournalRecordHeader.prefix(prefix) {
            case .end:
                return (records, nil)
            case .invalid(let reason):
                return (records, "at \(offset): \(reason)")
            case .header(let headerLength):
                length = headerLength
            }
            let header: JournalRecordHeader
            do {
                header = try JournalRecordHeader.decode(segment.read(length, at: offset))
            } catch {
                return (records, "at \(offset): \(error)")
            }
            let payloadOffset = offset + length
            guard payloadOffset + header.payloadLength <= segment.capacity else {
                return (records, "at \(offset): payload beyond the segment")
            }
            guard try header.type == .padding
                || Self.payloadMatches(header.checksum, segment: segment, from: payloadOffset, length: header.payloadLength)
            else {
                return (records, "at \(offset): payload does not match its checksum")
            }
            let location = JournalLocation(relativePath: relativePath, payloadOffset: payloadOffset,
                                           payloadLength: header.payloadLength)
            records.append(JournalRecord(header: header, location: location))
            offset = location.end
        }
        return (records, nil)
    }

    static func payloadMatches(_ checksum: PayloadChecksum, segment: JournalSegment, from offset: Int,
                               length: Int) throws -> Bool {
        var hasher = SHA256()
        var crc: UInt32 = 0
        var position = offset
        let end = offset + length
        while position < end {
            let chunk = try segment.read(min(1 << 20, end - position), at: position)
            guard !chunk.isEmpty else { break }
            switch checksum {
            case .crc32c: crc = CRC32C.update(crc, chunk)
            case .sha256: hasher.update(data: chunk)
            }
            position += chunk.count
        }
        switch checksum {
        case .crc32c(let expected): return position == end && crc == expected
        case .sha256(let expected): return position == end && hasher.finalize().hexString == expected
        }
    }
}
