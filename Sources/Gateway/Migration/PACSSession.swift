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
            presentationContexts: proposals,
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

    /// SOP Instance UIDs of a study by series (series level, then image level per series, as a
    /// hierarchical PACS requires).
    func instances(ofStudy study: String) async throws -> [String: Set<String>] {
        let series = try await query([
            attribute(.queryRetrieveLevel, "CS", "SERIES"), attribute(.studyInstanceUID, "UI", study),
            attribute(.seriesInstanceUID, "UI"),
        ])
        guard series.status.kind == .success else {
            throw BackfillError.pacs("series-level C-FIND of \(study) ended with status \(series.status)")
        }
        var result: [String: Set<String>] = [:]
        for uid in Set(series.answers.compactMap { value(.seriesInstanceUID, in: $0) }) {
            let images = try await query([
                attribute(.sopInstanceUID, "UI"), attribute(.queryRetrieveLevel, "CS", "IMAGE"),
                attribute(.studyInstanceUID, "UI", study), attribute(.seriesInstanceUID, "UI", uid),
            ])
            guard images.status.kind == .success else {
                throw BackfillError.pacs("image-level C-FIND of series \(uid) ended with status \(images.status)")
            }
            result[uid] = Set(images.answers.compactMap { value(.sopInstanceUID, in: $0) })
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
        var requests: [[QueryAttribute]] = []
        if let instances {
            // Image level, at most 100 UIDs per request (a list match, PS3.4 C.2.2.2.2).
            for (series, uids) in instances.sorted(by: { $0.key < $1.key }) {
                for start in stride(from: 0, to: uids.count, by: 100) {
                    requests.append([
                        QueryAttribute(tag: .sopInstanceUID, vr: "UI", values: Array(uids[start..<min(start + 100, uids.count)])),
                        attribute(.queryRetrieveLevel, "CS", "IMAGE"), attribute(.studyInstanceUID, "UI", study),
                        attribute(.seriesInstanceUID, "UI", series),
                    ])
                }
            }
        } else {
            requests = [[attribute(.queryRetrieveLevel, "CS", "STUDY"), attribute(.studyInstanceUID, "UI", study)]]
        }
        var total = RetrieveResponseFields(messageIDBeingRespondedTo: 0, affectedSOPClassUID: Self.move, status: .success,
                                           remaining: 0, completed: 0, failed: 0, warning: 0)
        for keys in requests {
            let identifier = IdentifierCodec.encode(keys.sorted { $0.tag < $1.tag }, requested: .default,
                                                    transferSyntax: context.transferSyntax)
            let final = try await association.move(sopClassUID: Self.move, identifier: identifier, contextID: context.id,
                                                   destination: destination, progress: progress)
            total.numberOfCompletedSuboperations = (total.numberOfCompletedSuboperations ?? 0)
                &+ (final.numberOfCompletedSuboperations ?? 0)
            total.numberOfFailedSuboperations = (total.numberOfFailedSuboperations ?? 0)
                &+ (final.numberOfFailedSuboperations ?? 0)
            total.numberOfWarningSuboperations = (total.numberOfWarningSuboperations ?? 0)
                &+ (final.numberOfWarningSuboperations ?? 0)
            if final.status.kind != .success {
                total.status = final.status
                total.errorComment = final.errorComment
                if final.status.kind == .failure || final.status.kind == .cancel { break }
            }
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
