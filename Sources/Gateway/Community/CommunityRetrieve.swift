import Crypto
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

    struct Item: Sendable {
        var study: String
        var series: String
        var sopInstance: String
        var sopClass: String
        /// Absolute path when the instance is already in the cache.
        var cached: String?
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The outcome as the final response tells it.
    struct Outcome {
        var status: DIMSEStatus
        var counts = SubOperationCounts(remaining: 0)
        var failedUIDs: [String] = []
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
        if !outcome.failedUIDs.isEmpty {
            // (0008,0058) is UI, at most 64 KiB in one value: the list is cut to fit.
            var listed: [String] = [], length = 0
            for uid in outcome.failedUIDs where length + uid.utf8.count + 1 < 65_000 {
                listed.append(uid)
                length += uid.utf8.count + 1
            }
            identifier = IdentifierCodec.encode([QueryAttribute(tag: .failedSOPInstanceUIDList, vr: "UI", values: listed)],
                                                requested: .default, transferSyntax: request.transferSyntax)
        }
        responder.respond(QueryRetrieveResponder.message(
            for: request, status: outcome.status, errorComment: outcome.comment, counts: outcome.counts,
            hasIdentifier: identifier != nil), identifier: identifier)
        access.status = outcome.status.rawValue
        access.completed = outcome.counts.completed
        access.failed = outcome.counts.failed
        access.warnings = outcome.counts.warning
        access.error = outcome.comment
        access.durationMilliseconds = Int((ContinuousClock.now - started) / .milliseconds(1))
        logger.info("community retrieve", metadata: [
            "operation": "\(access.operation)", "level": "\(access.level ?? "?")", "keys": "\(access.query)",
            "destination": "\(access.moveDestination ?? association.callingAETitle)", "instances": "\(access.results)",
            "completed": "\(access.completed)", "failed": "\(access.failed)", "status": "\(outcome.status)",
            "duration_ms": "\(access.durationMilliseconds)", "waiting_for_hub_ms": "\(milliseconds(outcome.waiting))",
            "sending_ms": "\(milliseconds(outcome.sending))",
        ].merging(outcome.comment.map { ["error": "\($0)"] } ?? [:]) { a, _ in a })
        await proxy.record(access)
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
            plan = try await list(query)
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
                    calledAETitle: destination.title, presentationContexts: Self.proposals(plan.sopClasses),
                    group: MultiThreadedEventLoopGroup.singleton, threadPool: proxy.threadPool, logger: logger)
            } catch {
                return Outcome(status: .refusedOutOfResourcesSubOps,
                               counts: SubOperationCounts(remaining: 0, failed: plan.total),
                               failedUIDs: plan.known.map(\.sopInstance),
                               comment: "cannot associate with \(destination.title): \(error)")
            }
        }
        let outcome = await send(plan, to: storage, wholeStudies: query.level <= .study)
        if let storage {
            if outcome.status == .cancel { await storage.abort() } else { try? await storage.release() }
        }
        return outcome
    }

    // MARK: Listing

    /// A series fetched whole by one WADO-RS request; its instances are known as they arrive.
    struct SeriesPlan: Sendable {
        var study: String
        var series: String
        var sopClass: String
        /// Instances to come (the hub's count less those already cached).
        var expected: Int
        /// Instances of the series already in the cache (sent from there, skipped in the stream).
        var cached: Set<String>
    }

    /// What a retrieval sends: instances known by UID (cached, or listed one by one) and
    /// series asked for whole.
    struct Plan: Sendable {
        var known: [Item] = []
        var series: [SeriesPlan] = []
        var total: Int { known.count + series.reduce(0) { $0 + $1.expected } }
        var sopClasses: Set<String> { Set(known.map(\.sopClass) + series.map(\.sopClass)) }
        var studies: [String] { Array(Set(known.map(\.study) + series.map(\.study))).sorted() }
    }

    /// The instances to retrieve. A study cached whole is not asked again; otherwise whole
    /// series are listed at the series level (one quick QIDO-RS: hubs list instances slowly,
    /// Orthanc 330 ms for 500) and fetched by one request each; single instances are listed.
    private func list(_ query: RetrieveQuery) async throws -> Plan {
        var studies = query.studyUIDs
        if query.level == .patient {
            var parameters: [(name: String, value: String)] = [(Tag.patientID.hexString, query.patientID ?? "")]
            if let issuer = query.issuerOfPatientID, !issuer.isEmpty {
                parameters.append((Tag.issuerOfPatientID.hexString, issuer))
            }
            parameters.append(("includefield", Tag.studyInstanceUID.hexString))
            studies = try await folder.search.search("studies", parameters: parameters + [("limit", "1000")])
                .compactMap { $0.string(.studyInstanceUID) }
        }
        var plan = Plan()
        switch query.level {
        case .patient, .study:
            for study in Array(Set(studies)).sorted() { try await planStudy(study, series: nil, into: &plan) }
        case .series:
            for series in Array(Set(query.seriesUIDs)).sorted() {
                if studies.count == 1 {
                    try await planStudy(studies[0], series: series, into: &plan)
                } else {
                    let found = try await search("instances", [(Tag.seriesInstanceUID.hexString, series)])
                    let cached = try await cachedInstances(found.map(\.sopInstance))
                    plan.known += found.map { cached[$0.sopInstance] ?? $0 }
                }
            }
        case .image:
            let wanted = query.sopInstanceUIDs
            let cached = try await cachedInstances(wanted)
            let missing = wanted.filter { cached[$0] == nil }
            plan.known += wanted.compactMap { cached[$0] }
            for batch in stride(from: 0, to: missing.count, by: 100) {
                let uids = missing[batch..<min(batch + 100, missing.count)].joined(separator: ",")
                var filter: [(name: String, value: String)] = [(Tag.sopInstanceUID.hexString, uids)]
                var path = "instances"
                if studies.count == 1 {
                    path = "studies/\(studies[0])/instances"
                } else if !studies.isEmpty {
                    filter.append((Tag.studyInstanceUID.hexString, studies.joined(separator: ",")))
                }
                plan.known += try await search(path, filter)
            }
        }
        // One send per SOP instance, whatever the identifier repeated.
        var seen: Set<String> = []
        plan.known = plan.known.filter { seen.insert($0.sopInstance).inserted }
        return plan
    }

    /// A study (or one of its series): from the cache when whole there, else its series.
    private func planStudy(_ study: String, series only: String?, into plan: inout Plan) async throws {
        if let cached = try await completeStudy(study) {
            plan.known += cached.filter { only == nil || $0.series == only }
            return
        }
        let cached = try await cachedInstances(ofStudy: study)
        var filter: [(name: String, value: String)] = [("includefield", Tag.seriesInstanceUID.hexString),
                                                       ("includefield", Tag.sopClassUID.hexString),
                                                       ("includefield", Tag.numberOfSeriesRelatedInstances.hexString)]
        if let only { filter.append((Tag.seriesInstanceUID.hexString, only)) }
        for result in try await folder.search.search("studies/\(study)/series", parameters: filter) {
            guard let series = result.string(.seriesInstanceUID), only == nil || series == only else { continue }
            let here = cached.filter { $0.series == series }
            plan.known += here
            if let sopClass = result.string(.sopClassUID),
               let count = result.string(.numberOfSeriesRelatedInstances).flatMap(Int.init) {
                if count > here.count {
                    plan.series.append(SeriesPlan(study: study, series: series, sopClass: sopClass,
                                                  expected: count - here.count, cached: Set(here.map(\.sopInstance))))
                }
            } else {
                // The hub does not say the series' count or class: list it.
                let found = try await search("studies/\(study)/series/\(series)/instances", [])
                let known = Set(here.map(\.sopInstance))
                plan.known += found.filter { !known.contains($0.sopInstance) }
            }
        }
    }

    /// Cached instances of a study whose file is there (complete or not).
    private func cachedInstances(ofStudy study: String) async throws -> [Item] {
        let database = proxy.spool.database
        let community = self.community
        let found = try await proxy.threadPool.runIfActive {
            try database.cachedInstances(community: community, studyInstanceUID: study)
        }
        return found.map(item).filter { $0.cached != nil }
    }

    /// Every instance of a study from the cache, when it holds the study whole.
    private func completeStudy(_ study: String) async throws -> [Item]? {
        let database = proxy.spool.database
        let community = self.community
        let found: [CachedInstance]? = try await proxy.threadPool.runIfActive {
            guard let count = try database.completeCachedStudy(community: community, studyInstanceUID: study) else {
                return nil
            }
            let instances = try database.cachedInstances(community: community, studyInstanceUID: study)
            return instances.count == count ? instances : nil
        }
        guard let found else { return nil }
        let items = found.map(item)
        return items.allSatisfy({ $0.cached != nil }) ? items : nil
    }

    private func cachedInstances(_ uids: [String]) async throws -> [String: Item] {
        let database = proxy.spool.database
        let community = self.community
        let found = try await proxy.threadPool.runIfActive {
            try database.cachedInstances(community: community, sopInstanceUIDs: uids)
        }
        var result: [String: Item] = [:]
        for instance in found {
            let item = item(instance)
            if item.cached != nil { result[instance.sopInstanceUID] = item }
        }
        return result
    }

    private func item(_ instance: CachedInstance) -> Item {
        let path = proxy.spool.files.absolutePath(instance.filePath)
        return Item(study: instance.studyInstanceUID, series: instance.seriesInstanceUID,
                    sopInstance: instance.sopInstanceUID, sopClass: instance.sopClassUID,
                    cached: FileManager.default.fileExists(atPath: path) ? path : nil)
    }

    /// QIDO-RS instance search, paged; results lacking a UID are skipped.
    /// (Cancellation ends the HTTP request, which throws.)
    private func search(_ path: String, _ filter: [QIDOParameter]) async throws(DICOMwebError) -> [Item] {
        var items: [Item] = []
        var offset = 0
        var complete = false
        while !complete {
            let parameters = Self.instanceSearch(filter, offset: offset)
            let results = try await folder.search.search(path, parameters: parameters)
            items += Self.items(results)
            offset += results.count
            complete = results.count < Self.instancePage
        }
        return items
    }

    typealias QIDOParameter = (name: String, value: String)

    static let instancePage = 1000

    static func instanceSearch(_ filter: [QIDOParameter], offset: Int) -> [QIDOParameter] {
        filter + [("includefield", Tag.studyInstanceUID.hexString), ("includefield", Tag.seriesInstanceUID.hexString),
                  ("includefield", Tag.sopClassUID.hexString),
                  ("limit", "\(instancePage)"), ("offset", "\(offset)")]
    }

    static func items(_ results: [DICOMModelDataSet]) -> [Item] {
        results.compactMap { result in
            guard let study = result.string(.studyInstanceUID), let series = result.string(.seriesInstanceUID),
                  let sop = result.string(.sopInstanceUID), let sopClass = result.string(.sopClassUID) else { return nil }
            return Item(study: study, series: series, sopInstance: sop, sopClass: sopClass)
        }
    }

    // MARK: Sending

    /// Fetches (up to `parallelFetches` requests at once) and sends each instance as it lands
    /// on disk, with a pending response after each sub-operation.
    /// `wholeStudies`: the identifier asked for whole studies (PATIENT or STUDY level), whose
    /// cache then counts as complete.
    private func send(_ plan: Plan, to storage: DICOMAssociation?, wholeStudies: Bool) async -> Outcome {
        var outcome = Outcome(status: .success, counts: SubOperationCounts(remaining: plan.total))
        let (stream, continuation) = AsyncStream.makeStream(of: (Item, Result<String, Failure>).self)
        let producer = Task { [self] in
            for item in plan.known {
                if let cached = item.cached { continuation.yield((item, .success(cached))) }
            }
            await withTaskGroup(of: Void.self) { group in
                var running = 0
                func slot() async {
                    if running >= CommunityProxy.parallelFetches {
                        await group.next()
                        running -= 1
                    }
                    running += 1
                }
                for series in plan.series {
                    if Task.isCancelled { break }
                    await slot()
                    group.addTask { await fetchSeries(series, into: continuation) }
                }
                for item in plan.known where item.cached == nil {
                    if Task.isCancelled { break }
                    await slot()
                    group.addTask { continuation.yield((item, await fetch(item))) }
                }
            }
            continuation.finish()
        }
        var done = 0
        var sentPerStudy: [String: Int] = [:]
        var failedStudies: Set<String> = []
        var associationLost: String?
        let accepted = storage.map { $0.acceptedContexts.values.map { ($0.abstractSyntax, $0.transferSyntax) } }
            ?? association.acceptedContexts.values.map { ($0.abstractSyntax, $0.transferSyntax) }
        await withTaskCancellationHandler {
            let clock = ContinuousClock()
            var mark = clock.now
            for await (item, result) in stream {
                outcome.waiting += clock.now - mark
                defer { mark = clock.now }
                if Task.isCancelled { break }
                done += 1
                outcome.counts.remaining = max(0, plan.total - done)
                switch result {
                case .failure(let failure):
                    failedStudies.insert(item.study)
                    outcome.counts.failed += 1
                    if !item.sopInstance.isEmpty { outcome.failedUIDs.append(item.sopInstance) }
                    outcome.comment = outcome.comment ?? "\(item.sopInstance): \(failure)"
                case .success(let path) where associationLost != nil:
                    _ = path
                    outcome.counts.failed += 1
                    outcome.failedUIDs.append(item.sopInstance)
                case .success(let stored):
                    sentPerStudy[item.study, default: 0] += 1
                    let started = clock.now
                    defer { outcome.sending += clock.now - started }
                    do {
                        var result: DICOMAssociation.StoreResult
                        do {
                            result = try await store(stored, on: storage)
                        } catch let error as DICOMClientError where error.code == .noAcceptedPresentationContext {
                            // Re-encoded when the peer took only the other uncompressed encoding.
                            let path = try await sendable(stored, accepted: accepted)
                            guard path != stored else { throw error }
                            defer { unlink(path) }
                            result = try await store(path, on: storage)
                        }
                        switch result.status.kind {
                        case .success: outcome.counts.completed += 1
                        case .warning: outcome.counts.warning += 1
                        default:
                            outcome.counts.failed += 1
                            outcome.failedUIDs.append(item.sopInstance)
                            outcome.comment = outcome.comment
                                ?? "\(item.sopInstance): C-STORE \(result.status)\(result.errorComment.map { " \($0)" } ?? "")"
                        }
                    } catch {
                        outcome.counts.failed += 1
                        outcome.failedUIDs.append(item.sopInstance)
                        outcome.comment = outcome.comment ?? "\(item.sopInstance): \(error)"
                        let code = (error as? DICOMClientError)?.code
                        if code != .noAcceptedPresentationContext && code != .invalidFile {
                            associationLost = "\(error)"
                        }
                    }
                }
                if Task.isCancelled { break }
                responder.respond(QueryRetrieveResponder.message(for: request, status: .pending, counts: outcome.counts))
            }
        } onCancel: {
            producer.cancel()
        }
        producer.cancel()
        if Task.isCancelled {
            outcome.status = .cancel
            return outcome
        }
        if wholeStudies {
            await markCached(sentPerStudy.filter { !failedStudies.contains($0.key) })
        }
        if outcome.counts.failed == 0 && outcome.counts.warning == 0 {
            outcome.status = .success
        } else if outcome.counts.completed == 0 && outcome.counts.warning == 0 {
            outcome.status = .refusedOutOfResourcesSubOps
        } else {
            outcome.status = .subOperationsCompleteWithFailures
        }
        if let associationLost { outcome.comment = "association lost: \(associationLost)" }
        return outcome
    }

    /// One C-STORE sub-operation: on the move destination's association, or the requestor's (C-GET).
    private func store(_ path: String, on storage: DICOMAssociation?) async throws(DICOMClientError)
        -> DICOMAssociation.StoreResult
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
    private func sendable(_ path: String, accepted: [(String, String)]) async throws -> String {
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

    /// One series by a single WADO-RS request, each instance moved into the cache as its part
    /// ends. What the stream did not bring (cut short, or fewer than the hub counted) is listed
    /// and fetched one by one; what cannot be is a failure.
    private func fetchSeries(_ plan: SeriesPlan,
                             into continuation: AsyncStream<(Item, Result<String, Failure>)>.Continuation) async {
        let delivered = NIOLockedValueBox(Set<String>())
        let spool = proxy.spool
        let community = self.community
        let database = spool.database
        let staging = spool.cacheDirectory + "/.incoming"
        let started = ContinuousClock.now
        if spool.hasRoom(), (try? FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)) != nil {
            defer {
                logger.debug("series retrieved", metadata: [
                    "series": "\(plan.series)", "instances": "\(delivered.withLockedValue { $0.count })",
                    "duration_ms": "\(Int((ContinuousClock.now - started) / .milliseconds(1)))",
                ])
            }
            do {
                _ = try await folder.retrieve.retrieveInstances("studies/\(plan.study)/series/\(plan.series)",
                                                                into: staging) { path, size in
                    guard let meta = Self.meta(path), !plan.cached.contains(meta.sopInstance),
                          delivered.withLockedValue({ $0.insert(meta.sopInstance).inserted }) else {
                        unlink(path)
                        return
                    }
                    let item = Item(study: plan.study, series: plan.series, sopInstance: meta.sopInstance,
                                    sopClass: meta.sopClass)
                    let relative = Self.cachePath(community: community, study: item.study, sopInstance: item.sopInstance)
                    let absolute = spool.files.absolutePath(relative)
                    let cached = CachedInstance(community: community, studyInstanceUID: item.study,
                                                seriesInstanceUID: item.series, sopInstanceUID: item.sopInstance,
                                                sopClassUID: item.sopClass, filePath: relative, size: size)
                    do {
                        try FileManager.default.createDirectory(atPath: (absolute as NSString).deletingLastPathComponent,
                                                                withIntermediateDirectories: true)
                        guard rename(path, absolute) == 0 else {
                            throw Failure(description: "cannot move \(path): \(String(cString: strerror(errno)))")
                        }
                        try database.recordCached(cached)
                        continuation.yield((item, .success(absolute)))
                    } catch {
                        unlink(path)
                        continuation.yield((item, .failure(Failure(description: "\(error)"))))
                    }
                }
            } catch where !Task.isCancelled {
                logger.notice("series retrieval cut short, the rest one by one", metadata: [
                    "series": "\(plan.series)", "error": "\(Self.describe(error))",
                ])
            } catch {}
        }
        var got = delivered.withLockedValue { $0 }
        guard got.count < plan.expected, !Task.isCancelled else { return }
        // Fewer than counted: the missing ones by UID.
        do {
            let listed = try await search("studies/\(plan.study)/series/\(plan.series)/instances", [])
            for item in listed where !got.contains(item.sopInstance) && !plan.cached.contains(item.sopInstance) {
                if Task.isCancelled || got.count >= plan.expected { return }
                got.insert(item.sopInstance)
                continuation.yield((item, await fetch(item)))
            }
        } catch {
            logger.warning("series could not be listed", metadata: ["series": "\(plan.series)", "error": "\(Self.describe(error))"])
        }
        for _ in got.count..<max(got.count, plan.expected) {
            let missing = Item(study: plan.study, series: plan.series, sopInstance: "", sopClass: plan.sopClass)
            continuation.yield((missing, .failure(Failure(description: "series \(plan.series): fewer instances than the hub counted"))))
        }
    }

    /// The SOP Instance and Class UIDs in a Part-10 file's meta information.
    static func meta(_ path: String) -> (sopInstance: String, sopClass: String)? {
        guard var source = try? FileByteSource(path: path, bufferSize: 4096),
              let meta = try? Part10.readFileMetaInformation(from: &source),
              let instance = meta.mediaStorageSOPInstanceUID, let sopClass = meta.mediaStorageSOPClassUID else { return nil }
        return (instance, sopClass)
    }

    /// WADO-RS of one instance into the cache (streamed to disk), recorded as cached.
    private func fetch(_ item: Item) async -> Result<String, Failure> {
        let spool = proxy.spool
        if !spool.hasRoom() {
            await proxy.purgeCache()
            guard spool.hasRoom() else { return .failure(Failure(description: "spool below min_free")) }
        }
        let relative = Self.cachePath(community: community, study: item.study, sopInstance: item.sopInstance)
        let absolute = spool.files.absolutePath(relative)
        do {
            try FileManager.default.createDirectory(atPath: (absolute as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            let size = try await folder.retrieve.retrieveInstance(study: item.study, series: item.series,
                                                                  instance: item.sopInstance, to: absolute)
            let cached = CachedInstance(community: community, studyInstanceUID: item.study,
                                        seriesInstanceUID: item.series, sopInstanceUID: item.sopInstance,
                                        sopClassUID: item.sopClass, filePath: relative, size: size)
            let database = spool.database
            try await proxy.threadPool.runIfActive { try database.recordCached(cached) }
            return .success(absolute)
        } catch {
            return .failure(Failure(description: Self.describe(error)))
        }
    }

    /// Studies retrieved whole are served from the cache for `cache_retention`.
    private func markCached(_ counts: [String: Int]) async {
        guard !counts.isEmpty else { return }
        let database = proxy.spool.database
        let community = self.community
        let expiry = Date().addingTimeInterval(proxy.configuration.spool.cacheRetention / .seconds(1))
        do {
            try await proxy.threadPool.runIfActive {
                for (study, count) in counts {
                    try database.markStudyCached(community: community, studyInstanceUID: study, instances: count,
                                                 expiresAt: expiry)
                }
            }
        } catch {
            logger.warning("community cache not recorded", metadata: ["error": "\(error)"])
        }
    }

    /// `cache/<community>/<study hash>/<instance hash>.dcm`: names from hashes, never from UIDs.
    static func cachePath(community: String, study: String, sopInstance: String) -> String {
        func hash(_ text: String, _ length: Int) -> String {
            SHA256.hash(data: Data(text.utf8)).prefix(length / 2).map { String(format: "%02x", $0) }.joined()
        }
        return "\(Spool.cacheDirectoryName)/\(hash(community, 8))/\(hash(study, 16))/\(hash(sopInstance, 32)).dcm"
    }

    /// The common transfer syntaxes, each in its own context per SOP class, so that each
    /// instance goes as stored (uncompressed ones first; fewer when there are many classes).
    static func proposals(_ sopClasses: Set<String>) -> [PresentationContextProposal] {
        let uncompressed = [TransferSyntax.explicitVRLittleEndian.uid, TransferSyntax.implicitVRLittleEndian.uid]
        let compressed = ["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.70",
                          "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
                          "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"]
        let classes = sopClasses.sorted()
        let perClass = classes.count * (uncompressed.count + compressed.count) <= DICOMClient.maximumPresentationContexts
            ? uncompressed + compressed : uncompressed
        var proposals: [PresentationContextProposal] = []
        for sopClass in classes {
            for syntax in perClass where proposals.count < DICOMClient.maximumPresentationContexts {
                proposals.append(PresentationContextProposal(id: UInt8(2 * proposals.count + 1),
                                                             abstractSyntax: sopClass, transferSyntaxes: [syntax]))
            }
        }
        return proposals
    }

    static func describe(_ error: any Error) -> String {
        (error as? DICOMwebError)?.message ?? "\(error)"
    }

    /// C-MOVE/C-GET "Refused: Out of resources – Unable to calculate number of matches" (PS3.4 C.4.2.1.5).
    static let unableToCalculateMatches = DIMSEStatus(0xA701)
}
