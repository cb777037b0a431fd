import DICOMCore
import DICOMNetwork
import Foundation
import Logging
import NIOCore
import Spool

/// Receives one C-STORE data set into the spool, honouring the durability contract: the
/// received slices are checksummed (CRC-32C) as they arrive and written at the journal's head
/// when it is free (else held, and appended whole at the end); beyond `Journal.inlineLimit`
/// they stream into a journal segment of their own. The slices are also held (up to that limit) so that
/// at the end the data set is walked from memory (structure, SOP class/instance against the
/// command); then the record's header is written. Once the journal is synced `finish`
/// answers success; the index queue then indexes the record and the reception is settled.
final class InstanceReception: StoreReceiver, @unchecked Sendable {
    // Mutable state is touched by one thread-pool job at a time (the runtime chains them).
    private let spool: Spool
    private let request: CStoreRQ
    private let transferSyntax: TransferSyntax?
    private let callingAETitle: String
    private let logger: Logger
    private let metrics: StorageMetrics
    /// The Part-10 header then the data set as received, while it fits in memory.
    private var slices: [ByteBuffer] = []
    /// Once the data set outgrows `Journal.inlineLimit`: its own segment.
    private var streamed: JournalRecordWriter?
    /// While it fits: the journal's head, when this reception holds it.
    private var head: JournalHeadWriter?
    private var receivedAt = Date()
    private var crc: UInt32 = 0
    private var size = 0
    private var headerSize = 0
    private var opened = false
    private var failure: StoreOutcome?
    private let onStored: @Sendable () -> Void
    /// Every instance received (stored or a duplicate): study, patient ID, issuer.
    private let onReceived: @Sendable (String, String, String) -> Void

    /// The size of the association's previous instance: when it was over the inline limit,
    /// this one streams into a segment of its own from its first byte (a series of CR or MG
    /// is made of instances of one size), rather than from the journal's head.
    private let sizeHint: ReceptionSizeHint

    init(spool: Spool, request: CStoreRQ, transferSyntaxUID: String, callingAETitle: String, logger: Logger,
         metrics: StorageMetrics = StorageMetrics(), sizeHint: ReceptionSizeHint = ReceptionSizeHint(),
         onStored: @escaping @Sendable () -> Void = {},
         onReceived: @escaping @Sendable (String, String, String) -> Void = { _, _, _ in }) {
        self.onReceived = onReceived
        self.metrics = metrics
        self.sizeHint = sizeHint
        self.onStored = onStored
        self.spool = spool
        self.request = request
        self.transferSyntax = TransferSyntax(uid: transferSyntaxUID)
        self.callingAETitle = callingAETitle
        self.logger = logger
    }

    func write(_ received: [ByteBuffer]) {
        guard failure == nil else { return }
        do {
            if !opened { try open() }
            for slice in received {
                crc = slice.withUnsafeReadableBytes { CRC32C.update(crc, $0) }
                size += slice.readableBytes
            }
            if let streamed {
                try streamed.write(received)
            } else {
                slices += received
                if size > Journal.inlineLimit {
                    head?.discard()
                    head = nil
                    let writer = try spool.journal.beginStreamedRecord()
                    streamed = writer
                    try writer.write(slices)
                    slices = []
                } else if let head {
                    do {
                        try head.write(received)
                    } catch {
                        // Give the head up (what it had becomes padding): the held bytes are
                        // appended whole at the end.
                        head.discard()
                        self.head = nil
                        logger.warning("journal head write failed, the instance will be appended whole",
                                       metadata: ["error": "\(error)"])
                    }
                }
            }
        } catch let outcome as StoreOutcome {
            fail(outcome)
        } catch {
            fail(Self.outcome(for: error))
        }
    }

    private func open() throws {
        guard let transferSyntax else {
            throw StoreOutcome(status: .cannotUnderstand, errorComment: "unknown transfer syntax")
        }
        guard UID.isValid(request.affectedSOPInstanceUID) else {
            throw StoreOutcome(status: .cannotUnderstand, errorComment: "invalid Affected SOP Instance UID")
        }
        guard spool.hasRoom() else {
            throw StoreOutcome(status: .outOfResources, errorComment: "spool below its free-space watermark")
        }
        opened = true
        let header = Part10.fileMetaInformation(
            mediaStorageSOPClassUID: request.affectedSOPClassUID,
            mediaStorageSOPInstanceUID: request.affectedSOPInstanceUID,
            transferSyntaxUID: transferSyntax.uid,
            sourceApplicationEntityTitle: callingAETitle)
        headerSize = header.readableBytes
        crc = header.withUnsafeReadableBytes { CRC32C.update(0, $0) }
        size = headerSize
        slices = [header]
        receivedAt = Date()
        if sizeHint.previous > Journal.inlineLimit {
            let writer = try spool.journal.beginStreamedRecord()
            streamed = writer
            try writer.write(slices)
            slices = []
            return
        }
        // The header's length is known now (its numbers are fixed-width), so its space can be
        // reserved in front of the payload at the journal's head.
        if let headerLength = try? recordHeader(payloadLength: 0, crc32c: 0).encoded().count,
           let writer = spool.journal.beginHeadRecord(headerLength: headerLength) {
            do {
                try writer.write([header])
                head = writer
            } catch {
                writer.discard()
                logger.warning("journal head write failed, the instance will be appended whole",
                               metadata: ["error": "\(error)"])
            }
        }
    }

    private func recordHeader(payloadLength: Int, crc32c: UInt32) -> JournalRecordHeader {
        InstanceRecord.header(
            sopInstanceUID: request.affectedSOPInstanceUID, sopClassUID: request.affectedSOPClassUID,
            transferSyntaxUID: transferSyntax?.uid ?? "", callingAETitle: callingAETitle, receivedAt: receivedAt,
            dataSetOffset: headerSize, payloadLength: payloadLength, crc32c: crc32c)
    }

    func finish(respond: @escaping @Sendable (StoreOutcome) -> Void, settled: @escaping @Sendable () -> Void) {
        if failure == nil && !opened {
            // An empty data set: open() never ran.
            fail(StoreOutcome(status: .cannotUnderstand, errorComment: "empty data set"))
        }
        guard failure == nil, let transferSyntax else {
            respond(failure ?? StoreOutcome(status: .processingFailure))
            settled()
            return
        }
        let started = ContinuousClock.now
        do {
            let attributes = try readAttributes(transferSyntax: transferSyntax)
            guard spool.hasRoom() else {
                throw StoreOutcome(status: .outOfResources, errorComment: "spool below its free-space watermark")
            }
            sizeHint.previous = size
            let header = recordHeader(payloadLength: size, crc32c: crc)
            let payload: Spool.Payload = streamed.map { .streamed($0) } ?? head.map { .head($0) } ?? .inline(slices)
            // The spool owns the bytes from here, whatever happens.
            slices = []
            streamed = nil
            head = nil
            _ = try spool.store(payload, header: header, make: { location in
                InstanceRecord.newInstance(header: header, location: location, attributes: attributes)
            }, indexed: { [self] result in
                indexed(result, attributes: attributes)
                settled()
            })
            metrics.storeDuration.record(duration: ContinuousClock.now - started)
            respond(StoreOutcome(status: .success))
            return
        } catch let outcome as StoreOutcome {
            fail(outcome)
        } catch {
            fail(Self.outcome(for: error))
        }
        respond(failure ?? StoreOutcome(status: .processingFailure))
        settled()
    }

    /// On the spool's index queue, once the durable instance has its row (or not).
    private func indexed(_ result: Result<RecordOutcome, any Error>, attributes: IndexedAttributes) {
        switch result {
        case .success(let outcome):
            log(outcome, attributes: attributes)
            if case .duplicate = outcome {} else { onStored() }
            onReceived(attributes.studyInstanceUID, attributes.patientID, attributes.issuerOfPatientID)
        case .failure(let error):
            // Acknowledged and durable in the journal: the next start indexes it (replay).
            logger.error("instance journaled but not indexed; it will be indexed at the next start", metadata: [
                "sop_instance_uid": "\(request.affectedSOPInstanceUID)", "error": "\(error)",
            ])
        }
    }

    func abandon() {
        streamed?.discard()
        streamed = nil
        head?.discard()
        head = nil
        slices = []
    }

    /// Walks the whole data set from the received bytes (detecting truncation) and checks it
    /// against the command. A streamed one is read back through the page cache; its bulk
    /// (Pixel Data) is skipped, not read.
    private func readAttributes(transferSyntax: TransferSyntax) throws -> IndexedAttributes {
        let dataSetLength = size - headerSize
        do {
            if let streamed {
                var source = try FileByteSource(path: streamed.path, offset: streamed.payloadOffset + headerSize)
                return try InstanceRecord.attributes(from: &source, transferSyntax: transferSyntax, length: dataSetLength,
                                                     sopClassUID: request.affectedSOPClassUID,
                                                     sopInstanceUID: request.affectedSOPInstanceUID)
            }
            var source = try SlicesByteSource(slices, skipping: headerSize)
            return try InstanceRecord.attributes(from: &source, transferSyntax: transferSyntax, length: dataSetLength,
                                                 sopClassUID: request.affectedSOPClassUID,
                                                 sopInstanceUID: request.affectedSOPInstanceUID)
        } catch let error as DataSetError {
            throw StoreOutcome(status: .cannotUnderstand, errorComment: "data set cannot be parsed: \(error)")
        }
    }

    private func fail(_ outcome: StoreOutcome) {
        if failure == nil {
            failure = outcome
            metrics.instancesRefused.increment()
            logger.warning("C-STORE refused", metadata: [
                "sop_instance_uid": "\(request.affectedSOPInstanceUID)",
                "status": "\(outcome.status)", "reason": "\(outcome.errorComment ?? "")",
            ])
        }
        abandon()
    }

    private func log(_ outcome: RecordOutcome, attributes: IndexedAttributes) {
        let metadata: Logger.Metadata = [
            "sop_instance_uid": "\(request.affectedSOPInstanceUID)",
            "study_uid": "\(attributes.studyInstanceUID)",
            "calling_ae": "\(callingAETitle)", "bytes": "\(size)",
        ]
        switch outcome {
        case .stored:
            metrics.instancesStored.increment()
            metrics.bytesStored.increment(by: size)
            logger.debug("instance stored", metadata: metadata)
        case .duplicate:
            metrics.instancesDuplicate.increment()
            logger.info("instance received again with identical data, kept one copy", metadata: metadata)
        case .revised(_, let revision):
            metrics.instancesRevised.increment()
            metrics.bytesStored.increment(by: size)
            logger.warning("instance received again with different data: new revision kept, previous one superseded",
                           metadata: metadata.merging(["revision": "\(revision)"]) { $1 })
        }
    }

    /// Out of space is A700 (the sender may retry later); anything else is a processing failure.
    static func outcome(for error: any Error) -> StoreOutcome {
        if let error = error as? SpoolError, error.isOutOfSpace {
            return StoreOutcome(status: .outOfResources, errorComment: "spool disk full")
        }
        return StoreOutcome(status: .processingFailure, errorComment: "\(error)")
    }
}

extension StoreOutcome: Error {}

/// The size of the last instance an association sent (`InstanceReception`).
final class ReceptionSizeHint: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    var previous: Int {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}
