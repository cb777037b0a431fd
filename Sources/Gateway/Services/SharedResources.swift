import Logging
import NIOPosix
import ServiceLifecycle
import Spool

/// What the other services share — the thread pool for blocking work and the spool
/// database — closed once they have all stopped (it starts first, so it stops last).
final class SharedResources: Service, Sendable {
    private let spool: Spool
    private let threadPool: NIOThreadPool
    private let logger: Logger

    init(spool: Spool, threadPool: NIOThreadPool, logger: Logger) {
        self.spool = spool
        self.threadPool = threadPool
        self.logger = logger
    }

    func run() async throws {
        try? await gracefulShutdown()
        try? await threadPool.shutdownGracefully()
        do {
            try spool.database.close()
        } catch {
            logger.warning("spool database not closed cleanly", metadata: ["error": "\(error)"])
        }
        logger.info("stopped")
    }
}
