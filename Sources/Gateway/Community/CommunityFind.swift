import DICOMCore
import DICOMNetwork
import DICOMQuery
import DICOMweb
import Foundation
import Logging
import Spool

/// One C-FIND on a community: the identifier becomes QIDO-RS requests, page by page; each
/// result that really matches (checked locally) is answered as a pending response at once.
struct CommunityFind {
    let proxy: CommunityProxy
    let folder: CommunityProxy.Folder
    let request: QueryRetrieveRequest
    let association: AssociationContext
    let responder: QueryRetrieveResponder
    let logger: Logger

    /// Results asked of the hub per QIDO-RS request.
    static let pageSize = 100

    func run() async {
        let started = ContinuousClock.now
        var access = CommunityAccess(callingAETitle: association.callingAETitle, calledAETitle: association.calledAETitle,
                                     operation: "FIND", query: "", status: 0)
        var hubTime = Duration.zero
        let (status, comment) = await answer(&access, hubTime: &hubTime)
        responder.respond(QueryRetrieveResponder.message(for: request, status: status, errorComment: comment))
        access.status = status.rawValue
        access.error = comment
        let elapsed = ContinuousClock.now - started
        access.durationMilliseconds = Int(elapsed / .milliseconds(1))
        let ms = { (duration: Duration) in String(format: "%.1f", duration / .milliseconds(1)) }
        logger.info("community query", metadata: [
            "level": "\(access.level ?? "?")", "keys": "\(access.query)", "results": "\(access.results)",
            "status": "\(status)", "duration_ms": "\(ms(elapsed))", "hub_ms": "\(ms(hubTime))",
        ].merging(comment.map { ["error": "\($0)"] } ?? [:]) { a, _ in a })
        await proxy.trace(access, association: association, sopClassUID: request.affectedSOPClassUID)
    }

    /// Sends the pending responses; returns the final status.
    private func answer(_ access: inout CommunityAccess, hubTime: inout Duration) async -> (DIMSEStatus, String?) {
        let decoded: (attributes: [QueryAttribute], characterSet: SpecificCharacterSet)
        var query: FindQuery
        do {
            decoded = try IdentifierCodec.decode(request.identifier, transferSyntax: request.transferSyntax)
            access.query = QueryAttribute.describe(decoded.attributes)
            guard let model = QueryModel(sopClassUID: request.affectedSOPClassUID) else {
                return (.sopClassNotSupported, "not a query/retrieve SOP class")
            }
            query = try FindQuery(identifier: decoded.attributes, model: model)
        } catch let error as QueryError {
            return (.identifierDoesNotMatchSOPClass, error.message)
        } catch {
            return (.identifierDoesNotMatchSOPClass, "unreadable identifier: \(error)")
        }
        access.level = query.level.rawValue
        query.retrieveAETitle = association.calledAETitle
        let settings = folder.settings
        let ownIssuer = settings.excludeOwnSite ? proxy.configuration.site.issuerOfPatientID : nil
        let directory = proxy.configuration.siteDirectory
        let base = query.qidoRequest(excludeOwnIssuer: ownIssuer)

        func keep(_ result: QIDOAttributes) -> Bool {
            if let ownIssuer, FindQuery.isOwnSite(result, ownIssuer: ownIssuer) { return false }
            return query.matches(result, site: FindQuery.site(for: result, in: directory))
        }
        /// Sends one match; false when the limit is reached. A result the hub could not check
        /// against the INS goes as FF01 (an optional key not supported, PS3.4 C.4.1.1.4).
        func send(_ result: QIDOAttributes) async throws -> Bool {
            guard access.results < settings.maxResults else { return false }
            let status: DIMSEStatus = query.insUnverified(result) ? .pendingWithWarnings : .pending
            let attributes = query.response(for: result, site: FindQuery.site(for: result, in: directory))
            let identifier = IdentifierCodec.encode(attributes, requested: decoded.characterSet,
                                                    transferSyntax: request.transferSyntax)
            try await responder.respond(QueryRetrieveResponder.message(for: request, status: status, hasIdentifier: true),
                                        identifier: identifier).get()
            access.results += 1
            return true
        }

        do {
            var offset = 0
            var studies: [QIDOAttributes] = []
            while true {
                try Task.checkCancellation()
                let paged = base.withPaging(limit: Self.pageSize, offset: offset)
                let asked = ContinuousClock.now
                let page = try await folder.search.search(paged.path, parameters: paged.parameters)
                hubTime += ContinuousClock.now - asked
                try Task.checkCancellation()
                offset += page.count
                for dataSet in page {
                    let result = QueryAttribute.attributes(dataSet)
                    if query.insUnverified(result), !query.hasKeysBesidesINS {
                        // Every study of the region would match: refuse rather than show them.
                        return (Self.unableToProcess, "this community cannot search by INS alone: add the name")
                    }
                    guard keep(result) else { continue }
                    if query.level == .patient {
                        studies.append(result)  // grouped once every study is known
                    } else if try await !send(result) {
                        return (.outOfResources, "more than \(settings.maxResults) results: refine the query")
                    }
                }
                if page.count < Self.pageSize { break }
            }
            if query.level == .patient {
                for patient in FindQuery.patients(from: studies) {
                    try Task.checkCancellation()
                    if try await !send(patient) {
                        return (.outOfResources, "more than \(settings.maxResults) results: refine the query")
                    }
                }
            }
            return (.success, nil)
        } catch let error as DICOMwebError {
            if Task.isCancelled { return (.cancel, nil) }
            return (Self.unableToProcess, "community: \(error.message)")
        } catch {
            if Task.isCancelled || error is CancellationError { return (.cancel, nil) }
            return (Self.unableToProcess, "community: \(error)")
        }
    }

    /// C-FIND "Failed: Unable to process" (PS3.4 C.4.1.1.4, Cxxx).
    static let unableToProcess = DIMSEStatus(0xC001)
}
