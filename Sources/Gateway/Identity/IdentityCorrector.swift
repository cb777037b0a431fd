import Audit
import DICOMCore
import DICOMweb
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import ServiceLifecycle
import Spool

/// Carries identity updates from the PAS to the studies already delivered (docs/hl7.md,
/// "Identity updates"):
/// - **sweeps**: each destination is searched (QIDO-RS) for the corrected patient's studies,
///   those the spool purged long ago included; each found gets a correction;
/// - **corrections**: the study retrieved from the destination (WADO-RS), corrected and stored
///   again (STOW-RS) at a hub that overwrites instances (at Orthanc, `identity_update =
///   "orthanc"` also deletes the copy left under a changed patient ID) — then **verified**: only a study QIDO-RS shows with the identity
///   in force is corrected. Failures back off like uploads and show in status.
///
/// Everything is in the spool, so a restart (or kill -9) resumes where it was.
final class IdentityCorrector: Service, Sendable {
    private let rights: PatientRights
    private let spool: Spool
    private let threadPool: NIOThreadPool
    private let audit: AuditTrail
    private let logger: Logger
    /// Signalled when an identity update is applied.
    let wakeup = Wakeup()

    init(rights: PatientRights, spool: Spool, threadPool: NIOThreadPool, audit: AuditTrail, logger: Logger) {
        self.rights = rights
        self.spool = spool
        self.threadPool = threadPool
        self.audit = audit
        self.logger = logger
    }

    private func database<T: Sendable>(_ body: @escaping @Sendable (SpoolDatabase) throws -> T) async throws -> T {
        let database = spool.database
        return try await threadPool.runIfActive { try body(database) }
    }

    func run() async {
        await cancelWhenGracefulShutdown { await self.work() }
    }

    private func work() async {
        var clients = DestinationClients(logger: logger)
        while !Task.isCancelled {
            let configuration = rights.current
            await clients.follow(configuration)
            func client(_ name: String) throws -> (settings: DestinationSettings, client: DICOMwebClient)? {
                try clients.client(name, in: configuration)
            }
            let backoff = Backoff(minimum: configuration.upload.retryMin, maximum: configuration.upload.retryMax)
            do {
                for sweep in try await database({ try $0.dueIdentitySweeps() }) where !Task.isCancelled {
                    await self.sweep(sweep, client: try client(sweep.destination), configuration: configuration,
                                     backoff: backoff)
                }
                for correction in try await database({ try $0.dueIdentityCorrections() }) where !Task.isCancelled {
                    await correct(correction, client: try client(correction.destination), configuration: configuration,
                                  backoff: backoff)
                }
            } catch where !Task.isCancelled {
                logger.error("identity corrections: spool unavailable", metadata: ["error": "\(error)"])
            } catch {
                break
            }
            let next = (try? await database { try $0.nextIdentityWork() }) ?? nil
            let wait = next.map { max(0, $0.timeIntervalSinceNow) } ?? 3600
            await wakeup.wait(upTo: .milliseconds(Int64(min(wait, 3600) * 1000) + 10))
        }
        await clients.shutdown()
    }

    // MARK: Sweeps

    private func sweep(_ sweep: IdentitySweep, client: (settings: DestinationSettings, client: DICOMwebClient)?,
                       configuration: GatewayConfiguration, backoff: Backoff) async {
        let metadata: Logger.Metadata = ["destination": "\(sweep.destination)", "patient_id": "\(sweep.patientID)",
                                         "issuer": "\(sweep.issuer)", "hl7_control_id": "\(sweep.controlID)"]
        guard let client else {
            // No longer a destination the site uploads to: nothing of the site's there to correct.
            _ = try? await database { try $0.recordIdentitySweep(sweep, found: []) }
            return
        }
        do {
            let found = try await client.client.studies(ofPatient: sweep.patientID, issuer: sweep.issuer,
                                                        siteIssuer: configuration.site.issuerOfPatientID ?? "",
                                                        emptyIssuerIsOurs: !configuration.upload.fillIssuerOfPatientID)
            let queued = try await database { try $0.recordIdentitySweep(sweep, found: found) }
            logger.info("destination searched for a corrected patient's studies", metadata: metadata.merging([
                "found": "\(found.count)", "corrections_queued": "\(queued)"]) { $1 })
        } catch {
            let until = Date().addingTimeInterval(Backoff.seconds(backoff.delay(afterFailures: sweep.attempts + 1)))
            logger.warning("cannot search a destination for a corrected patient's studies; retrying", metadata: metadata.merging([
                "error": "\(error)", "next_attempt": "\(until)"]) { $1 })
            try? await database { try $0.postponeIdentitySweep(sweep, until: until, error: "\(error)") }
        }
    }

    // MARK: Corrections

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private func correct(_ correction: IdentityCorrection, client: (settings: DestinationSettings, client: DICOMwebClient)?,
                         configuration: GatewayConfiguration, backoff: Backoff) async {
        let metadata: Logger.Metadata = [
            "study_uid": "\(correction.studyInstanceUID)", "destination": "\(correction.destination)",
            "hl7_control_id": "\(correction.controlID)"]
        guard let (settings, client) = client else {
            await postpone(correction, by: .seconds(600), error: "\(correction.destination) is not a configured destination",
                           metadata: metadata)
            return
        }
        do {
            let (uid, destination) = (correction.studyInstanceUID, correction.destination)
            if try await database({ try $0.hasInFlight(studyUID: uid, destination: destination) }) {
                // Chunks leaving now carry the old identity or the new: wait, then correct the lot.
                await postpone(correction, by: .seconds(2), error: nil, metadata: metadata, quiet: true)
                return
            }
            let (issuer, patientID) = (correction.issuer, correction.patientID)
            guard let identity = try await database({ try $0.patientIdentity(issuer: issuer, patientID: patientID) }) else {
                try await database { try $0.recordIdentityCorrected(correction) }
                return
            }
            // Already right (a study sent after the update, a second update saying the same): done.
            guard let shown = try await shows(identity, study: uid, at: client) else {
                try await finish(correction, identity: identity, method: "none needed", metadata: metadata)
                return
            }
            try await resend(uid, identity: identity, client: client, configuration: configuration)
            if case .orthanc(let url) = settings.identityUpdate, shown.patientIDDiffers {
                // Orthanc keys a study by its patient ID too: stored again under the new ID, it
                // holds a second copy; the one under the old ID goes. (Orthanc's own modify
                // cannot change a study's patient ID without all its patient's studies —
                // other sites' among them.)
                try await client.deleteOrthancStudy(uid, orthancURL: url, exceptPatientID: identity.patientID)
            }
            if let difference = try await shows(identity, study: uid, at: client) {
                throw Failure(description: "QIDO-RS at \(destination) still shows \(difference.description)")
            }
            try await finish(correction, identity: identity, method: "\(settings.identityUpdate)", metadata: metadata)
        } catch {
            await postpone(correction, by: backoff.delay(afterFailures: correction.attempts + 1), error: "\(error)",
                           metadata: metadata)
        }
    }

    private func finish(_ correction: IdentityCorrection, identity: PatientIdentity, method: String,
                        metadata: Logger.Metadata) async throws {
        try await database { try $0.recordIdentityCorrected(correction) }
        logger.notice("study's identity corrected at a destination", metadata: metadata.merging([
            "method": "\(method)", "patient_id": "\(identity.patientID)"]) { $1 })
        var patients = [AuditEvent.Patient(id: identity.patientID, issuer: identity.issuer)]
        if correction.patientID != identity.patientID {
            patients.append(AuditEvent.Patient(id: correction.patientID, issuer: correction.issuer))
        }
        audit.post(AuditEvent(action: .identityCorrected, actor: .gateway, destination: correction.destination,
                              patients: patients, studies: [correction.studyInstanceUID],
                              details: ["method": method, "hl7_control_id": correction.controlID]))
    }

    /// What QIDO-RS at the destination shows that differs from an identity.
    struct Difference {
        var description: String
        var patientIDDiffers: Bool
    }

    /// What QIDO-RS at the destination shows that differs from `identity` (nil: it shows the
    /// identity, or the destination no longer holds the study: nothing left to correct).
    private func shows(_ identity: PatientIdentity, study uid: String, at client: DICOMwebClient) async throws -> Difference? {
        let results = try await client.search("studies", parameters: [
            ("StudyInstanceUID", uid), ("includefield", "00100010"), ("includefield", "00100020"),
            ("includefield", "00100030"), ("includefield", "00100040"),
        ])
        var wrong: [String] = []
        var patientIDDiffers = false
        for result in results where result.string(.studyInstanceUID) ?? uid == uid {
            if result.string(.patientID) != identity.patientID {
                wrong.append("PatientID \(result.string(.patientID) ?? "")")
                patientIDDiffers = true
            }
            if let name = identity.name, result.string(.patientName) != name {
                wrong.append("PatientName \(result.string(.patientName) ?? "")")
            }
            if let date = identity.birthDate, result.string(.patientBirthDate) != date {
                wrong.append("PatientBirthDate \(result.string(.patientBirthDate) ?? "")")
            }
            if let sex = identity.sex, result.string(.patientSex) != sex {
                wrong.append("PatientSex \(result.string(.patientSex) ?? "")")
            }
        }
        return wrong.isEmpty ? nil : Difference(description: wrong.joined(separator: ", "), patientIDDiffers: patientIDDiffers)
    }

    /// The study as the destination holds it (WADO-RS), each instance corrected on the way
    /// back (`IdentityEdit` splices) and stored again (STOW-RS), which a hub that overwrites
    /// instances takes as a replacement.
    private func resend(_ uid: String, identity: PatientIdentity, client: DICOMwebClient,
                        configuration: GatewayConfiguration) async throws {
        let files = NIOLockedValueBox<[String]>([])
        defer { for path in files.withLockedValue({ $0 }) { unlink(path) } }
        let count = try await client.retrieveInstances("studies/\(uid)", into: spool.files.temporaryDirectory) { path, _ in
            files.withLockedValue { $0.append(path) }
        }
        guard count > 0 else { throw Failure(description: "the destination returned no instance of \(uid)") }
        let fill = configuration.upload.fillIssuerOfPatientID ? configuration.site.issuerOfPatientID : nil
        var parts: [(part: STOWRequestBody.Part, sopInstanceUID: String)] = []
        for path in files.withLockedValue({ $0 }) {
            parts.append(try Self.corrected(path, identity: identity, fillIssuer: fill))
        }
        for start in stride(from: 0, to: parts.count, by: configuration.upload.chunkMaxInstances) {
            let chunk = Array(parts[start..<min(start + configuration.upload.chunkMaxInstances, parts.count)])
            let results = try await client.store(STOWRequestBody(parts: chunk.map(\.part)),
                                                 sopInstanceUIDs: chunk.map(\.sopInstanceUID))
            if let failed = chunk.first(where: { if case .stored = results[$0.sopInstanceUID] { false } else { true } }) {
                throw Failure(description: "the destination did not store \(failed.sopInstanceUID) again")
            }
        }
    }

    /// One retrieved Part-10 file as a STOW-RS part carrying `identity`.
    static func corrected(_ path: String, identity: PatientIdentity, fillIssuer: String?) throws
        -> (part: STOWRequestBody.Part, sopInstanceUID: String) {
        var source = try FileByteSource(path: path, bufferSize: 4096)
        let meta = try Part10.readFileMetaInformation(from: &source)
        let dataSetOffset = source.position
        guard let sopInstanceUID = meta.mediaStorageSOPInstanceUID,
              let syntax = meta.transferSyntaxUID.flatMap(TransferSyntax.init(uid:)) else {
            throw Failure(description: "\(path): no SOP instance UID or unknown transfer syntax in its meta information")
        }
        var info = stat()
        guard stat(path, &info) == 0 else { throw Failure(description: "cannot read \(path)") }
        let size = Int64(info.st_size)
        guard !syntax.isDeflated else {
            throw Failure(description: "\(sopInstanceUID) is deflated: cannot correct it in place")
        }
        let edit = try IdentityEdit(identity: identity, fillIssuer: fillIssuer, transferSyntax: syntax,
                                    length: Int(size) - dataSetOffset) {
            () throws(DataSetError) in try FileByteSource(path: path, offset: dataSetOffset)
        }
        let splices = edit.splices.map {
            STOWRequestBody.Part.Splice(offset: Int64(dataSetOffset) + $0.offset, removing: $0.removing, inserting: $0.inserting)
        }
        return (STOWRequestBody.Part(path: path, size: size, splices: splices), sopInstanceUID)
    }

    /// `quiet`: a wait (chunks in flight), neither logged as a failure nor counted as an attempt.
    private func postpone(_ correction: IdentityCorrection, by delay: Duration, error: String?, metadata: Logger.Metadata,
                          quiet: Bool = false) async {
        let until = Date().addingTimeInterval(Backoff.seconds(delay))
        if !quiet {
            logger.warning("identity correction failed; retrying", metadata: metadata.merging([
                "error": "\(error ?? "")", "next_attempt": "\(until)", "attempts": "\(correction.attempts + 1)"]) { $1 })
        }
        try? await database { try $0.postponeIdentityCorrection(correction, until: until, error: error, failed: !quiet) }
    }
}
