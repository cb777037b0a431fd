import Logging
import NIOPosix
import ServiceLifecycle
import Spool

/// What the other services share — the thread pool for blocking work and the spool
/// database — closed once they have all stopped gracefully (it starts first, so it stops last).
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
        do {
            try await gracefulShutdown()
        } catch {
            // The group was cancelled (a service failed): every service stops at once, so the
            // others may still be using the pool and the database. Leave them to the process's
            // exit rather than close them under a running write.
            logger.debug("shared resources left open: the services were cancelled, not stopped")
            return
        }
        try? await threadPool.shutdownGracefully()
        // The last receptions' rows (the index queue runs behind the acknowledgements).
        spool.waitForIndex()
        do {
            try spool.database.close()
        } catch {
            logger.warning("spool database not closed cleanly", metadata: ["error": "\(error)"])
        }
        logger.info("stopped")
    }
}
