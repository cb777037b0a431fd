import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import ServiceLifecycle
import Spool
import Testing
@testable import Gateway

/// The uploader's runtime without a hub: status, the operator, how it stops, and the spool
/// writes that must survive a cancellation.
@Suite struct UploaderTests {
    /// An uploader to destinations that are never reached (an empty spool sends nothing).
    final class Fixture: Sendable {
        let spool: Spool
        let threadPool = NIOThreadPool(numberOfThreads: 1)
        let configuration: GatewayConfiguration
        let uploader: Uploader

        init(destinations: [String]) throws {
            spool = try Spool(root: NSTemporaryDirectory() + "uploader-" + UUID().uuidString, minimumFree: .bytes(0),
                              segmentSize: 1 << 20)
            var configuration = GatewayConfiguration()
            configuration.destinations = destinations.map {
                DestinationSettings(name: $0, url: URL(string: "http://127.0.0.1:9/dicom-web")!)
            }
            self.configuration = configuration
            threadPool.start()
            uploader = Uploader(configuration: configuration, spool: spool, threadPool: threadPool,
                                logger: Logger(label: "test"))
        }

        func worker(_ name: String) -> DestinationUploader {
            DestinationUploader(
                settings: configuration.destinations.first { $0.name == name }!, upload: configuration.upload,
                sharing: nil, issuer: nil, spool: spool, threadPool: threadPool,
                bucket: NIOLockedValueBox(TokenBucket(bytesPerSecond: nil, start: .now)),
                scheduler: uploader.scheduler(name), logger: Logger(label: "test"))
        }

        /// Returns once the worker of `name` asked the spool for work and started a
        /// verification pass (an empty spool has nothing to send).
        func workerStarted(_ name: String) async {
            let scheduler = uploader.scheduler(name)
            while scheduler.withLockedValue({ $0.verification == .idle(lastStartedAt: nil) }) {
                try? await Task.sleep(for: .milliseconds(10))
            }
        }

        func close() async throws {
            try await threadPool.shutdownGracefully()
            try spool.database.close()
            try? FileManager.default.removeItem(atPath: spool.files.root)
        }
    }

    @Test func statusReadsHealthAndPauseFromTheScheduler() async throws {
        let fixture = try Fixture(destinations: ["archive"])
        let uploader = fixture.uploader
        #expect(try uploader.destinationStatuses().map(\.health) == ["idle"])

        #expect(try uploader.setPaused(true, destination: "archive"))
        #expect(try !uploader.setPaused(true, destination: "elsewhere"), "not configured")
        #expect(try fixture.spool.database.pausedDestinations() == ["archive"], "kept across restarts")
        var status = try #require(try uploader.destinationStatuses().first)
        #expect(status.health == "paused" && status.paused)

        #expect(try uploader.setPaused(false, destination: "archive"))
        let failedAt = Date()
        _ = uploader.scheduler("archive").withLockedValue { $0.hubFailed("HTTP 503", at: failedAt, jitter: 0) }
        status = try #require(try uploader.destinationStatuses().first)
        #expect(status.health == "failing" && !status.paused)
        #expect(status.lastError == .init(at: failedAt, message: "HTTP 503"))
        #expect(status.nextRetryAt == nil, "nothing waits")

        _ = uploader.scheduler("archive").withLockedValue { $0.hubAnswered(at: failedAt.addingTimeInterval(1)) }
        status = try #require(try uploader.destinationStatuses().first)
        #expect(status.health == "ok")
        #expect(status.lastSuccessAt == failedAt.addingTimeInterval(1))
        #expect(status.lastError?.message == "HTTP 503")
        try await fixture.close()
    }

    @Test func theOperatorsRetryLiftsTheHoldOfEveryDestination() async throws {
        let fixture = try Fixture(destinations: ["archive", "community"])
        for name in ["archive", "community"] {
            _ = fixture.uploader.scheduler(name).withLockedValue { $0.hubFailed("timeout", at: Date(), jitter: 0) }
        }
        #expect(try fixture.uploader.retry(study: nil) == 0, "nothing in the spool to queue again")
        for name in ["archive", "community"] {
            let health = fixture.uploader.scheduler(name).withLockedValue { $0.health }
            #expect(health.holdUntil == nil && health.consecutiveFailures == 1)
        }
        try await fixture.close()
    }

    @Test(.timeLimit(.minutes(1))) func runEndsAtTheGracefulShutdownOfItsServiceGroup() async throws {
        let fixture = try Fixture(destinations: ["archive"])
        let group = ServiceGroup(configuration: .init(services: [fixture.uploader], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            await fixture.workerStarted("archive")
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        try await fixture.close()
    }

    @Test(.timeLimit(.minutes(1))) func aGracefulShutdownBeforeTheStartEndsRunToo() async throws {
        let fixture = try Fixture(destinations: ["archive"])
        let group = ServiceGroup(configuration: .init(services: [fixture.uploader], logger: Logger(label: "test")))
        await group.triggerGracefulShutdown()
        try await group.run()
        try await fixture.close()
    }

    @Test(.timeLimit(.minutes(1))) func runEndsWhenItsTaskIsCancelled() async throws {
        let fixture = try Fixture(destinations: ["archive", "community"])
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask { await fixture.uploader.run() }
            await fixture.workerStarted("archive")
            await fixture.workerStarted("community")
            tasks.cancelAll()
        }
        try await fixture.close()
    }

    @Test func outcomesAreRecordedEvenWhenTheWorkerIsCancelled() async throws {
        let fixture = try Fixture(destinations: ["archive", "community"])
        let archive = fixture.worker("archive")
        let wasCancelled = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                withUnsafeCurrentTask { $0?.cancel() }
                // A plain spool call is dropped once its task is cancelled…
                _ = try? await archive.database { try $0.setPaused(true, destination: "community") }
                // … an outcome is not.
                _ = try? await archive.record { try $0.setPaused(true, destination: "archive") }
                return Task.isCancelled
            }
            return await group.next() ?? false
        }
        #expect(wasCancelled)
        #expect(try fixture.spool.database.pausedDestinations() == ["archive"])
        try await fixture.close()
    }
}
