import DICOMCore
import DICOMNetwork
import Foundation
import Logging
import NIOCore
import Spool

#if canImport(Glibc)
import Glibc
#endif

/// Receives one C-STORE data set into the spool, honouring the durability contract:
/// the data set streams into a temporary Part-10 file; at the end the file is fsynced,
/// checked (structure, SOP class/instance against the command), renamed into the store and
/// indexed; only then does `finish` answer success.
final class InstanceReception: StoreReceiver, @unchecked Sendable {
    // Mutable state is touched by one thread-pool job at a time (the runtime chains them).
    private let spool: Spool
    private let request: CStoreRQ
    private let transferSyntax: TransferSyntax?
    private let callingAETitle: String
    private let logger: Logger
    private let metrics: StorageMetrics
    private var file: TemporaryInstanceFile?
    private var headerSize = 0
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

    func write(_ bytes: ByteBuffer) {
        guard failure == nil else { return }
        do {
            if file == nil { try open() }
            try file?.writeDataSet(bytes)
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
        let file = try spool.files.makeTemporaryFile()
        self.file = file
        let header = Part10.fileMetaInformation(
            mediaStorageSOPClassUID: request.affectedSOPClassUID,
            mediaStorageSOPInstanceUID: request.affectedSOPInstanceUID,
            transferSyntaxUID: transferSyntax.uid,
            sourceApplicationEntityTitle: callingAETitle)
        headerSize = header.readableBytes
        try file.writeHeader(header)
    }

    func finish() -> StoreOutcome {
        if failure == nil && file == nil {
            // An empty data set: open() never ran.
            fail(StoreOutcome(status: .cannotUnderstand, errorComment: "empty data set"))
        }
        if let failure { return failure }
        guard let file, let transferSyntax else { return StoreOutcome(status: .processingFailure) }
        let started = ContinuousClock.now
        do {
            let finished = try file.finish()
            let attributes = try readAttributes(path: finished.temporaryPath, transferSyntax: transferSyntax,
                                                dataSetLength: file.dataSetSize)
            guard spool.hasRoom() else {
                throw StoreOutcome(status: .outOfResources, errorComment: "spool below its free-space watermark")
            }
            let receivedAt = Date()
            let result = try spool.store(finished) { path in
                NewInstance(
                    sopInstanceUID: request.affectedSOPInstanceUID, sopClassUID: request.affectedSOPClassUID,
                    transferSyntaxUID: transferSyntax.uid, attributes: attributes, filePath: path,
                    size: finished.size, sha256: finished.sha256, dataSetOffset: finished.dataSetOffset,
                    callingAETitle: callingAETitle, receivedAt: receivedAt)
            }
            log(result, attributes: attributes, size: finished.size)
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
        file?.discard()
        file = nil
    }

    /// Walks the whole data set (detecting truncation) and checks it against the command.
    private func readAttributes(path: String, transferSyntax: TransferSyntax, dataSetLength: Int) throws -> IndexedAttributes {
        let attributes: InstanceAttributes
        do {
            var source = try FileByteSource(path: path, offset: headerSize)
            attributes = try InstanceAttributes.read(from: &source, transferSyntax: transferSyntax,
                                                     length: dataSetLength)
        } catch {
            throw StoreOutcome(status: .cannotUnderstand, errorComment: "data set cannot be parsed: \(error)")
        }
        guard attributes.sopClassUID == request.affectedSOPClassUID,
              attributes.sopInstanceUID == request.affectedSOPInstanceUID else {
            throw StoreOutcome(status: .dataSetDoesNotMatchSOPClass,
                               errorComment: "SOP Class/Instance UID of the data set differ from the command")
        }
        guard let study = attributes.studyInstanceUID, UID.isValid(study) else {
            throw StoreOutcome(status: .dataSetDoesNotMatchSOPClass, errorComment: "missing or invalid Study Instance UID")
        }
        guard let series = attributes.seriesInstanceUID, UID.isValid(series) else {
            throw StoreOutcome(status: .dataSetDoesNotMatchSOPClass, errorComment: "missing or invalid Series Instance UID")
        }
        return IndexedAttributes(
            studyInstanceUID: study, seriesInstanceUID: series,
            patientID: attributes.patientID ?? "", issuerOfPatientID: attributes.issuerOfPatientID ?? "",
            patientName: attributes.patientName, patientBirthDate: attributes.patientBirthDate,
            patientSex: attributes.patientSex, studyDate: attributes.studyDate, studyTime: attributes.studyTime,
            accessionNumber: attributes.accessionNumber, studyDescription: attributes.studyDescription,
            modality: attributes.modality, seriesNumber: attributes.seriesNumber,
            instanceNumber: attributes.instanceNumber, ins: INS.values(in: attributes.otherPatientIDs))
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

    private func log(_ result: SpooledInstance, attributes: IndexedAttributes, size: Int) {
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
