import Audit
import DICOMNetwork
import Foundation
import Logging
import NIOPosix
import Spool
import Testing
@testable import Gateway

@Suite struct AuditTrailTests {
    static func rows(_ database: SpoolDatabase) throws -> [AuditChain.Row] {
        try database.auditRecords().map {
            AuditChain.Row(id: $0.id, content: $0.content, previousHash: $0.previousHash, hash: $0.hash,
                           action: $0.action, outcome: $0.outcome)
        }
    }

    @Test func concurrentWritersKeepOneChain() async throws {
        let database = try SpoolDatabase()
        let pool = NIOThreadPool(numberOfThreads: 4)
        pool.start()
        let trail = AuditTrail(database: database, threadPool: pool, enabled: true, siteIssuer: "SITE",
                               logger: Logger(label: "test"))
        await withTaskGroup(of: Void.self) { group in
            for n in 0..<40 {
                group.addTask {
                    await trail.record(AuditEvent(action: .query, actor: .init(aeTitle: "AE\(n)"), details: ["n": "\(n)"]))
                }
            }
        }
        try await pool.shutdownGracefully()
        let rows = try Self.rows(database)
        #expect(rows.count == 40)
        #expect(AuditChain.verify(rows, head: rows.last?.hash) == nil)
        #expect(Set(rows.compactMap { AuditChain.event(fromCanonicalContent: $0.content)?.details["n"] }).count == 40)
    }

    @Test func disabledTrailWritesNothing() async throws {
        let database = try SpoolDatabase()
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let trail = AuditTrail(database: database, threadPool: pool, enabled: false, siteIssuer: nil,
                               logger: Logger(label: "test"))
        await trail.record(AuditEvent(action: .purge, actor: .gateway))
        trail.recordNow(AuditEvent(action: .purge, actor: .gateway))
        try await pool.shutdownGracefully()
        #expect(try database.auditRecords().isEmpty)
    }

    @Test func patientsWithoutIssuerGetTheSites() throws {
        let pool = NIOThreadPool(numberOfThreads: 1)
        let trail = AuditTrail(database: try SpoolDatabase(), threadPool: pool, enabled: true, siteIssuer: "SITE",
                               logger: Logger(label: "test"))
        #expect(trail.patient(id: "P", issuer: "") == .init(id: "P", issuer: "SITE"))
        #expect(trail.patient(id: "P", issuer: "OTHER") == .init(id: "P", issuer: "OTHER"))
    }

    @Test func uploadRowsCountPerStudyAndSkipRequeues() {
        func instance(_ id: Int64, _ study: String) -> ChunkInstance {
            ChunkInstance(instanceID: id, studyInstanceUID: study, sopInstanceUID: "1.\(id)", transferSyntaxUID: "1.2",
                          location: StoredLocation(relativePath: "f", offset: 0, length: 1, dataSetOffset: 0),
                          sha256: "", lacksIssuerOfPatientID: false, attempts: 1)
        }
        let chunk = [instance(1, "S1"), instance(2, "S1"), instance(3, "S2"), instance(4, "S3")]
        let events = AuditTrail.uploadEvents(chunk, outcomes: [
            (1, .stored(sentSHA256: "")), (2, .rejected(reason: "bad")), (3, .stored(sentSHA256: "")), (4, .requeue),
        ], destination: "archive")
        #expect(events.map(\.studies) == [["S1"], ["S2"]])
        #expect(events.map { $0.details["count"] } == ["1", "1"])
        #expect(events.map(\.outcome) == [.minorFailure, .success])
        #expect(events.allSatisfy { $0.destination == "archive" && $0.action == .upload })
    }

    @Test func communityTraceBecomesQueryOrRetrieve() {
        var find = CommunityAccess(callingAETitle: "VIEWER", calledAETitle: "MIRC", operation: "FIND",
                                   query: "PatientID=P1", status: 0)
        find.level = "STUDY"
        find.results = 3
        let association = AssociationContext(callingAETitle: "VIEWER", calledAETitle: "MIRC", peer: "10.0.0.9:5000",
                                             acceptedContexts: [:], id: 1, userName: "dr.house")
        let query = CommunityProxy.auditEvent(find, association: association, sopClassUID: "1.2.840.10008.5.1.4.1.2.2.1")
        #expect(query.action == .query)
        #expect(query.actor == .init(aeTitle: "VIEWER", address: "10.0.0.9:5000", userName: "dr.house"))
        #expect(query.details["keys"] == "PatientID=P1" && query.details["level"] == "STUDY")

        var move = CommunityAccess(callingAETitle: "VIEWER", calledAETitle: "MIRC", operation: "MOVE",
                                   query: "StudyInstanceUID=1.2", status: 0xB000)
        move.studyUIDs = ["1.2"]
        move.moveDestination = "PACS"
        move.completed = 4
        move.failed = 1
        let retrieve = CommunityProxy.auditEvent(move, association: nil, sopClassUID: nil)
        #expect(retrieve.action == .retrieve && retrieve.outcome == .minorFailure)
        #expect(retrieve.destination == "PACS" && retrieve.studies == ["1.2"])
        #expect(retrieve.details["count"] == "4" && retrieve.details["failed"] == "1")
    }

    @Test func associationRowsNameTheUserNeverThePasscode() {
        var request = AssociateRQ(calledAETitle: "PASSERELLE", callingAETitle: "CT1", presentationContexts: [])
        request.userInformation.userIdentity = UserIdentity(type: .usernameAndPasscode, positiveResponseRequested: false,
                                                            primaryField: Array("dr.house".utf8),
                                                            secondaryField: Array("secret".utf8))
        let rejected = SiteServiceProvider.auditEvent(
            request, peer: "10.0.0.5:4000",
            decision: .reject(AssociateRJ(result: .rejectedPermanent, reason: .serviceUser(.callingAETitleNotRecognized))))
        #expect(rejected.action == .associationRejected && rejected.outcome == .minorFailure)
        #expect(rejected.actor == .init(aeTitle: "CT1", address: "10.0.0.5:4000", userName: "dr.house"))
        #expect(rejected.destination == "PASSERELLE")
        #expect(!AuditChain.canonicalContent(rejected).contains("secret"))
        request.userInformation.userIdentity?.type = .jwt
        #expect(request.userInformation.auditUserName == nil)
    }
}
