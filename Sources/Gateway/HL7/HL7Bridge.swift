import Audit
import DICOMCore
import DICOMweb
import Foundation
import HL7
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Spool

/// Applies the accepted HL7 messages, in the order they were received: an ORU^R01 becomes a
/// report instance of its study (docs/hl7.md), which then goes out like any received
/// instance. A report whose study is not in the spool yet waits — `waiting`, with the
/// reason — until the study arrives or `[hl7] report_wait` passes (`failed`). An identity
/// update (ADT) becomes the patient's identity in force, which instances leaving the spool
/// carry, and a correction of each study already delivered (`IdentityCorrector`).
final class HL7Bridge: Service, Sendable {
    private let settings: HL7Settings
    private let site: GatewayConfiguration.Site
    private let spool: Spool
    private let threadPool: NIOThreadPool
    private let logger: Logger
    private let instanceStored: @Sendable () -> Void
    private let uids: UIDGenerator
    /// Signalled when a message is accepted and when instances arrive (a waiting report's study).
    let wakeup = Wakeup()

    static let appliedTypes = ["ORU^R01", "ADT^A08", "ADT^A31", "ADT^A47", "ADT^A40"]
    /// The configuration in force (destinations follow reloads).
    private let configuration: @Sendable () -> GatewayConfiguration
    /// Called once an identity update is recorded (the corrections to carry out).
    private let identityUpdated: @Sendable () -> Void
    /// Wakes who withdraws a cancelled report from the shared destinations.
    private let reportCancelled: @Sendable () -> Void

    private let audit: AuditTrail

    init(settings: HL7Settings, site: GatewayConfiguration.Site, spool: Spool, threadPool: NIOThreadPool,
         audit: AuditTrail, logger: Logger, configuration: @escaping @Sendable () -> GatewayConfiguration,
         instanceStored: @escaping @Sendable () -> Void, identityUpdated: @escaping @Sendable () -> Void = {},
         reportCancelled: @escaping @Sendable () -> Void = {}) {
        self.audit = audit
        self.reportCancelled = reportCancelled
        self.configuration = configuration
        self.identityUpdated = identityUpdated
        self.settings = settings
        self.site = site
        self.spool = spool
        self.threadPool = threadPool
        self.logger = logger
        self.instanceStored = instanceStored
        self.uids = UIDGenerator(root: site.uidRoot)
    }

    func run() async throws {
        await cancelWhenGracefulShutdown { [self] in
            var lastPrune: ContinuousClock.Instant?
            var lastLookups: [Int64: ContinuousClock.Instant] = [:]
            while !Task.isCancelled {
                if lastPrune.map({ ContinuousClock.now - $0 >= .seconds(3600) }) ?? true {
                    lastPrune = ContinuousClock.now
                    prune()
                }
                var waiting: [HL7MessageRow] = []
                do {
                    let pass = try await threadPool.runIfActive { [self] in applyPending() }
                    waiting = pass.waiting
                    if pass.applied > 0 {
                        // A burst (a PAS replaying its queue) is applied in batches of what
                        // arrived meanwhile, not message by message: the listener's index
                        // shares the database's one writer with the bridge.
                        try? await Task.sleep(for: Self.batchInterval)
                    }
                    if !waiting.isEmpty { await lookUpAtArchive(waiting, lastLookups: &lastLookups) }
                } catch {
                    if !Task.isCancelled { logger.warning("HL7: cannot apply messages", metadata: ["error": "\(error)"]) }
                }
                // A waiting report looks for its study every few seconds (nothing else tells
                // when one arrives); otherwise only new messages wake the bridge.
                await wakeup.wait(upTo: waiting.isEmpty ? .seconds(60) : .seconds(5))
            }
        }
    }

    /// The least time between two passes that applied messages.
    static let batchInterval: Duration = .milliseconds(250)

    /// How often a waiting report looks for its study at the archive.
    static let archiveLookupInterval: Duration = .seconds(60)

    /// Reports whose study is not in the spool (purged after its retention, or archived
    /// before Passerelle): their study is looked for at the archive — the first destination
    /// the site uploads to that is not shared — by QIDO-RS, at most once a minute each, and
    /// the report made from what the archive says of the study.
    private func lookUpAtArchive(_ rows: [HL7MessageRow], lastLookups: inout [Int64: ContinuousClock.Instant]) async {
        let configuration = configuration()
        lastLookups = lastLookups.filter { entry in rows.contains { $0.id == entry.key } }
        let due = rows.filter { row in lastLookups[row.id].map { ContinuousClock.now - $0 >= Self.archiveLookupInterval } ?? true }
        guard !due.isEmpty, let archive = configuration.destinations.first(where: { $0.upload && !$0.shared }) else { return }
        let client: DICOMwebClient
        do {
            client = try archive.makeClient(upload: configuration.upload, logger: logger)
        } catch {
            logger.warning("HL7: cannot look for reports' studies at the archive", metadata: ["error": "\(error)"])
            return
        }
        for row in due where !Task.isCancelled {
            lastLookups[row.id] = ContinuousClock.now
            let metadata: Logger.Metadata = ["hl7_control_id": "\(row.controlID)", "destination": "\(archive.name)"]
            do {
                let report = try ObservationReport(try HL7Message.parse(row.message), accessionField: settings.accessionField)
                let key = report.studyInstanceUID.map { ("StudyInstanceUID", $0) } ?? ("AccessionNumber", report.accessionNumber)
                let found = try await client.search("studies", parameters: [key] + [
                    "00100010", "00100020", "00100021", "00100030", "00100040", "00080020", "00080030", "00080050", "00081030",
                ].map { ("includefield", $0) }).filter { $0.string(.studyInstanceUID) != nil }
                guard found.count == 1, let study = found.first.flatMap(Self.reportStudy) else {
                    if found.count > 1 {
                        logger.warning("HL7 report: its key names several studies at the archive", metadata: metadata)
                    }
                    continue
                }
                _ = try await threadPool.runIfActive { [self] in handle(row, now: Date(), archived: study) }
            } catch {
                logger.warning("HL7: cannot look for a report's study at the archive", metadata: metadata.merging([
                    "error": "\(error)"]) { $1 })
            }
        }
        try? await client.shutdown()
    }

    /// The study as QIDO-RS describes it (PS3.18 JSON), for a report.
    static func reportStudy(_ result: DICOMModelDataSet) -> ReportStudy? {
        guard let uid = result.string(.studyInstanceUID), let patientID = result.string(.patientID) else { return nil }
        return ReportStudy(studyInstanceUID: uid, patientID: patientID,
                           issuerOfPatientID: result.string(.issuerOfPatientID) ?? "",
                           patientName: result.string(.patientName), patientBirthDate: result.string(.patientBirthDate),
                           patientSex: result.string(.patientSex), studyDate: result.string(.studyDate),
                           studyTime: result.string(.studyTime), accessionNumber: result.string(.accessionNumber),
                           studyDescription: result.string(.studyDescription))
    }

    /// Deletes the messages done with past `[hl7] retention` (hourly).
    private func prune() {
        let before = Date().addingTimeInterval(-Backoff.seconds(settings.retention))
        do {
            let count = try spool.database.pruneHL7Messages(receivedBefore: before)
            if count > 0 { logger.info("HL7 messages past hl7.retention deleted", metadata: ["count": "\(count)"]) }
        } catch {
            logger.warning("HL7: cannot delete old messages", metadata: ["error": "\(error)"])
        }
    }

    /// One pass over the messages to apply (blocking: on the thread pool). Returns the reports
    /// still waiting for their study, and how many messages it looked at.
    @discardableResult
    func applyPending(now: Date = Date()) -> (waiting: [HL7MessageRow], applied: Int) {
        let messages: [HL7MessageRow]
        do {
            messages = try spool.database.hl7MessagesToApply(types: Self.appliedTypes)
        } catch {
            logger.error("HL7: cannot read the messages to apply", metadata: ["error": "\(error)"])
            return ([], 0)
        }
        var waiting: [HL7MessageRow] = []
        var updates: [HL7MessageRow] = []
        for row in messages {
            if row.messageType.hasPrefix("ADT^") {
                updates.append(row)
                continue
            }
            // In order: the identity updates received before this report first.
            applyIdentityUpdates(updates, now: now)
            updates = []
            if handle(row, now: now) { waiting.append(row) }
        }
        applyIdentityUpdates(updates, now: now)
        return (waiting, messages.count - waiting.count)
    }

    /// Applies one report; `archived`: its study as the archive described it. Returns whether
    /// it waits for its study.
    private func handle(_ row: HL7MessageRow, now: Date, archived: ReportStudy? = nil) -> Bool {
        let metadata: Logger.Metadata = ["hl7_control_id": "\(row.controlID)", "hl7_message_type": "\(row.messageType)"]
        do {
            switch try applyReport(row, now: now, archived: archived) {
            case .applied(let detail):
                logger.info("HL7 report stored in its study", metadata: metadata.merging(["detail": "\(detail)"]) { $1 })
                instanceStored()
            case .cancelled(let detail):
                logger.notice("HL7 report cancelled", metadata: metadata.merging(["detail": "\(detail)"]) { $1 })
                reportCancelled()
            case .waiting(let reason):
                if now.timeIntervalSince(row.receivedAt) > Backoff.seconds(settings.reportWait) {
                    try spool.database.setHL7State(id: row.id, .failed, detail: "\(reason), for longer than hl7.report_wait")
                    logger.warning("HL7 report given up: its study never arrived",
                                   metadata: metadata.merging(["reason": "\(reason)"]) { $1 })
                    return false
                }
                if row.state != .waiting || row.detail != reason {
                    try spool.database.setHL7State(id: row.id, .waiting, detail: reason)
                    logger.info("HL7 report waits for its study", metadata: metadata.merging(["reason": "\(reason)"]) { $1 })
                }
                return true
            }
        } catch {
            try? spool.database.setHL7State(id: row.id, .failed, detail: "\(error)")
            logger.warning("HL7 message cannot be applied", metadata: metadata.merging(["error": "\(error)"]) { $1 })
        }
        return false
    }

    enum Outcome: Equatable {
        case applied(String)
        case cancelled(String)
        case waiting(String)
    }

    struct Refusal: Error, CustomStringConvertible {
        var description: String
    }

    /// An ADT^A08/A31/A47/A40: the identity in force recorded, the delivered studies queued
    /// for correction. Returns the detail shown by `passerellectl hl7 show`.
    /// ADT^A08/A31/A47/A40 in a row: each the identity in force and its corrections queued,
    /// all in one transaction (a PAS sends them in bursts). One that cannot be read fails alone.
    private func applyIdentityUpdates(_ rows: [HL7MessageRow], now: Date) {
        guard !rows.isEmpty else { return }
        let destinations = configuration().destinations.filter(\.upload).map(\.name)
        var items: [(update: IdentityUpdateRecord, messageID: Int64, detail: (Int) -> String)] = []
        var events: [AuditEvent] = []
        var applied: [(row: HL7MessageRow, detail: (Int) -> String)] = []
        for row in rows {
            do {
                let update = try PatientIdentityUpdate.read(try HL7Message.parse(row.message), issuers: site.patientIssuers)
                let identity = update.identity
                var changes = identity.name.map { ["name \($0)"] } ?? []
                if let date = identity.birthDate { changes.append("birth date \(date)") }
                if let sex = identity.sex { changes.append("sex \(sex)") }
                if identity.insKnown { changes.append(identity.ins.map { "INS \($0.value)" } ?? "no qualified INS") }
                let subject = update.priorPatientID.map { "\($0) → \(identity.patientID)" } ?? identity.patientID
                let summary = "patient \(subject) of \(identity.issuer)" + (changes.isEmpty ? "" : ": " + changes.joined(separator: ", "))
                let detail = { (corrections: Int) in
                    summary + "; \(corrections) delivered studies to correct, \(destinations.count) destinations to search"
                }
                items.append((update, row.id, detail))
                applied.append((row, detail))
                var patients = [AuditEvent.Patient(id: identity.patientID, issuer: identity.issuer)]
                if let prior = update.priorPatientID { patients.append(AuditEvent.Patient(id: prior, issuer: identity.issuer)) }
                events.append(AuditEvent(action: .identityUpdated, at: now,
                                         actor: .init(address: row.peer, userName: "HL7 \(row.sendingApplication)^\(row.sendingFacility)"),
                                         patients: patients,
                                         details: ["hl7_control_id": row.controlID, "event": update.event,
                                                   "changes": changes.joined(separator: ", ")]))
            } catch {
                try? spool.database.setHL7State(id: row.id, .failed, detail: "\(error)")
                logger.warning("HL7 message cannot be applied", metadata: [
                    "hl7_control_id": "\(row.controlID)", "hl7_message_type": "\(row.messageType)", "error": "\(error)"])
            }
        }
        guard !items.isEmpty else { return }
        do {
            let corrections = try spool.database.applyIdentityUpdates(items, destinations: destinations,
                                                                      siteIssuer: site.issuerOfPatientID ?? "", now: now)
            audit.post(events)
            for ((row, detail), count) in zip(applied, corrections) {
                logger.notice("HL7 identity update applied", metadata: [
                    "hl7_control_id": "\(row.controlID)", "hl7_message_type": "\(row.messageType)", "detail": "\(detail(count))"])
            }
            identityUpdated()
        } catch {
            // Left `received`: tried again at the next pass.
            logger.error("HL7: cannot record identity updates", metadata: ["error": "\(error)", "messages": "\(items.count)"])
        }
    }

    /// OBR-25 = X: the reports made for this order are withdrawn from the shared destinations
    /// (the archive keeps them, as it keeps an opposed study); one still waiting for its study
    /// is given up. Returns the message's detail.
    private func cancel(_ report: ObservationReport, _ row: HL7MessageRow, now: Date) throws -> String {
        let order = report.fillerOrderNumber
        for waiting in try spool.database.hl7MessagesToApply(types: ["ORU^R01"]) where waiting.id < row.id {
            guard let earlier = try? ObservationReport(try HL7Message.parse(waiting.message),
                                                       accessionField: settings.accessionField),
                  earlier.fillerOrderNumber == order, earlier.resultStatus != "X" else { continue }
            try spool.database.setHL7State(id: waiting.id, .failed,
                                           detail: "cancelled by \(row.controlID) (OBR-25 = X) before its study arrived", at: now)
        }
        let study = try report.studyInstanceUID
            ?? spool.database.reportStudies(studyInstanceUID: nil, accessionNumber: report.accessionNumber).first?.studyInstanceUID
        let shared = configuration().sharingRules.sharedDestinations.sorted()
        var detail = ""
        try spool.database.cancelHL7Reports(
            studyInstanceUID: study, fillerOrderNumber: order, sharedDestinations: shared, messageID: row.id,
            controlID: row.controlID, detail: { instances in
                detail = instances.isEmpty
                    ? "order \(order) cancelled: no report of it was made"
                    : "order \(order) cancelled: \(instances.joined(separator: ", ")) withdrawn from "
                        + (shared.isEmpty ? "no shared destination" : shared.joined(separator: ", ")) + " (the archive keeps it)"
                return detail
            }, now: now)
        return detail
    }

    private func applyReport(_ row: HL7MessageRow, now: Date, archived: ReportStudy? = nil) throws -> Outcome {
        let message = try HL7Message.parse(row.message)
        let report = try ObservationReport(message, accessionField: settings.accessionField)
        if report.resultStatus == "X" { return .cancelled(try cancel(report, row, now: now)) }
        let studies = try archived.map { [$0] } ?? spool.database.reportStudies(studyInstanceUID: report.studyInstanceUID,
                                                                              accessionNumber: report.accessionNumber)
        let key = report.studyInstanceUID.map { "study \($0)" } ?? "accession number \(report.accessionNumber)"
        guard !studies.isEmpty else { return .waiting("\(key) is neither in the spool nor at the archive yet") }
        guard studies.count == 1, let study = studies.first else {
            throw Refusal(description: "\(key) names \(studies.count) studies of the spool")
        }
        // Never across issuers: the report's patient must be the study's, in the study's issuer.
        let matches = report.patientIdentifiers.contains { identifier in
            identifier.id == study.patientID
                && (identifier.issuers.isEmpty ? study.issuerOfPatientID == (site.issuerOfPatientID ?? "")
                    : identifier.issuers.contains(study.issuerOfPatientID)
                        || (site.issuerOID.map { identifier.issuers.contains($0) } ?? false)
                            && study.issuerOfPatientID == (site.issuerOfPatientID ?? ""))
        }
        guard matches else {
            let named = report.patientIdentifiers.map { "\($0.id)^^^\($0.issuers.first ?? "")" }.joined(separator: "~")
            throw Refusal(description: "PID-3 \(named) is not the patient of \(key) (\(study.patientID), issuer \(study.issuerOfPatientID))")
        }
        let predecessor = report.resultStatus == "C"
            ? try spool.database.latestHL7Report(studyInstanceUID: study.studyInstanceUID,
                                                 fillerOrderNumber: report.fillerOrderNumber)
            : nil
        // Made from the message alone (UIDs, creation time): the same message, the same instance.
        let document = ReportDocument(report: report, study: study, predecessor: predecessor, uids: uids,
                                      key: "\(row.sendingApplication)^\(row.sendingFacility)^\(row.controlID)",
                                      institution: site.name, createdAt: row.receivedAt)
        let header = InstanceRecord.header(
            sopInstanceUID: document.sopInstanceUID, sopClassUID: document.sopClassUID,
            transferSyntaxUID: TransferSyntax.explicitVRLittleEndian.uid, callingAETitle: "HL7:\(row.sendingApplication)",
            receivedAt: row.receivedAt, dataSetOffset: document.dataSetOffset, payloadLength: document.part10.readableBytes,
            crc32c: CRC32C.checksum(document.part10.readableBytesView))
        var source = try SlicesByteSource([document.part10], skipping: document.dataSetOffset)
        let attributes = try InstanceRecord.attributes(
            from: &source, transferSyntax: .explicitVRLittleEndian,
            length: document.part10.readableBytes - document.dataSetOffset,
            sopClassUID: document.sopClassUID, sopInstanceUID: document.sopInstanceUID)
        _ = try spool.store(.inline([document.part10]), header: header) { location in
            InstanceRecord.newInstance(header: header, location: location, attributes: attributes)
        }
        let kind = document.sopClassUID == UIDRegistry.basicTextSRStorageSOPClassUID ? "Basic Text SR" : "Encapsulated PDF"
        let detail = "\(kind) \(document.sopInstanceUID) in study \(study.studyInstanceUID)"
            + (predecessor.map { ", replacing \($0.sopInstanceUID)" } ?? "")
        audit.post(AuditEvent(action: .reportCreated, at: now,
                              actor: .init(address: row.peer, userName: "HL7 \(row.sendingApplication)^\(row.sendingFacility)"),
                              patients: [AuditEvent.Patient(id: study.patientID, issuer: study.issuerOfPatientID)],
                              studies: [study.studyInstanceUID],
                              details: ["sop_instance_uid": document.sopInstanceUID, "sop_class_uid": document.sopClassUID,
                                        "hl7_control_id": row.controlID, "result_status": report.resultStatus]))
        try spool.database.recordHL7Report(
            HL7ReportRecord(studyInstanceUID: study.studyInstanceUID, fillerOrderNumber: report.fillerOrderNumber,
                            resultStatus: report.resultStatus, sopClassUID: document.sopClassUID,
                            sopInstanceUID: document.sopInstanceUID, seriesInstanceUID: document.seriesInstanceUID),
            messageID: row.id, detail: detail, at: now)
        return .applied(detail)
    }
}
