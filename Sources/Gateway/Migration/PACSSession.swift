import DICOMCore
import DICOMNetwork
import DICOMQuery
import Foundation
import Logging
import NIOCore
import NIOPosix
import Spool

/// One association with the site's PACS for the migration: Study Root C-FIND and C-MOVE,
/// with Passerelle's AE title calling (docs/migration.md).
struct PACSSession {
    let association: DICOMAssociation
    private let findContext: PresentationContext
    private let moveContext: PresentationContext?

    static let find = UIDRegistry.studyRootQueryRetrieveInformationModelFindSOPClassUID
    static let move = UIDRegistry.studyRootQueryRetrieveInformationModelMoveSOPClassUID

    static func open(_ pacs: KnownAE, callingAETitle: String, timeout: Duration, threadPool: NIOThreadPool,
                     logger: Logger) async throws(DICOMNetworkError) -> PACSSession {
        let syntaxes = [TransferSyntax.explicitVRLittleEndian.uid, TransferSyntax.implicitVRLittleEndian.uid]
        let proposals = [
            PresentationContextProposal(id: 1, abstractSyntax: find, transferSyntaxes: syntaxes),
            PresentationContextProposal(id: 3, abstractSyntax: move, transferSyntaxes: syntaxes),
        ]
        let seconds = Int64(timeout.components.seconds)
        let association = try await DICOMClient.connect(
            host: pacs.host, port: pacs.port, callingAETitle: callingAETitle, calledAETitle: pacs.title,
            presentationContexts: proposals, tls: try pacs.clientContext(),
            timeouts: .init(connect: .seconds(min(seconds, 30)), association: .seconds(min(seconds, 60)),
                            dimse: .seconds(seconds)),
            group: MultiThreadedEventLoopGroup.singleton, threadPool: threadPool, logger: logger)
        guard let findContext = association.acceptedContext(abstractSyntax: find) else {
            await association.abort()
            throw DICOMNetworkError(code: .noAcceptedPresentationContext,
                                   message: "\(pacs.title) refused Study Root C-FIND")
        }
        return PACSSession(association: association, findContext: findContext,
                           moveContext: association.acceptedContext(abstractSyntax: move))
    }

    func release() async {
        do { try await association.release() } catch { await association.abort() }
    }

    // MARK: C-FIND

    /// The answer to a study-level query, and whether the PACS may have left some out.
    struct StudyAnswer {
        var studies: [FoundStudy]
        var complete: Bool
        var status: DIMSEStatus
    }

    /// Studies of one day, narrowed to a StudyTime range when given.
    func studies(on day: String, timeRange: String = "", findLimit: Int) async throws -> StudyAnswer {
        var keys = [
            attribute(.queryRetrieveLevel, "CS", "STUDY"), attribute(.studyInstanceUID, "UI"),
            attribute(.studyDate, "DA", day), attribute(.studyTime, "TM", timeRange),
            attribute(.patientID, "LO"), attribute(.modalitiesInStudy, "CS"),
            attribute(.numberOfStudyRelatedInstances, "IS"),
        ]
        keys.sort { $0.tag < $1.tag }
        let result = try await query(keys)
        var studies: [FoundStudy] = []
        var seen: Set<String> = []
        for attributes in result.answers {
            guard let uid = value(.studyInstanceUID, in: attributes), seen.insert(uid).inserted else { continue }
            let modalities = attributes.first { $0.tag == .modalitiesInStudy }?.trimmedValues ?? []
            studies.append(FoundStudy(studyInstanceUID: uid, studyDate: value(.studyDate, in: attributes) ?? day,
                                      patientID: value(.patientID, in: attributes) ?? "",
                                      modalities: modalities,
                                      instances: value(.numberOfStudyRelatedInstances, in: attributes).flatMap { Int($0) }))
        }
        let capped = findLimit > 0 && result.answers.count >= findLimit
        return StudyAnswer(studies: studies, complete: result.status.kind == .success && !capped, status: result.status)
    }

    /// SOP Instance UID → SOP Class UID (when `classes`; else "") of a study's instances, by
    /// series (series level, then image level per series, as a hierarchical PACS requires).
    /// SOP Class UID is asked only when needed: some PACS (Orthanc) read every file to answer it.
    func instances(ofStudy study: String, classes: Bool) async throws -> [String: [String: String]] {
        let series = try await query([
            attribute(.queryRetrieveLevel, "CS", "SERIES"), attribute(.studyInstanceUID, "UI", study),
            attribute(.seriesInstanceUID, "UI"),
        ])
        guard series.status.kind == .success else {
            throw BackfillError.pacs("series-level C-FIND of \(study) ended with status \(series.status)")
        }
        var result: [String: [String: String]] = [:]
        for uid in Set(series.answers.compactMap { value(.seriesInstanceUID, in: $0) }) {
            var keys = [
                attribute(.sopInstanceUID, "UI"), attribute(.queryRetrieveLevel, "CS", "IMAGE"),
                attribute(.studyInstanceUID, "UI", study), attribute(.seriesInstanceUID, "UI", uid),
            ]
            if classes { keys.append(attribute(.sopClassUID, "UI")) }
            let images = try await query(keys)
            guard images.status.kind == .success else {
                throw BackfillError.pacs("image-level C-FIND of series \(uid) ended with status \(images.status)")
            }
            var instances: [String: String] = [:]
            for answer in images.answers {
                guard let sop = value(.sopInstanceUID, in: answer) else { continue }
                instances[sop] = value(.sopClassUID, in: answer) ?? ""
            }
            result[uid] = instances
        }
        return result
    }

    private func query(_ keys: [QueryAttribute]) async throws -> (answers: [[QueryAttribute]], status: DIMSEStatus) {
        let identifier = IdentifierCodec.encode(keys, requested: .default, transferSyntax: findContext.transferSyntax)
        let result = try await association.find(sopClassUID: Self.find, identifier: identifier, contextID: findContext.id)
        guard result.status.kind != .failure else {
            throw BackfillError.pacs("C-FIND refused with status \(result.status)"
                                     + (result.errorComment.map { ": \($0)" } ?? ""))
        }
        var answers: [[QueryAttribute]] = []
        for buffer in result.identifiers {
            answers.append(try IdentifierCodec.decode(buffer, transferSyntax: findContext.transferSyntax).attributes)
        }
        return (answers, result.status)
    }

    // MARK: C-MOVE

    /// Moves a whole study, or some of its instances (`instances` by series), to `destination`.
    /// Returns the final response's counts.
    func move(study: String, instances: [String: [String]]?, to destination: String,
              progress: @escaping @Sendable (RetrieveResponseFields) -> Void) async throws -> RetrieveResponseFields {
        guard let context = moveContext else {
            throw BackfillError.pacs("the PACS refused Study Root C-MOVE")
        }
        var total = Self.emptyTotal(Self.move)
        for keys in retrievalKeys(study: study, instances: instances) {
            let identifier = IdentifierCodec.encode(keys, requested: .default, transferSyntax: context.transferSyntax)
            let final = try await association.move(sopClassUID: Self.move, identifier: identifier, contextID: context.id,
                                                   destination: destination, progress: progress)
            guard Self.accumulate(final, into: &total) else { break }
        }
        return total
    }

    /// The identifiers of a retrieval: the whole study, or per series the UIDs listed (at
    /// most 100 per request: a list match, PS3.4 C.2.2.2.2).
    private func retrievalKeys(study: String, instances: [String: [String]]?) -> [[QueryAttribute]] {
        guard let instances else {
            return [[attribute(.queryRetrieveLevel, "CS", "STUDY"), attribute(.studyInstanceUID, "UI", study)]]
        }
        var requests: [[QueryAttribute]] = []
        for (series, uids) in instances.sorted(by: { $0.key < $1.key }) {
            for start in stride(from: 0, to: uids.count, by: 100) {
                requests.append([
                    QueryAttribute(tag: .sopInstanceUID, vr: "UI", values: Array(uids[start..<min(start + 100, uids.count)])),
                    attribute(.queryRetrieveLevel, "CS", "IMAGE"), attribute(.studyInstanceUID, "UI", study),
                    attribute(.seriesInstanceUID, "UI", series),
                ])
            }
        }
        return requests
    }

    /// Adds a request's final counts to `total`; false when the next requests should not go.
    private static func accumulate(_ final: RetrieveResponseFields, into total: inout RetrieveResponseFields) -> Bool {
        total.numberOfCompletedSuboperations = (total.numberOfCompletedSuboperations ?? 0)
            &+ (final.numberOfCompletedSuboperations ?? 0)
        total.numberOfFailedSuboperations = (total.numberOfFailedSuboperations ?? 0) &+ (final.numberOfFailedSuboperations ?? 0)
        total.numberOfWarningSuboperations = (total.numberOfWarningSuboperations ?? 0)
            &+ (final.numberOfWarningSuboperations ?? 0)
        guard final.status.kind != .success else { return true }
        total.status = final.status
        total.errorComment = final.errorComment
        return final.status.kind != .failure && final.status.kind != .cancel
    }

    private static func emptyTotal(_ sopClass: String) -> RetrieveResponseFields {
        RetrieveResponseFields(messageIDBeingRespondedTo: 0, affectedSOPClassUID: sopClass, status: .success,
                               remaining: 0, completed: 0, failed: 0, warning: 0)
    }

    // MARK: C-GET

    static let get = UIDRegistry.studyRootQueryRetrieveInformationModelGetSOPClassUID

    /// Retrieves a whole study, or some of its instances, by C-GET on an association of its own
    /// that proposes the storage SOP classes the study holds (with the SCP role): each
    /// instance goes to `receiver`, the PACS as calling AE title. Returns the final counts.
    func get(study: String, instances: [String: [String]]?, sopClasses: Set<String>, pacs: KnownAE,
             callingAETitle: String, timeout: Duration, threadPool: NIOThreadPool, logger: Logger,
             sink: RetrievalSink) async throws -> RetrieveResponseFields {
        let classes = sopClasses.filter { !$0.isEmpty }.sorted()
        let proposals = try DICOMClient.proposals(forGetting: classes, queryRetrieve: Self.get)
        let seconds = Int64(timeout.components.seconds)
        let association = try await DICOMClient.connect(
            host: pacs.host, port: pacs.port, callingAETitle: callingAETitle, calledAETitle: pacs.title,
            presentationContexts: proposals.contexts, roleSelections: proposals.roles, tls: try pacs.clientContext(),
            timeouts: .init(connect: .seconds(min(seconds, 30)), association: .seconds(min(seconds, 60)),
                            dimse: .seconds(seconds)),
            group: MultiThreadedEventLoopGroup.singleton, threadPool: threadPool, logger: logger)
        let context = AssociationContext(callingAETitle: pacs.title, calledAETitle: callingAETitle,
                                         peer: "\(pacs.host):\(pacs.port)", acceptedContexts: association.acceptedContexts,
                                         id: sink.nextAssociationID())
        defer { sink.ended(context) }
        guard let getContext = association.acceptedContext(abstractSyntax: Self.get) else {
            await association.abort()
            throw BackfillError.pacs("the PACS refused Study Root C-GET")
        }
        var total = Self.emptyTotal(Self.get)
        do {
            for keys in retrievalKeys(study: study, instances: instances) {
                let identifier = IdentifierCodec.encode(keys, requested: .default, transferSyntax: getContext.transferSyntax)
                let final = try await association.get(
                    sopClassUID: Self.get, identifier: identifier, contextID: getContext.id,
                    store: { request, syntax in sink.receiver(request, syntax, context) })
                guard Self.accumulate(final, into: &total) else { break }
            }
            do { try await association.release() } catch { await association.abort() }
        } catch {
            await association.abort()
            throw error
        }
        return total
    }

    // MARK: Keys

    private func attribute(_ tag: Tag, _ vr: String, _ value: String = "") -> QueryAttribute {
        QueryAttribute(tag: tag, vr: vr, values: value.isEmpty ? [] : [value])
    }

    private func value(_ tag: Tag, in attributes: [QueryAttribute]) -> String? {
        attributes.first { $0.tag == tag }?.trimmedValues.first
    }
}

enum BackfillError: Error, CustomStringConvertible {
    case pacs(String)
    case archive(String)
    case configuration(String)

    var description: String {
        switch self {
        case .pacs(let message): "PACS: \(message)"
        case .archive(let message): "archive: \(message)"
        case .configuration(let message): message
        }
    }
}

/// Where the instances of a C-GET go: the storage SCP's reception, the PACS as calling AE.
struct RetrievalSink: Sendable {
    var receiver: @Sendable (CStoreRQ, _ transferSyntax: String, AssociationContext) -> any StoreReceiver
    var ended: @Sendable (AssociationContext) -> Void
    /// Identifies the association in logs and the reception's tallies, apart from the SCP's.
    var nextAssociationID: @Sendable () -> UInt64
}
