import ServiceLifecycle

/// Purges the community cache of studies older than `cache_retention`: every 10 minutes, or
/// every half retention when that is shorter (at least every second), until a graceful stop.
struct CacheHousekeeping: Service {
    let community: CommunityProxy

    var interval: Duration {
        max(.seconds(1), min(.seconds(600), community.configuration.spool.cacheRetention / 2))
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await community.purgeCache()
                try? await Task.sleep(for: interval)
            }
        }
    }
}
