import DICOMCore
import DICOMweb
import Foundation
import NIOConcurrencyHelpers
import Spool

/// Fetching a retrieval's instances from the hub into the spool's cache.
extension CommunityRetrieve {
    typealias Fetched = (Item, Result<String, Failure>)

    /// Yields every instance of the plan as it is on disk: cached ones at once, then whole
    /// series and single instances fetched by WADO-RS, `parallelFetches` requests at a time.
    func fetchAll(_ plan: Plan, into continuation: AsyncStream<Fetched>.Continuation) async {
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

    /// One series by a single WADO-RS request, each instance admitted into the cache as its part
    /// ends. What the stream did not bring (cut short, or fewer than the hub counted) is listed
    /// and fetched one by one; what cannot be is a failure.
    private func fetchSeries(_ plan: SeriesPlan, into continuation: AsyncStream<Fetched>.Continuation) async {
        let delivered = NIOLockedValueBox(Set<String>())
        let spool = proxy.spool
        let community = self.community
        let staging = spool.cacheStagingDirectory
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
                    let instance = CachedInstance(community: community, studyInstanceUID: item.study,
                                                  seriesInstanceUID: item.series, sopInstanceUID: item.sopInstance,
                                                  sopClassUID: item.sopClass, size: size)
                    do {
                        continuation.yield((item, .success(try spool.admitToCache(fileAt: path, instance))))
                    } catch {
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
            let planner = RetrievePlanner(hub: folder.search, spool: spool, threadPool: proxy.threadPool,
                                          community: community)
            let listed = try await planner.search("studies/\(plan.study)/series/\(plan.series)/instances", [])
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
        var instance = CachedInstance(community: community, studyInstanceUID: item.study,
                                      seriesInstanceUID: item.series, sopInstanceUID: item.sopInstance,
                                      sopClassUID: item.sopClass, size: 0)
        do {
            let absolute = try spool.cacheFile(for: instance)
            instance.size = try await folder.retrieve.retrieveInstance(study: item.study, series: item.series,
                                                                       instance: item.sopInstance, to: absolute)
            let database = spool.database
            let recorded = instance
            try await proxy.threadPool.runIfActive { try database.recordCached(recorded) }
            return .success(absolute)
        } catch {
            return .failure(Failure(description: Self.describe(error)))
        }
    }

    /// Studies retrieved whole are served from the cache for `cache_retention`.
    func markCached(_ counts: [String: Int]) async {
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
}
