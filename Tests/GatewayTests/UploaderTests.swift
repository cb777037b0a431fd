import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import Spool
import Testing
@testable import Gateway

/// The uploader's runtime without a hub: the spool writes that must survive a cancellation.
@Suite struct UploaderTests {
    /// An uploader to destinations that are never reached (an empty spool sends nothing).
    final class Fixture: Sendable {
        let spool: Spool
        let threadPool = NIOThreadPool(numberOfThreads: 1)
        let configuration: GatewayConfiguration
        let uploader: Uploader

        init(destinations: [String]) throws {
            spool = try Spool(root: NSTemporaryDirectory() + "uploader-" + UUID().uuidString, minimumFree: .bytes(0))
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
                issuer: nil, spool: spool, threadPool: threadPool,
                bucket: NIOLockedValueBox(TokenBucket(bytesPerSecond: nil, start: .now)),
                scheduler: uploader.scheduler(name), logger: Logger(label: "test"))
        }

        func close() async throws {
            try await threadPool.shutdownGracefully()
            try spool.database.close()
            try? FileManager.default.removeItem(atPath: spool.files.root)
        }
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
