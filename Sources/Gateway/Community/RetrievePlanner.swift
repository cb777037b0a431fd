import DICOMCore
import DICOMQuery
import DICOMweb
import Foundation
import NIOPosix
import Spool

/// Plans a C-MOVE or C-GET on a community: which instances it sends, found in the cache or
/// by QIDO-RS at the hub. A study cached whole is not asked again; otherwise whole series are
/// listed at the series level and fetched by one WADO-RS request each (hubs list instances
/// slowly: Orthanc 330 ms for 500); single instances are listed by UID.
struct RetrievePlanner {
    /// The community's QIDO-RS service.
    let hub: DICOMwebClient
    let spool: Spool
    let threadPool: NIOThreadPool
    /// Cache rows are per hub: the destination's name.
    let community: String

    /// An instance to send.
    struct Item: Sendable {
        var study: String
        var series: String
        var sopInstance: String
        var sopClass: String
        /// Absolute path when the instance is already in the cache.
        var cached: String?
    }

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
    func plan(_ query: RetrieveQuery) async throws -> Plan {
        var studies = query.studyUIDs
        if query.level == .patient {
            var parameters: [(name: String, value: String)] = [(Tag.patientID.hexString, query.patientID ?? "")]
            if let issuer = query.issuerOfPatientID, !issuer.isEmpty {
                parameters.append((Tag.issuerOfPatientID.hexString, issuer))
            }
            parameters.append(("includefield", Tag.studyInstanceUID.hexString))
            studies = try await hub.search("studies", parameters: parameters + [("limit", "1000")])
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
        for result in try await hub.search("studies/\(study)/series", parameters: filter) {
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
        let database = spool.database
        let community = self.community
        let found = try await threadPool.runIfActive {
            try database.cachedInstances(community: community, studyInstanceUID: study)
        }
        return found.map(item).filter { $0.cached != nil }
    }

    /// Every instance of a study from the cache, when it holds the study whole.
    private func completeStudy(_ study: String) async throws -> [Item]? {
        let database = spool.database
        let community = self.community
        let found: [CachedInstance]? = try await threadPool.runIfActive {
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
        let database = spool.database
        let community = self.community
        let found = try await threadPool.runIfActive {
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
        let path = spool.files.absolutePath(instance.filePath)
        return Item(study: instance.studyInstanceUID, series: instance.seriesInstanceUID,
                    sopInstance: instance.sopInstanceUID, sopClass: instance.sopClassUID,
                    cached: FileManager.default.fileExists(atPath: path) ? path : nil)
    }

    /// QIDO-RS instance search, paged; results lacking a UID are skipped.
    /// (Cancellation ends the HTTP request, which throws.)
    func search(_ path: String, _ filter: [QIDOParameter]) async throws(DICOMwebError) -> [Item] {
        var items: [Item] = []
        var offset = 0
        var complete = false
        while !complete {
            let parameters = Self.instanceSearch(filter, offset: offset)
            let results = try await hub.search(path, parameters: parameters)
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
}
