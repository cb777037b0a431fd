import DICOMweb
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import ServiceLifecycle
import Spool

/// Carries out late oppositions at the shared destinations (docs/rights.md):
/// - **sweeps**: each shared destination is searched (QIDO-RS) for the studies a new opposition
///   covers, including those the spool purged long ago; each found gets a withdrawal;
/// - **withdrawals**: by the destination's `withdraw` method, then confirmed by QIDO-RS — only a
///   study QIDO-RS no longer finds is withdrawn. Failures back off; `manual` ones stay an alarm
///   until an operator reports them done.
///
/// Everything is in the spool, so a restart (or kill -9) resumes where it was.
public final class WithdrawalService: Service {
    private let rights: PatientRights
    private let spool: Spool
    private let threadPool: NIOThreadPool
    private let logger: Logger
    /// How often a manual withdrawal not yet reported done is logged again.
    static let manualReminder: Duration = .seconds(600)
    /// How long a withdrawal waits for chunks still being sent to the destination.
    static let inFlightWait: Duration = .seconds(2)

    public init(rights: PatientRights, spool: Spool, threadPool: NIOThreadPool, logger: Logger) {
        self.rights = rights
        self.spool = spool
        self.threadPool = threadPool
        self.logger = logger
    }

    /// Audit rows are written on the thread pool (they are a spool commit).
    private func audit(_ act: RightsAct) async {
        _ = try? await threadPool.runIfActive(eventLoop: MultiThreadedEventLoopGroup.singleton.any()) {
            self.rights.audit(act)
        }.get()
    }

    private func database<T: Sendable>(_ body: @escaping @Sendable (SpoolDatabase) throws -> T) async throws -> T {
        let database = spool.database
        return try await threadPool.runIfActive { try body(database) }
    }

    public func run() async {
        await cancelWhenGracefulShutdown { await self.work() }
    }

    private func work() async {
        var clients = DestinationClients(logger: logger)
        while !Task.isCancelled {
            let configuration = rights.current
            await clients.follow(configuration)
            func client(_ name: String) throws -> (settings: DestinationSettings, client: DICOMwebClient)? {
                guard configuration.sharingRules.sharedDestinations.contains(name) else { return nil }
                return try clients.client(name, in: configuration)
            }
            let backoff = Backoff(minimum: configuration.upload.retryMin, maximum: configuration.upload.retryMax)
            do {
                for sweep in try await database({ try $0.dueSweeps() }) where !Task.isCancelled {
                    await self.sweep(sweep.opposition, at: sweep.destination, attempts: sweep.attempts,
                                     client: try client(sweep.destination), configuration: configuration, backoff: backoff)
                }
                for withdrawal in try await database({ try $0.dueWithdrawals() }) where !Task.isCancelled {
                    await withdraw(withdrawal, client: try client(withdrawal.destination), backoff: backoff)
                }
                for withdrawal in try await database({ try $0.dueReportWithdrawals() }) where !Task.isCancelled {
                    await withdraw(withdrawal, client: try client(withdrawal.destination), backoff: backoff)
                }
                let resends = try await database { try $0.dueResends() }
                if !resends.isEmpty {
                    // One client of the archive for the pass, not one per study.
                    let archive = configuration.destinations.first { $0.upload && !$0.shared }
                    let source = try archive.map { (name: $0.name, client: try $0.makeClient(upload: configuration.upload,
                                                                                             logger: logger)) }
                    do {
                        for withdrawal in resends where !Task.isCancelled {
                            await resend(withdrawal, from: source, to: try client(withdrawal.destination),
                                         configuration: configuration, backoff: backoff)
                        }
                    } catch {
                        // AsyncHTTPClient traps on a client released without shutdown.
                        try? await source?.client.shutdown()
                        throw error
                    }
                    try? await source?.client.shutdown()
                }
            } catch where !Task.isCancelled {
                logger.error("withdrawals: spool unavailable", metadata: ["error": "\(error)"])
            } catch {
                break
            }
            let next = [(try? await database { try $0.nextRightsWork() }) ?? nil,
                        (try? await database { try $0.nextReportWithdrawal() }) ?? nil].compactMap { $0 }.min()
            let wait = next.map { max(0, $0.timeIntervalSinceNow) } ?? 3600
            await rights.withdrawalsChanged.wait(upTo: .milliseconds(Int64(min(wait, 3600) * 1000) + 10))
        }
        await clients.shutdown()
    }

    // MARK: Sweeps

    private func sweep(_ opposition: Opposition, at destination: String, attempts: Int,
                       client: (settings: DestinationSettings, client: DICOMwebClient)?,
                       configuration: GatewayConfiguration, backoff: Backoff) async {
        let id = opposition.id
        guard let client else {
            // No longer a shared destination: nothing to search there.
            _ = try? await database { try $0.recordSweep(oppositionID: id, destination: destination, found: []) }
            return
        }
        do {
            let found = try await studies(at: client.client, covering: opposition.subject,
                                          siteIssuer: configuration.site.issuerOfPatientID ?? "",
                                          emptyIssuerIsOurs: !configuration.upload.fillIssuerOfPatientID)
            let queued = try await database { try $0.recordSweep(oppositionID: id, destination: destination, found: found) }
            logger.notice("shared destination searched for an opposition's studies", metadata: [
                "destination": "\(destination)", "subject": "\(opposition.subject)",
                "found": "\(found.count)", "withdrawals_queued": "\(queued.count)"])
        } catch {
            let delay = backoff.delay(afterFailures: attempts + 1)
            let until = Date().addingTimeInterval(Backoff.seconds(delay))
            logger.warning("cannot search the shared destination for an opposition's studies", metadata: [
                "destination": "\(destination)", "subject": "\(opposition.subject)", "error": "\(error)",
                "next_attempt": "\(until)"])
            try? await database { try $0.postponeSweep(oppositionID: id, destination: destination, until: until,
                                                       error: "\(error)") }
        }
    }

    /// The studies of this site at a destination that a subject covers: the patient ID exactly
    /// (no fuzzy or wildcard match) and qualified by its issuer. A study without
    /// IssuerOfPatientID is the site's only when the site sends them so (`fill_issuer_of_patient_id
    /// = false`); otherwise it is another site's and never touched.
    func studies(at client: DICOMwebClient, covering subject: RightsSubject, siteIssuer: String,
                 emptyIssuerIsOurs: Bool) async throws -> [(studyUID: String, patientID: String?)] {
        func search(patientID: String, issuer: String) async throws(DICOMwebError) -> [(studyUID: String, patientID: String?)] {
            try await client.studies(ofPatient: patientID, issuer: issuer, siteIssuer: siteIssuer,
                                     emptyIssuerIsOurs: emptyIssuerIsOurs).map { ($0, patientID) }
        }
        switch subject {
        case .study(let uid):
            return try await client.search("studies", parameters: [("StudyInstanceUID", uid)])
                .filter { $0.string(.studyInstanceUID) == uid }.map { (uid, $0.string(.patientID)) }
        case .patient(let id, let issuer):
            return try await search(patientID: id, issuer: issuer)
        case .ins(let ins):
            // Hubs rarely search the Other Patient IDs Sequence: the patients the spool saw with
            // this INS are searched by their IDs.
            // Only studies the INS covers: one the spool holds without it is not withdrawn.
            var found: [(studyUID: String, patientID: String?)] = []
            for patient in try await database({ try $0.patients(withINS: ins) }) {
                for hit in try await search(patientID: patient.patientID,
                                            issuer: patient.issuer.isEmpty ? siteIssuer : patient.issuer)
                where try await database({ try $0.study(hit.studyUID, carriesINS: ins) }) != false {
                    found.append(hit)
                }
            }
            return found
        }
    }

    // MARK: Withdrawals

    private func withdraw(_ withdrawal: Withdrawal, client: (settings: DestinationSettings, client: DICOMwebClient)?,
                          backoff: Backoff) async {
        let metadata: Logger.Metadata = [
            "study_uid": "\(withdrawal.studyUID)", "destination": "\(withdrawal.destination)"]
        guard let (settings, client) = client else {
            await postpone(withdrawal, by: .seconds(600),
                           error: "\(withdrawal.destination) is not a configured shared destination", metadata: metadata)
            return
        }
        do {
            if try await database({ try $0.hasInFlight(studyUID: withdrawal.studyUID, destination: withdrawal.destination) }) {
                await postpone(withdrawal, by: Self.inFlightWait, error: nil, metadata: metadata, quiet: true)
                return
            }
            switch settings.withdraw {
            case .manual:
                guard withdrawal.confirmedBy != nil else {
                    let command = "passerellectl opposition done \(withdrawal.studyUID) --by NAME"
                    logger.warning("manual withdrawal required: delete the study at the shared destination, then run `\(command)`",
                                   metadata: metadata)
                    await postpone(withdrawal, by: Self.manualReminder, error: "manual withdrawal required", metadata: metadata,
                                   quiet: true)
                    return
                }
            case .orthanc(let url):
                try await client.deleteOrthancStudy(withdrawal.studyUID, orthancURL: url)
            case .dicomwebDelete:
                try await client.deleteStudy(withdrawal.studyUID)
            }
            if try await client.studyExists(withdrawal.studyUID) {
                throw WithdrawalFailure(message: "QIDO-RS still finds the study at \(withdrawal.destination)")
            }
            try await database { try $0.recordWithdrawn(withdrawal) }
            logger.notice("study withdrawn from a shared destination", metadata: metadata.merging([
                "method": "\(settings.withdraw)", "patient_id": "\(withdrawal.patientID ?? "")"]) { $1 })
            await audit(.withdrawal(withdrawal, method: "\(settings.withdraw)", outcome: .success(())))
        } catch {
            let message = (error as? WithdrawalFailure)?.message ?? "\(error)"
            await audit(.withdrawal(withdrawal, method: "\(settings.withdraw)",
                                    outcome: .failure(WithdrawalFailure(message: message))))
            await postpone(withdrawal, by: backoff.delay(afterFailures: withdrawal.attempts + 1), error: message,
                           metadata: metadata)
        }
    }

    /// A report the RIS cancelled (OBR-25 = X), removed from one shared destination by its
    /// `withdraw` method and confirmed by QIDO-RS; `manual`: an operator deletes it there,
    /// Passerelle checks again every 10 minutes.
    private func withdraw(_ withdrawal: ReportWithdrawal, client: (settings: DestinationSettings, client: DICOMwebClient)?,
                          backoff: Backoff) async {
        let metadata: Logger.Metadata = ["sop_instance_uid": "\(withdrawal.sopInstanceUID)",
                                         "study_uid": "\(withdrawal.studyInstanceUID)",
                                         "destination": "\(withdrawal.destination)",
                                         "hl7_control_id": "\(withdrawal.controlID)"]
        func postpone(by delay: Duration, error: String?, failed: Bool) async {
            let until = Date().addingTimeInterval(Backoff.seconds(delay))
            if failed {
                logger.warning("cancelled report not withdrawn yet; retrying", metadata: metadata.merging([
                    "error": "\(error ?? "")", "next_attempt": "\(until)"]) { $1 })
            }
            try? await database { try $0.postponeReportWithdrawal(withdrawal, until: until, error: error, failed: failed) }
        }
        guard let (settings, client) = client else {
            await postpone(by: .seconds(600), error: "\(withdrawal.destination) is not a configured shared destination",
                           failed: true)
            return
        }
        let (study, sop) = (withdrawal.studyInstanceUID, withdrawal.sopInstanceUID)
        do {
            if try await database({ try $0.hasInFlight(studyUID: study, destination: withdrawal.destination) }) {
                await postpone(by: Self.inFlightWait, error: nil, failed: false)
                return
            }
            switch settings.withdraw {
            case .manual:
                guard !(try await client.instanceExists(study: study, sopInstanceUID: sop)) else {
                    logger.warning("manual withdrawal required: delete the cancelled report at the shared destination",
                                   metadata: metadata)
                    await postpone(by: Self.manualReminder, error: "manual withdrawal required: delete instance \(sop)",
                                   failed: false)
                    return
                }
            case .orthanc(let url):
                try await client.deleteOrthancInstance(sop, orthancURL: url)
            case .dicomwebDelete:
                try await client.deleteInstance(study: study, series: withdrawal.seriesInstanceUID, sopInstanceUID: sop)
            }
            if try await client.instanceExists(study: study, sopInstanceUID: sop) {
                throw WithdrawalFailure(message: "QIDO-RS still finds the instance at \(withdrawal.destination)")
            }
            try await database { try $0.recordReportWithdrawn(withdrawal) }
            logger.notice("cancelled report withdrawn from a shared destination", metadata: metadata)
            await audit(.reportWithdrawal(withdrawal, method: "\(settings.withdraw)"))
        } catch {
            let message = (error as? WithdrawalFailure)?.message ?? "\(error)"
            await postpone(by: backoff.delay(afterFailures: withdrawal.attempts + 1), error: message, failed: true)
        }
    }

    // MARK: Sharing again

    /// A lifted opposition whose study the spool purged: the study is retrieved from the
    /// archive (WADO-RS) and stored at the shared destination (STOW-RS), then checked there
    /// (QIDO-RS). Without an archive to take it from it stays `needs_resend`, an alarm.
    private func resend(_ withdrawal: Withdrawal, from source: (name: String, client: DICOMwebClient)?,
                        to target: (settings: DestinationSettings, client: DICOMwebClient)?,
                        configuration: GatewayConfiguration, backoff: Backoff) async {
        let metadata: Logger.Metadata = [
            "study_uid": "\(withdrawal.studyUID)", "destination": "\(withdrawal.destination)"]
        guard let source, let target else {
            await postpone(withdrawal, by: .seconds(3600),
                           error: source == nil ? "no archive destination to retrieve the study from: send it again by hand"
                                                : "\(withdrawal.destination) is not a configured shared destination",
                           metadata: metadata)
            return
        }
        let rules = configuration.sharingRules
        if (try? await database({ try $0.isOpposed(withdrawal, rules: rules) })) == true {
            _ = try? await database { try $0.keepWithdrawn(withdrawal) }  // opposed again meanwhile
            return
        }
        let files = NIOLockedValueBox<[String]>([])
        defer { for path in files.withLockedValue({ $0 }) { unlink(path) } }
        do {
            let parts = try await source.client.retrieveInstances(
                "studies/\(withdrawal.studyUID)", into: spool.files.temporaryDirectory) { path, _ in files.withLockedValue { $0.append(path) } }
            guard parts > 0 else {
                throw WithdrawalFailure(message: "the archive \(source.name) does not have the study")
            }
            let items = files.withLockedValue { $0 }.compactMap { path in
                CommunityRetrieve.meta(path).map { (path: path, sopInstanceUID: $0.sopInstance) }
            }
            for start in stride(from: 0, to: items.count, by: configuration.upload.chunkMaxInstances) {
                let chunk = Array(items[start..<min(start + configuration.upload.chunkMaxInstances, items.count)])
                let results = try await target.client.store(files: chunk)
                if let failed = chunk.first(where: { if case .stored = results[$0.sopInstanceUID] { false } else { true } }) {
                    throw WithdrawalFailure(message: "\(withdrawal.destination) did not store \(failed.sopInstanceUID)")
                }
            }
            let held = try await target.client.instances(inStudy: withdrawal.studyUID)
            guard Set(items.map(\.sopInstanceUID)).isSubset(of: Set(held.keys)) else {
                throw WithdrawalFailure(message: "QIDO-RS does not list every instance sent again")
            }
            try await database { try $0.recordReshared(withdrawal) }
            logger.notice("study shared again from the archive", metadata: metadata.merging([
                "source": "\(source.name)", "instances": "\(items.count)"]) { $1 })
        } catch {
            let message = (error as? WithdrawalFailure)?.message ?? "\(error)"
            await postpone(withdrawal, by: backoff.delay(afterFailures: withdrawal.attempts + 1), error: message,
                           metadata: metadata)
        }
    }

    /// `quiet`: a wait (chunks in flight, the operator), neither logged as a failure nor
    /// counted as an attempt.
    private func postpone(_ withdrawal: Withdrawal, by delay: Duration, error: String?, metadata: Logger.Metadata,
                          quiet: Bool = false) async {
        let until = Date().addingTimeInterval(Backoff.seconds(delay))
        if !quiet {
            logger.warning(withdrawal.state == .needsResend ? "sending again failed; retrying" : "withdrawal failed; retrying", metadata: metadata.merging([
                "error": "\(error ?? "")", "next_attempt": "\(until)", "attempts": "\(withdrawal.attempts + 1)"]) { $1 })
        }
        try? await database { try $0.postponeWithdrawal(withdrawal, until: until, error: error, failed: !quiet) }
    }
}

extension DICOMwebClient {
    /// The studies of one patient at a destination: the patient ID exactly (no fuzzy or
    /// wildcard match) and qualified by its issuer. A study without IssuerOfPatientID is the
    /// site's only when the site sends them so (`emptyIssuerIsOurs`); otherwise it is another
    /// site's and never touched.
    func studies(ofPatient patientID: String, issuer: String, siteIssuer: String,
                 emptyIssuerIsOurs: Bool) async throws(DICOMwebError) -> [String] {
        try await search("studies", parameters: [
            ("PatientID", patientID), ("includefield", "00100021"), ("limit", "1000"),
        ]).filter {
            guard $0.string(.patientID) == patientID else { return false }
            let found = $0.string(.issuerOfPatientID) ?? ""
            return found.isEmpty ? (emptyIssuerIsOurs && issuer == siteIssuer) : found == issuer
        }.compactMap { $0.string(.studyInstanceUID) }
    }
}

/// The DICOMweb clients of a service that works at several destinations, made when first
/// needed and following the configuration: a changed or removed destination loses its client.
struct DestinationClients {
    let logger: Logger
    private var clients: [String: (settings: DestinationSettings, client: DICOMwebClient)] = [:]

    init(logger: Logger) {
        self.logger = logger
    }

    mutating func follow(_ configuration: GatewayConfiguration) async {
        for (name, entry) in clients where configuration.destinations.first(where: { $0.name == name }) != entry.settings {
            try? await entry.client.shutdown()
            clients[name] = nil
        }
    }

    /// The client of a destination the site uploads to (nil: none by that name).
    mutating func client(_ name: String, in configuration: GatewayConfiguration) throws
        -> (settings: DestinationSettings, client: DICOMwebClient)? {
        if let entry = clients[name] { return entry }
        guard let settings = configuration.destinations.first(where: { $0.name == name && $0.upload }) else { return nil }
        let made = (settings, try settings.makeClient(upload: configuration.upload, logger: logger))
        clients[name] = made
        return made
    }

    /// AsyncHTTPClient traps on a client released without shutdown.
    mutating func shutdown() async {
        for entry in clients.values { try? await entry.client.shutdown() }
        clients = [:]
    }
}

extension DestinationSettings {
    /// The DICOMweb client of this destination (its TLS, token and the upload's timeouts).
    func makeClient(upload: UploadSettings, logger: Logger) throws -> DICOMwebClient {
        let tls: TLSSettings? = url.scheme?.lowercased() == "https"
            ? TLSSettings(caFile: ca, certificateFile: clientCertificate, privateKeyFile: clientKey)
            : nil
        var logger = logger
        logger[metadataKey: "destination"] = "\(name)"
        return try DICOMwebClient(
            baseURL: url, tls: tls, bearerToken: token,
            timeouts: DICOMwebTimeouts(connect: upload.connectTimeout, read: upload.requestTimeout,
                                       request: upload.requestTimeout),
            logger: logger)
    }
}
