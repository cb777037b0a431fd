import Crypto
import DICOMCore
import DICOMNetwork
import Foundation
import Logging
import NIOCore
import Spool

/// Receives one C-STORE data set into the spool, honouring the durability contract: the
/// received slices are hashed as they arrive and held (up to `Journal.inlineLimit`, beyond
/// which they stream into a journal segment of their own); at the end the data set is walked
/// from those same bytes (structure, SOP class/instance against the command), appended to the
/// journal as one record and indexed; only once the journal is synced does `finish` answer
/// success.
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
    private var hasher = SHA256()
    private var size = 0
    private var headerSize = 0
    private var opened = false
    private var failure: StoreOutcome?
    private let onStored: @Sendable () -> Void
    /// Every instance received (stored or a duplicate): study, patient ID, issuer.
    private let onReceived: @Sendable (String, String, String) -> Void

    init(spool: Spool, request: CStoreRQ, transferSyntaxUID: String, callingAETitle: String, logger: Logger,
         metrics: StorageMetrics = StorageMetrics(), onStored: @escaping @Sendable () -> Void = {},
         onReceived: @escaping @Sendable (String, String, String) -> Void = { _, _, _ in }) {
        self.onReceived = onReceived
        self.metrics = metrics
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
                slice.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                size += slice.readableBytes
            }
            if let streamed {
                try streamed.write(received)
            } else {
                slices += received
                if size > Journal.inlineLimit {
                    let writer = try spool.journal.beginStreamedRecord()
                    streamed = writer
                    try writer.write(slices)
                    slices = []
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
        header.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        size = headerSize
        slices = [header]
    }

    func finish() -> StoreOutcome {
        if failure == nil && !opened {
            // An empty data set: open() never ran.
            fail(StoreOutcome(status: .cannotUnderstand, errorComment: "empty data set"))
        }
        if let failure { return failure }
        guard let transferSyntax else { return StoreOutcome(status: .processingFailure) }
        let started = ContinuousClock.now
        do {
            let attributes = try readAttributes(transferSyntax: transferSyntax)
            guard spool.hasRoom() else {
                throw StoreOutcome(status: .outOfResources, errorComment: "spool below its free-space watermark")
            }
            let receivedAt = Date()
            let header = InstanceRecord.header(
                sopInstanceUID: request.affectedSOPInstanceUID, sopClassUID: request.affectedSOPClassUID,
                transferSyntaxUID: transferSyntax.uid, callingAETitle: callingAETitle, receivedAt: receivedAt,
                dataSetOffset: headerSize, payloadLength: size, sha256: hasher.finalize().hexString)
            let payload: Spool.Payload = streamed.map { .streamed($0) } ?? .inline(slices)
            // The spool owns the bytes from here, whatever happens.
            slices = []
            streamed = nil
            let result = try spool.store(payload, header: header) { location in
                InstanceRecord.newInstance(header: header, location: location, attributes: attributes)
            }
            log(result, attributes: attributes)
            if case .duplicate = result.outcome {} else { onStored() }
            onReceived(attributes.studyInstanceUID, attributes.patientID, attributes.issuerOfPatientID)
            metrics.storeDuration.record(duration: ContinuousClock.now - started)
            return StoreOutcome(status: .success)
        } catch let outcome as StoreOutcome {
            fail(outcome)
        } catch {
            fail(Self.outcome(for: error))
        }
        return failure ?? StoreOutcome(status: .processingFailure)
    }

    func abandon() {
        streamed?.discard()
        streamed = nil
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

    private func log(_ result: SpooledInstance, attributes: IndexedAttributes) {
        let metadata: Logger.Metadata = [
            "sop_instance_uid": "\(request.affectedSOPInstanceUID)",
            "study_uid": "\(attributes.studyInstanceUID)",
            "calling_ae": "\(callingAETitle)", "bytes": "\(size)",
        ]
        switch result.outcome {
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
