import DICOMCore
import DICOMNetwork
import DICOMQuery
import DICOMweb
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Spool

/// One C-MOVE or C-GET on a community: the instances are listed (QIDO-RS, or the cache),
/// fetched by WADO-RS into `cache/` a few at a time, and each sent by C-STORE as soon as it is
/// on disk — to the move destination on a new association, or on the requestor's own (C-GET).
struct CommunityRetrieve {
    let proxy: CommunityProxy
    let folder: CommunityProxy.Folder
    let request: QueryRetrieveRequest
    let association: AssociationContext
    let responder: QueryRetrieveResponder
    let logger: Logger

    typealias Item = RetrievePlanner.Item
    typealias Plan = RetrievePlanner.Plan
    typealias SeriesPlan = RetrievePlanner.SeriesPlan

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The outcome as the final response tells it.
    struct Outcome {
        var status: DIMSEStatus
        var tally = SubOperationTally(total: 0)
        var comment: String?
        /// Time spent waiting for the next instance to be on disk, and sending (C-STORE).
        var waiting: Duration = .zero
        var sending: Duration = .zero
    }

    var isGet: Bool { if case .get = request.command { true } else { false } }
    /// Cache rows are per hub: the destination's name.
    var community: String { folder.settings.destination }

    func run() async {
        let started = ContinuousClock.now
        var access = CommunityAccess(callingAETitle: association.callingAETitle, calledAETitle: association.calledAETitle,
                                     operation: isGet ? "GET" : "MOVE", query: "", status: 0)
        let outcome = await perform(&access)
        let milliseconds = { (duration: Duration) in Int(duration / .milliseconds(1)) }
        var identifier: ByteBuffer?
        let failed = outcome.tally.failedSOPInstanceUIDList
        if !failed.isEmpty {
            identifier = IdentifierCodec.encode([QueryAttribute(tag: .failedSOPInstanceUIDList, vr: "UI", values: failed)],
                                                requested: .default, transferSyntax: request.transferSyntax)
        }
        responder.respond(QueryRetrieveResponder.message(
            for: request, status: outcome.status, errorComment: outcome.comment, counts: outcome.tally.counts,
            hasIdentifier: identifier != nil), identifier: identifier)
        access.status = outcome.status.rawValue
        access.completed = outcome.tally.counts.completed
        access.failed = outcome.tally.counts.failed
        access.warnings = outcome.tally.counts.warning
        access.error = outcome.comment
        access.durationMilliseconds = Int((ContinuousClock.now - started) / .milliseconds(1))
        logger.info("community retrieve", metadata: [
            "operation": "\(access.operation)", "level": "\(access.level ?? "?")", "keys": "\(access.query)",
            "destination": "\(access.moveDestination ?? association.callingAETitle)", "instances": "\(access.results)",
            "completed": "\(access.completed)", "failed": "\(access.failed)", "status": "\(outcome.status)",
            "duration_ms": "\(access.durationMilliseconds)", "waiting_for_hub_ms": "\(milliseconds(outcome.waiting))",
            "sending_ms": "\(milliseconds(outcome.sending))",
        ].merging(outcome.comment.map { ["error": "\($0)"] } ?? [:]) { a, _ in a })
        await proxy.trace(access, association: association, sopClassUID: request.affectedSOPClassUID)
    }

    private func perform(_ access: inout CommunityAccess) async -> Outcome {
        let query: RetrieveQuery
        do {
            let decoded = try IdentifierCodec.decode(request.identifier, transferSyntax: request.transferSyntax)
            access.query = QueryAttribute.describe(decoded.attributes)
            guard let model = QueryModel(sopClassUID: request.affectedSOPClassUID) else {
                return Outcome(status: .sopClassNotSupported, comment: "not a query/retrieve SOP class")
            }
            query = try RetrieveQuery(identifier: decoded.attributes, model: model)
        } catch let error as QueryError {
            return Outcome(status: .identifierDoesNotMatchSOPClass, comment: error.message)
        } catch {
            return Outcome(status: .identifierDoesNotMatchSOPClass, comment: "unreadable identifier: \(error)")
        }
        access.level = query.level.rawValue
        access.studyUIDs = query.studyUIDs

        var destination: KnownAE?
        if case .move(let move) = request.command {
            let title = move.moveDestination.trimmingCharacters(in: .whitespaces)
            access.moveDestination = title
            guard let known = proxy.configuration.knownAEs.first(where: { $0.title == title }) else {
                return Outcome(status: .moveDestinationUnknown, comment: "\(title) is not an [[ae]] of the configuration")
            }
            destination = known
        }

        let plan: Plan
        do {
            plan = try await RetrievePlanner(hub: folder.search, spool: proxy.spool, threadPool: proxy.threadPool,
                                             community: community).plan(query)
        } catch {
            if Task.isCancelled { return Outcome(status: .cancel) }
            return Outcome(status: Self.unableToCalculateMatches, comment: "community: \(Self.describe(error))")
        }
        access.results = plan.total
        if access.studyUIDs.isEmpty { access.studyUIDs = plan.studies }
        guard plan.total > 0 else { return Outcome(status: .success) }

        // The C-STORE side: a new association to the move destination, or the requestor's.
        var storage: DICOMAssociation?
        if let destination {
            do {
                storage = try await DICOMClient.connect(
                    host: destination.host, port: destination.port, callingAETitle: association.calledAETitle,
                    calledAETitle: destination.title, presentationContexts: DICOMClient.proposals(forSendingSOPClasses: plan.sopClasses),
                    tls: try destination.clientContext(),
                    group: MultiThreadedEventLoopGroup.singleton, threadPool: proxy.threadPool, logger: logger)
            } catch {
                var tally = SubOperationTally(total: plan.total)
                for item in plan.known { tally.record(.failed(sopInstanceUID: item.sopInstance, reason: nil)) }
                for series in plan.series {
                    for _ in 0..<series.expected { tally.record(.failed(sopInstanceUID: "", reason: nil)) }
                }
                return Outcome(status: .refusedOutOfResourcesSubOps, tally: tally,
                               comment: "cannot associate with \(destination.title): \(error)")
            }
        }
        let outcome = await send(plan, to: storage, wholeStudies: query.level <= .study)
        if let storage {
            if outcome.status == .cancel { await storage.abort() } else { try? await storage.release() }
        }
        return outcome
    }

    // MARK: Sending

    /// Fetches (up to `parallelFetches` requests at once) and sends each instance as it lands
    /// on disk, with a pending response after each sub-operation. The fetching is a child
    /// task: it is cancelled with the retrieval and awaited before the final response, so
    /// nothing is written into the cache after it.
    /// `wholeStudies`: the identifier asked for whole studies (PATIENT or STUDY level), whose
    /// cache then counts as complete.
    private func send(_ plan: Plan, to storage: DICOMAssociation?, wholeStudies: Bool) async -> Outcome {
        var outcome = Outcome(status: .success, tally: SubOperationTally(total: plan.total))
        let (stream, continuation) = AsyncStream.makeStream(of: (Item, Result<String, Failure>).self)
        var sentPerStudy: [String: Int] = [:]
        var failedStudies: Set<String> = []
        var associationLost: String?
        let accepted = (storage?.acceptedContexts ?? association.acceptedContexts).values
            .map { ($0.abstractSyntax, $0.transferSyntax) }
        await withTaskGroup(of: Void.self) { fetching in
            fetching.addTask { await fetchAll(plan, into: continuation) }
            let clock = ContinuousClock()
            var mark = clock.now
            for await (item, result) in stream {
                outcome.waiting += clock.now - mark
                defer { mark = clock.now }
                if Task.isCancelled { break }
                switch result {
                case .failure(let failure):
                    failedStudies.insert(item.study)
                    outcome.tally.record(.failed(sopInstanceUID: item.sopInstance,
                                                 reason: "\(item.sopInstance): \(failure)"))
                case .success where associationLost != nil:
                    outcome.tally.record(.failed(sopInstanceUID: item.sopInstance, reason: nil))
                case .success(let stored):
                    sentPerStudy[item.study, default: 0] += 1
                    let started = clock.now
                    let (sent, lost) = await subOperation(item, stored, on: storage, accepted: accepted)
                    outcome.sending += clock.now - started
                    outcome.tally.record(sent)
                    if let lost { associationLost = lost }
                }
                if Task.isCancelled { break }
                responder.respond(QueryRetrieveResponder.message(for: request, status: .pending,
                                                                 counts: outcome.tally.counts))
            }
            fetching.cancelAll()
        }
        if Task.isCancelled {
            outcome.status = .cancel
            return outcome
        }
        if wholeStudies {
            await markCached(sentPerStudy.filter { !failedStudies.contains($0.key) })
        }
        outcome.status = outcome.tally.finalStatus
        outcome.comment = associationLost.map { "association lost: \($0)" } ?? outcome.tally.firstFailure
        return outcome
    }

    /// One C-STORE sub-operation, re-encoded when the peer took only the other uncompressed
    /// encoding; also says when the association is lost (the rest then fail without trying).
    private func subOperation(_ item: Item, _ stored: String, on storage: DICOMAssociation?,
                              accepted: [(String, String)]) async -> (SubOperationTally.Outcome, lost: String?) {
        do {
            let result = try await storeAsAccepted(stored, on: storage, accepted: accepted)
            switch result.status.kind {
            case .success: return (.completed, nil)
            case .warning: return (.warning, nil)
            default:
                let reason = "\(item.sopInstance): C-STORE \(result.status)\(result.errorComment.map { " \($0)" } ?? "")"
                return (.failed(sopInstanceUID: item.sopInstance, reason: reason), nil)
            }
        } catch {
            let code = (error as? DICOMNetworkError)?.code
            let lost = code != .noAcceptedPresentationContext && code != .invalidFile ? "\(error)" : nil
            return (.failed(sopInstanceUID: item.sopInstance, reason: "\(item.sopInstance): \(error)"), lost)
        }
    }

    /// The C-STORE, re-encoded when the peer took only the other uncompressed encoding.
    private func storeAsAccepted(_ stored: String, on storage: DICOMAssociation?,
                                 accepted: [(String, String)]) async throws -> CStoreResult {
        do {
            return try await store(stored, on: storage)
        } catch where error.code == .noAcceptedPresentationContext {
            let path = try await reencodedForPeer(stored, accepted: accepted)
            guard path != stored else { throw error }
            defer { unlink(path) }
            return try await store(path, on: storage)
        }
    }

    /// One C-STORE sub-operation: on the move destination's association, or the requestor's (C-GET).
    private func store(_ path: String, on storage: DICOMAssociation?) async throws(DICOMNetworkError)
        -> CStoreResult
    {
        if let storage {
            return try await storage.store(fileAt: path, moveOriginatorAETitle: association.callingAETitle,
                                           moveOriginatorMessageID: request.messageID)
        }
        return try await responder.store(fileAt: path)
    }

    /// The file to send: as stored when a context takes its transfer syntax, else re-encoded
    /// (into a temporary file) between Explicit and Implicit VR Little Endian when the peer
    /// accepted only the other for its SOP class.
    private func reencodedForPeer(_ path: String, accepted: [(String, String)]) async throws -> String {
        try await proxy.threadPool.runIfActive {
            var source = try FileByteSource(path: path)
            let meta = try Part10.readFileMetaInformation(from: &source)
            guard let sopClass = meta.mediaStorageSOPClassUID, let syntax = meta.transferSyntaxUID else { return path }
            let offered = accepted.filter { $0.0 == sopClass }.map(\.1)
            if offered.contains(syntax) { return path }
            guard let target = offered.first(where: { DataSetTranscoder.canTranscode(from: syntax, to: $0) }) else {
                return path  // the store reports that no context fits
            }
            let temporary = path + ".\(target == TransferSyntax.implicitVRLittleEndian.uid ? "ile" : "ele").tmp"
            try DataSetTranscoder.transcode(path, to: target, destination: temporary)
            return temporary
        }
    }

    static func describe(_ error: any Error) -> String {
        (error as? DICOMwebError)?.message ?? "\(error)"
    }

    /// C-MOVE/C-GET "Refused: Out of resources – Unable to calculate number of matches" (PS3.4 C.4.2.1.5).
    static let unableToCalculateMatches = DIMSEStatus(0xA701)
}
