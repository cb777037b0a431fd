import Audit
import DICOMCore
import DICOMNetwork
import DICOMQuery
import DICOMweb
import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOPosix
import ServiceLifecycle
import Spool

/// The `[[community]]` search folders (docs/community.md): which contexts a query/retrieve
/// association gets, and C-FIND, C-MOVE and C-GET answered from the community's DICOMweb
/// service. As a `Service`, it runs each request as a child task of its own (C-CANCEL and the
/// association's end cancel it) and closes its HTTP clients at the end.
public final class CommunityProxy: Service, Sendable {
    /// One search folder: its settings and its DICOMweb clients (searches and retrievals
    /// have their own timeouts).
    struct Folder: Sendable {
        let settings: CommunitySettings
        let search: DICOMwebClient
        let retrieve: DICOMwebClient
    }

    let folders: [String: Folder]
    let configuration: GatewayConfiguration
    /// What each folder was asked since the start (status), by AE title.
    private let statistics = NIOLockedValueBox<[String: Statistics]>([:])

    struct Statistics {
        var requests: [String: Int] = [:]
        var instancesSent = 0
        var lastSuccessAt: Date?
        var lastFailure: (at: Date, message: String)?
    }
    let spool: Spool
    let threadPool: NIOThreadPool
    let logger: Logger
    /// Requests waiting for ``run()`` to start them.
    private let requests: AsyncStream<CommunityRequest>
    private let intake: AsyncStream<CommunityRequest>.Continuation
    /// WADO-RS requests of one retrieval running at once, ahead of the C-STOREs.
    static let parallelFetches = 4

    let audit: AuditTrail?

    public init(configuration: GatewayConfiguration, spool: Spool, threadPool: NIOThreadPool, logger: Logger,
                audit: AuditTrail? = nil) throws {
        self.audit = audit
        var folders: [String: Folder] = [:]
        for community in configuration.communities {
            guard let destination = configuration.destinations.first(where: { $0.name == community.destination }) else {
                continue  // the configuration loader refuses this
            }
            func client(_ request: Duration) throws -> DICOMwebClient {
                var tls: TLSSettings?
                if destination.ca != nil || destination.clientCertificate != nil {
                    tls = TLSSettings(caFile: destination.ca, certificateFile: destination.clientCertificate,
                                      privateKeyFile: destination.clientKey)
                }
                return try DICOMwebClient(
                    baseURL: destination.url, tls: tls, bearerToken: destination.token,
                    timeouts: DICOMwebTimeouts(connect: min(configuration.upload.connectTimeout, request),
                                               read: request, request: request),
                    logger: logger)
            }
            folders[community.aeTitle] = Folder(settings: community, search: try client(community.queryTimeout),
                                                retrieve: try client(community.retrieveTimeout))
        }
        self.folders = folders
        self.configuration = configuration
        self.spool = spool
        self.threadPool = threadPool
        self.logger = logger
        (requests, intake) = AsyncStream.makeStream(of: CommunityRequest.self)
    }

    public var calledAETitles: Set<String> { Set(folders.keys) }

    /// Runs the requests until a graceful stop (the DICOM listener, stopped before, has ended
    /// every association and so cancelled every request by then).
    public func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await request in requests {
                    group.addTask { await request.run() }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: { [intake] in
            intake.finish()
        }
        for folder in folders.values {
            try? await folder.search.shutdown()
            try? await folder.retrieve.shutdown()
        }
    }

    // MARK: Association

    static let queryRetrieveSOPClasses: Set<String> = Set(QueryModel.allCases.flatMap { model in
        QueryModel.Operation.allCases.map { model.sopClassUID(for: $0) }
    })

    /// Verification and Query/Retrieve (FIND, MOVE, GET) of both models; Storage only with
    /// the SCP role proposed, for C-GET sub-operations on the association.
    static func negotiationPolicy(for request: AssociateRQ) -> PresentationContextNegotiator.Policy {
        let scpRoles = Set(request.userInformation.roleSelections.filter(\.scpRole).map(\.sopClassUID))
        let uncompressed: Set<String> = [TransferSyntax.implicitVRLittleEndian.uid, TransferSyntax.explicitVRLittleEndian.uid]
        return PresentationContextNegotiator.Policy(
            acceptsAbstractSyntax: { uid in
                uid == UIDRegistry.verificationSOPClassUID || queryRetrieveSOPClasses.contains(uid)
                    || UIDRegistry.storageSOPClassUIDs.contains(uid)
            },
            acceptsTransferSyntax: { transferSyntax, abstractSyntax in
                UIDRegistry.storageSOPClassUIDs.contains(abstractSyntax)
                    ? TransferSyntax(uid: transferSyntax) != nil : uncompressed.contains(transferSyntax)
            },
            // The requestor's order: for C-GET it knows which encodings it prefers to receive.
            rejectsContext: { proposal in
                UIDRegistry.storageSOPClassUIDs.contains(proposal.abstractSyntax) && !scpRoles.contains(proposal.abstractSyntax)
            },
            acceptsRoles: { uid, _, scp in
                UIDRegistry.storageSOPClassUIDs.contains(uid) ? (false, scp) : (true, false)
            })
    }

    // MARK: Requests

    /// Starts a C-FIND, C-MOVE or C-GET on the folder called by the association.
    func begin(_ request: QueryRetrieveRequest, association: AssociationContext,
               responder: QueryRetrieveResponder) -> any QueryRetrieveOperation {
        guard let folder = folders[association.calledAETitle] else {
            responder.respond(QueryRetrieveResponder.message(for: request, status: .sopClassNotSupported,
                                                             errorComment: "no community answers this AE title"))
            return FinishedOperation()
        }
        var logger = self.logger
        logger[metadataKey: "association"] = "\(association.id)"
        logger[metadataKey: "calling_ae"] = "\(association.callingAETitle)"
        logger[metadataKey: "community"] = "\(folder.settings.aeTitle)"
        let cancellation = OperationCancellation()
        let queued = intake.yield(CommunityRequest(cancellation: cancellation) { [self, logger] in
            switch request.command {
            case .find:
                await CommunityFind(proxy: self, folder: folder, request: request, association: association,
                                    responder: responder, logger: logger).run()
            case .move, .get:
                await CommunityRetrieve(proxy: self, folder: folder, request: request, association: association,
                                        responder: responder, logger: logger).run()
            }
        })
        guard case .enqueued = queued else {
            responder.respond(QueryRetrieveResponder.message(for: request, status: .outOfResources,
                                                             errorComment: "the gateway is stopping"))
            return FinishedOperation()
        }
        return cancellation
    }

    /// Counts a finished request for `status` and the metrics. The hub is failing when it
    /// could not be asked (C001, A701) or a retrieval got nothing from it (A702).
    func account(_ access: CommunityAccess) {
        let status = DIMSEStatus(access.status)
        let hubFailure = [0xC001, 0xA701, 0xA702].contains(access.status)
        statistics.withLockedValue { all in
            var stats = all[access.calledAETitle] ?? Statistics()
            stats.requests[access.operation, default: 0] += 1
            stats.instancesSent += access.completed + access.warnings
            if hubFailure {
                stats.lastFailure = (access.at, "\(access.operation) \(status): \(access.error ?? "")")
            } else if status.kind == .success || status.kind == .warning {
                stats.lastSuccessAt = access.at
            }
            all[access.calledAETitle] = stats
        }
        let outcome = switch status.kind {
        case .success, .warning: "success"
        case .cancel: "cancel"
        default: "failure"
        }
        Counter(label: "passerelle_community_requests_total", dimensions: [
            ("community", access.calledAETitle), ("operation", access.operation), ("outcome", outcome),
        ]).increment()
        if access.completed + access.warnings > 0 {
            Counter(label: "passerelle_community_instances_sent_total", dimensions: [("community", access.calledAETitle)])
                .increment(by: access.completed + access.warnings)
        }
    }

    /// The search folders as `status` shows them (blocking: reads the cache totals).
    public func status() throws -> [StatusReport.Community] {
        let totals = try spool.database.cacheTotals()
        let stats = statistics.withLockedValue { $0 }
        return folders.values.sorted { $0.settings.aeTitle < $1.settings.aeTitle }.map { folder in
            let settings = folder.settings
            let mine = stats[settings.aeTitle] ?? Statistics()
            let failing = mine.lastFailure.map { failure in mine.lastSuccessAt.map { failure.at > $0 } ?? true } ?? false
            let url = configuration.destinations.first { $0.name == settings.destination }?.url.absoluteString ?? ""
            return StatusReport.Community(
                aeTitle: settings.aeTitle, destination: settings.destination, url: url,
                health: failing ? "failing" : mine.requests.isEmpty ? "idle" : "ok", requests: mine.requests,
                instancesSent: mine.instancesSent, lastSuccessAt: mine.lastSuccessAt,
                lastError: mine.lastFailure.map { .init(at: $0.at, message: $0.message) },
                cachedInstances: totals[settings.destination]?.instances ?? 0,
                cachedBytes: totals[settings.destination]?.bytes ?? 0)
        }
    }

    /// Writes the trace of a query or retrieval, cancelled or not, and its audit row.
    func trace(_ access: CommunityAccess, association: AssociationContext? = nil, sopClassUID: String? = nil) async {
        account(access)
        await audit?.record(Self.auditEvent(access, association: association, sopClassUID: sopClassUID))
        let database = spool.database
        let threadPool = self.threadPool
        do {
            // The request may be cancelled (C-CANCEL): the trace must still be written, so not
            // the cancellable `runIfActive` but its future, which runs to the end.
            try await threadPool.runIfActive(eventLoop: MultiThreadedEventLoopGroup.singleton.any()) {
                try database.recordAccess(access)
            }.get()
        } catch {
            logger.error("community access not recorded", metadata: ["error": "\(error)"])
        }
    }

    /// C-FIND is a query (level and keys); C-MOVE and C-GET are retrievals of their studies
    /// to the move destination (or the requestor).
    static func auditEvent(_ access: CommunityAccess, association: AssociationContext?, sopClassUID: String?) -> AuditEvent {
        let status = DIMSEStatus(access.status)
        let outcome: AuditEvent.Outcome = switch status.kind {
        case .success, .pending: .success
        case .warning, .cancel: .minorFailure
        default: .seriousFailure
        }
        var details = ["keys": access.query, "status": String(format: "%04X", access.status)]
        if let level = access.level { details["level"] = level }
        if let sopClassUID { details["sop_class_uid"] = sopClassUID }
        let actor = AuditEvent.Actor(aeTitle: access.callingAETitle, address: association?.peer,
                                     userName: association?.userName)
        if access.operation == "FIND" {
            details["results"] = String(access.results)
            return AuditEvent(action: .query, at: access.at, outcome: outcome, outcomeDescription: access.error,
                              actor: actor, destination: access.calledAETitle, details: details)
        }
        details["operation"] = access.operation
        details["count"] = String(access.completed + access.warnings)
        details["failed"] = String(access.failed)
        return AuditEvent(action: .retrieve, at: access.at, outcome: outcome, outcomeDescription: access.error,
                          actor: actor, destination: access.moveDestination ?? access.callingAETitle,
                          studies: access.studyUIDs, details: details)
    }

    /// Drops cached foreign studies older than `cache_retention`.
    public func purgeCache() async {
        let database = spool.database
        let cutoff = Date().addingTimeInterval(-(configuration.spool.cacheRetention / .seconds(1)))
        do {
            let files = try await threadPool.runIfActive { try database.expireCache(fetchedBefore: cutoff) }
            for file in files { spool.files.remove(relativePath: file) }
            if !files.isEmpty {
                logger.info("community cache purged", metadata: ["instances": "\(files.count)"])
            }
        } catch {
            logger.warning("community cache purge failed", metadata: ["error": "\(error)"])
        }
    }
}


extension QueryAttribute {
    /// A QIDO-RS result attribute as text values (numbers as decimals, PN as "A=I=P").
    init(tag: Tag, model attribute: DICOMModelAttribute) {
        var values: [String] = []
        var items: [[QueryAttribute]] = []
        for value in attribute.values {
            switch value {
            case .string(let text): values.append(DICOMModelDataSet.trim(text))
            case .number(let number):
                values.append(number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(number))
            case .item(let item): items.append(QueryAttribute.attributes(item).values.sorted { $0.tag < $1.tag })
            case .other: values.append("")
            }
        }
        let vr = attribute.vr ?? DataDictionary.entry(for: tag)?.vr?.rawValue ?? "UN"
        self.init(tag: tag, vr: vr, values: values, items: items)
    }

    /// A QIDO-RS result by tag.
    static func attributes(_ dataSet: DICOMModelDataSet) -> QIDOAttributes {
        var result: QIDOAttributes = [:]
        for (key, attribute) in dataSet.attributes {
            guard let tag = UInt32(key, radix: 16).map(Tag.init(rawValue:)) else { continue }
            result[tag] = QueryAttribute(tag: tag, model: attribute)
        }
        return result
    }

    /// "PatientName=DUR*, StudyDate=2020-" for logs and the access trace (the level apart).
    static func describe(_ attributes: [QueryAttribute]) -> String {
        attributes.filter { (!$0.values.isEmpty || !$0.items.isEmpty) && $0.tag != .queryRetrieveLevel }.map { attribute in
            let name = DataDictionary.entry(for: attribute.tag)?.keyword ?? attribute.tag.hexString
            if attribute.vr == "SQ" {
                return "\(name)=[\(attribute.items.map { describe($0) }.joined(separator: "; "))]"
            }
            return "\(name)=\(attribute.values.joined(separator: "\\"))"
        }.joined(separator: ", ")
    }
}
