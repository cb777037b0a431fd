import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Where a record's payload lies: the segment (relative to the spool root) and the range.
public struct JournalLocation: Sendable, Equatable {
    public var relativePath: String
    public var payloadOffset: Int
    public var payloadLength: Int
    /// The first byte after the record.
    public var end: Int { payloadOffset + payloadLength }
}

/// The ingest journal: received instances appended as self-describing records to
/// preallocated segment files under `<spool>/journal/`. Segments are the store: the index
/// addresses an instance by segment and offset, readers `pread` it, and a segment is deleted
/// once no row references it (survivors of a mostly dead segment are copied forward first).
///
/// Appends go, one after the other, into the active segment; one `fdatasync` then covers every
/// record appended before it (`GroupCommit`). A record larger than `inlineLimit` is streamed
/// into a segment of its own as it arrives. Each start seals every existing segment and
/// appends to a new one, so a torn tail left by a crash is never written after.
public final class Journal: @unchecked Sendable {
    public static let directoryName = "journal"
    public static let defaultSegmentSize = 64 << 20
    /// Instances up to this size are held in memory until complete, then appended; larger
    /// ones are streamed into a segment of their own.
    public static let inlineLimit = 4 << 20
    /// Space reserved for the header of a streamed record (written once the payload is).
    static let streamedHeaderSpace = 4096

    let root: String
    public let segmentSize: Int
    /// Ready segments kept in advance by `prepareSpare()`.
    public let spareTarget: Int
    private let lock = NSLock()
    private var active: JournalSegment?
    private var activeEnd = 0
    /// The segment a reception writes into as its bytes arrive (`beginHeadRecord`), its head,
    /// and whether a reception holds it: one at a time, so its records lie back to back.
    private var headSegment: JournalSegment?
    private var headEnd = 0
    private var headLeased = false
    private var spares: [JournalSegment] = []
    /// Empty files, created and their directory entry synced in advance, for streamed records.
    private var streamSpares: [JournalSegment] = []
    /// The last record begun or appended, or segment taken: receptions are going on.
    private var lastActivity: ContinuousClock.Instant?
    private var nextSequence: UInt64 = 1
    /// Segments being written, or holding records not yet indexed: never deleted.
    private var pending: [String: Int] = [:]
    private var spareTaken: (@Sendable () -> Void)?

    /// Called (under no lock) each time a ready segment is taken: time to prepare another.
    public var onSpareTaken: (@Sendable () -> Void)? {
        get { lock.withLock { spareTaken } }
        set { lock.withLock { spareTaken = newValue } }
    }

    public var directory: String { "\(root)/\(Self.directoryName)" }

    init(root: String, segmentSize: Int = Journal.defaultSegmentSize, spareTarget: Int = 3) throws {
        self.root = root
        self.segmentSize = max(segmentSize, 1 << 20)
        self.spareTarget = spareTarget
        try FileStore.makeDirectory("\(root)/\(Self.directoryName)")
        nextSequence = (segmentNames().last.flatMap { JournalSegment.sequence(ofName: $0) } ?? 0) + 1
    }

    /// The segment files present, in sequence order.
    func segmentNames() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name in JournalSegment.sequence(ofName: name).map { ($0, name) } }
            .sorted { $0.0 < $1.0 }.map(\.1)
    }

    public func segmentPaths() -> [String] {
        segmentNames().map { "\(Self.directoryName)/\($0)" }
    }

    /// The sequence number in a segment's relative path.
    static func sequence(ofPath path: String) -> UInt64? {
        JournalSegment.sequence(ofName: String(path.split(separator: "/").last ?? ""))
    }

    /// New segments are numbered after `sequence` (the newest the index ever knew): a deleted
    /// segment's name, and its checkpoint, are never taken again.
    func reserveSequences(through sequence: UInt64) {
        lock.withLock { nextSequence = max(nextSequence, sequence + 1) }
    }

    // MARK: Appending

    /// Appends one record (header then payload slices) to the active segment and returns the
    /// segment to sync and the payload's location. Callers serialize appends (GroupCommit), so
    /// records reach the file in the order of their acknowledgements.
    func append(header: [UInt8], payload: [ByteBuffer], payloadLength: Int) throws -> (JournalSegment, JournalLocation) {
        lock.lock()
        var notify: (@Sendable () -> Void)?
        defer {
            lock.unlock()
            notify?()
        }
        let length = header.count + payloadLength
        lastActivity = .now
        if active == nil || activeEnd + length > active!.capacity {
            let segment = try takeSpare(minimumCapacity: JournalSegment.headerSize + length)
            active = segment
            activeEnd = JournalSegment.headerSize
            notify = spareTaken
        }
        let segment = active!
        try segment.write(header: header, slices: payload, at: activeEnd)
        let location = JournalLocation(relativePath: segment.relativePath, payloadOffset: activeEnd + header.count,
                                       payloadLength: payloadLength)
        activeEnd += length
        pending[segment.relativePath, default: 0] += 1
        return (segment, location)
    }

    /// Lets one reception write its record at the head of the head segment as its bytes
    /// arrive (the disk works while the network does; the record's sync has only the tail
    /// left), or nil when another reception holds the head or no segment can be had: the
    /// caller then holds the bytes and appends them whole. `headerLength` is reserved in
    /// front of the payload (the header needs its length and hash, known at the end).
    public func beginHeadRecord(headerLength: Int) -> JournalHeadWriter? {
        lock.lock()
        var notify: (@Sendable () -> Void)?
        defer {
            lock.unlock()
            notify?()
        }
        guard !headLeased else { return nil }
        lastActivity = .now
        let needed = headerLength + Self.inlineLimit
        if headSegment == nil || headEnd + needed > headSegment!.capacity {
            guard let segment = try? takeSpare(minimumCapacity: JournalSegment.headerSize + needed) else { return nil }
            headSegment = segment
            headEnd = JournalSegment.headerSize
            notify = spareTaken
        }
        let segment = headSegment!
        headLeased = true
        pending[segment.relativePath, default: 0] += 1
        return JournalHeadWriter(journal: self, segment: segment, start: headEnd, headerLength: headerLength)
    }

    /// The head's holder is done: the next record starts at `end`; nil when the segment
    /// could not be written (it is sealed, the next holder takes a new one).
    fileprivate func releaseHead(_ segment: JournalSegment, end: Int?) {
        lock.withLock {
            headLeased = false
            guard headSegment === segment else { return }
            if let end {
                headEnd = end
            } else {
                headSegment = nil
            }
        }
    }

    /// A segment of its own for a record streamed as it arrives.
    /// The file is allocated as the record grows (no zeros written: the record's own sync
    /// covers the allocation, and the file is trimmed to the record at the end).
    public func beginStreamedRecord() throws -> JournalRecordWriter {
        lock.lock()
        let notify = spareTaken
        defer {
            lock.unlock()
            notify?()
        }
        lastActivity = .now
        let segment: JournalSegment
        if streamSpares.isEmpty {
            let sequence = nextSequence
            nextSequence += 1
            segment = try makeSegment(sequence: sequence, capacity: 0, zeroFill: false)
        } else {
            segment = streamSpares.removeFirst()
        }
        pending[segment.relativePath, default: 0] += 1
        return JournalRecordWriter(journal: self, segment: segment)
    }

    /// The records of `relativePath` are indexed (or failed): it may be deleted once unreferenced.
    func settled(_ relativePath: String) {
        lock.lock()
        defer { lock.unlock() }
        if let count = pending[relativePath], count > 1 {
            pending[relativePath] = count - 1
        } else {
            pending[relativePath] = nil
        }
    }

    /// A spare (or a new segment made now when none is ready) of at least `minimumCapacity`.
    private func takeSpare(minimumCapacity: Int) throws -> JournalSegment {
        if let index = spares.firstIndex(where: { $0.capacity >= minimumCapacity }) {
            return spares.remove(at: index)
        }
        let sequence = nextSequence
        nextSequence += 1
        return try makeSegment(sequence: sequence, capacity: max(segmentSize, minimumCapacity), zeroFill: false)
    }

    private func makeSegment(sequence: UInt64, capacity: Int, zeroFill: Bool) throws -> JournalSegment {
        let segment = try JournalSegment.create(root: root, directory: Self.directoryName, sequence: sequence,
                                                capacity: capacity, zeroFill: zeroFill)
        do {
            try FileStore.syncDirectory(directory)
        } catch {
            unlink(segment.path)
            throw error
        }
        return segment
    }

    // MARK: Maintenance (JournalMaintenance, off the critical path)

    /// Whether fewer than `spareTarget` segments are ready, or no file for streamed records.
    public var needsSpare: Bool {
        lock.withLock { spares.count < spareTarget || streamSpares.isEmpty }
    }

    /// Whether a record was written (or a ready segment taken) within `interval`: receptions
    /// are going on — DICOM instances or HL7 messages, which fill a segment slowly.
    public func isBusy(within interval: Duration) -> Bool {
        lock.withLock { lastActivity.map { ContinuousClock.now - $0 < interval } ?? false }
    }

    /// Prepares one more ready segment, or file for streamed records (allocation, zeros and
    /// syncs happen outside the lock). `zeroFill` writes the zeros now, so that the syncs of
    /// the records later written there flush data only; under a sustained ingest those
    /// writes would compete with the records' own, so it is for quiet times.
    public func prepareSpare(zeroFill: Bool = true) throws {
        let streamed = lock.withLock { streamSpares.count < Self.streamSpareTarget && !spares.isEmpty }
        guard streamed else {
            let sequence = lock.withLock { () -> UInt64 in
                defer { nextSequence += 1 }
                return nextSequence
            }
            let segment = try makeSegment(sequence: sequence, capacity: segmentSize, zeroFill: zeroFill)
            lock.withLock { spares.append(segment) }
            return
        }
        // Empty files for streamed records, made a batch at a time: one directory sync for all.
        let sequences = lock.withLock { () -> Range<UInt64> in
            defer { nextSequence += UInt64(Self.streamSpareTarget) }
            return nextSequence..<(nextSequence + UInt64(Self.streamSpareTarget))
        }
        var made: [JournalSegment] = []
        do {
            for sequence in sequences {
                made.append(try JournalSegment.create(root: root, directory: Self.directoryName, sequence: sequence,
                                                      capacity: 0, zeroFill: false))
            }
            try FileStore.syncDirectory(directory)
        } catch {
            for segment in made { unlink(segment.path) }
            throw error
        }
        lock.withLock { streamSpares += made }
    }

    /// Empty files kept ready for streamed records.
    static let streamSpareTarget = 4

    /// Deletes a segment unless it is active, a spare, or holds records not yet indexed.
    /// The caller has made sure no committed row references it.
    @discardableResult
    public func remove(_ relativePath: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard !isInUse(relativePath) else { return false }
        return unlink("\(root)/\(relativePath)") == 0
    }

    /// Sealed segments: every record indexed, nothing will be appended.
    public func sealedSegments() -> [String] {
        let paths = segmentPaths()
        lock.lock()
        defer { lock.unlock() }
        return paths.filter { !isInUse($0) }
    }

    private func isInUse(_ relativePath: String) -> Bool {
        active?.relativePath == relativePath || headSegment?.relativePath == relativePath
            || pending[relativePath] != nil
            || spares.contains { $0.relativePath == relativePath }
            || streamSpares.contains { $0.relativePath == relativePath }
    }

    /// Bytes of segment files (allocated) and how many there are.
    public func footprint() -> (segments: Int, bytes: Int, spares: Int) {
        let paths = segmentPaths()
        var bytes = 0
        for path in paths {
            var info = stat()
            if stat("\(root)/\(path)", &info) == 0 { bytes += Int(info.st_size) }
        }
        lock.lock()
        defer { lock.unlock() }
        return (paths.count, bytes, spares.count + streamSpares.count)
    }
}

/// A record streamed into a segment of its own as its bytes arrive (instances larger than
/// `Journal.inlineLimit`). The header, which needs the payload's length and hash, is written
/// last into space reserved before the payload.
public final class JournalRecordWriter: @unchecked Sendable {
    private let journal: Journal
    let segment: JournalSegment
    public private(set) var payloadLength = 0
    private var finished = false

    public var payloadOffset: Int { JournalSegment.headerSize + Journal.streamedHeaderSpace }
    /// The segment's absolute path (the payload can be read back from `payloadOffset`).
    public var path: String { segment.path }

    init(journal: Journal, segment: JournalSegment) {
        self.journal = journal
        self.segment = segment
    }

    public func write(_ slices: [ByteBuffer]) throws {
        let count = slices.reduce(0) { $0 + $1.readableBytes }
        let end = payloadOffset + payloadLength + count
        if end > segment.capacity {
            try segment.allocate(upTo: max(end, segment.capacity + journal.segmentSize), zeroFill: false)
        }
        try segment.write(header: [], slices: slices, at: payloadOffset + payloadLength)
        segment.startWriteback(from: payloadOffset + payloadLength, count: count)
        payloadLength += count
    }

    /// Writes the header; the record is durable once the segment is synced.
    func finish(header: JournalRecordHeader) throws -> (JournalSegment, JournalLocation) {
        try segment.write(header.encoded(paddedTo: Journal.streamedHeaderSpace), at: JournalSegment.headerSize)
        // The segment holds this record only: give back the rest (the same sync covers it).
        try segment.truncate(to: payloadOffset + payloadLength)
        finished = true
        return (segment, JournalLocation(relativePath: segment.relativePath, payloadOffset: payloadOffset,
                                         payloadLength: payloadLength))
    }

    /// Drops the record and its segment (a refused or abandoned reception).
    public func discard() {
        guard !finished else { return }
        finished = true
        journal.settled(segment.relativePath)
        journal.remove(segment.relativePath)
    }
}

/// A record written at the journal's head as its bytes arrive (`Journal.beginHeadRecord`),
/// in the space before the next record: payload first, the header last into the space
/// reserved in front of it. Until the header is there the head reads as the end of the
/// written part (zeros), so a crash meanwhile leaves a torn tail, never a record.
public final class JournalHeadWriter: @unchecked Sendable {
    private let journal: Journal
    let segment: JournalSegment
    let start: Int
    let headerLength: Int
    public private(set) var payloadLength = 0
    private var released = false

    var payloadOffset: Int { start + headerLength }

    init(journal: Journal, segment: JournalSegment, start: Int, headerLength: Int) {
        self.journal = journal
        self.segment = segment
        self.start = start
        self.headerLength = headerLength
    }

    /// Appends payload bytes (at most `Journal.inlineLimit` in all) and starts their writeback.
    public func write(_ slices: [ByteBuffer]) throws {
        let count = slices.reduce(0) { $0 + $1.readableBytes }
        guard !released, payloadLength + count <= Journal.inlineLimit else {
            throw JournalError("a record at the journal head is limited to \(Journal.inlineLimit) bytes")
        }
        do {
            try segment.write(header: [], slices: slices, at: payloadOffset + payloadLength)
        } catch {
            discard()
            throw error
        }
        segment.startWriteback(from: payloadOffset + payloadLength, count: count)
        payloadLength += count
    }

    /// Writes the header; the record is durable once the segment is synced. The caller
    /// releases the head (`release`) once the record has its place in the group commit.
    func finish(header: JournalRecordHeader) throws -> (JournalSegment, JournalLocation) {
        guard !released, header.payloadLength == payloadLength else {
            throw JournalError("the record's header does not describe the bytes written")
        }
        try segment.write(header.encoded(paddedTo: headerLength), at: start)
        return (segment, JournalLocation(relativePath: segment.relativePath, payloadOffset: payloadOffset,
                                         payloadLength: payloadLength))
    }

    /// The next record may start after this one.
    func release() {
        guard !released else { return }
        released = true
        journal.releaseHead(segment, end: payloadOffset + payloadLength)
    }

    /// Drops the record: what was written becomes a padding record, which replay skips, and
    /// the head moves past it.
    public func discard() {
        guard !released else { return }
        released = true
        defer { journal.settled(segment.relativePath) }
        guard payloadLength > 0 else {
            journal.releaseHead(segment, end: start)
            return
        }
        do {
            try segment.write(JournalRecordHeader.padding(payloadLength).encoded(paddedTo: headerLength), at: start)
            journal.releaseHead(segment, end: payloadOffset + payloadLength)
        } catch {
            journal.releaseHead(segment, end: nil)
        }
    }
}
