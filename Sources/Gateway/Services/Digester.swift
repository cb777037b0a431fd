import Logging
import NIOPosix
import ServiceLifecycle
import Spool

/// Computes the index's SHA-256 of received instances after their reception
/// (`Spool.digestPending`), on a thread of its own at SCHED_IDLE priority: during a burst it
/// takes only the CPU the receptions leave, and catches up when they stop.
struct Digester: Service {
    let spool: Spool
    let logger: Logger
    var batch = 64

    func run() async throws {
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        await cancelWhenGracefulShutdown {
            let (spool, batch) = (self.spool, self.batch)
            while !Task.isCancelled {
                var done = 0
                do {
                    done = try await thread.runIfActive { try spool.digestPending(limit: batch, idle: true) }
                } catch {
                    if !Task.isCancelled {
                        logger.warning("cannot compute the SHA-256 of received instances", metadata: ["error": "\(error)"])
                    }
                }
                if done == 0 { try? await Task.sleep(for: .milliseconds(500)) }
            }
        }
        try? await thread.shutdownGracefully()
    }
}
