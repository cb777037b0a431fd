import Logging
import NIOPosix
import ServiceLifecycle
import Spool

/// Keeps the journal ready and lean, off the critical path: ready segments prepared in
/// advance (so that no reception waits for an allocation), and every few minutes the segments
/// nothing references deleted and the survivors of mostly dead ones copied forward.
struct JournalMaintenance: Service {
    let spool: Spool
    let threadPool: NIOThreadPool
    let logger: Logger
    var compactionInterval: Duration = .seconds(300)

    func run() async throws {
        // The journal says when it takes a ready segment; otherwise look every few seconds.
        // (Not an AsyncStream raced against a sleep: cancelling the losing `for await` ends the
        // stream, and every later wait returned at once — a busy loop.)
        let wakeup = Wakeup()
        spool.journal.onSpareTaken = { wakeup.signal() }
        defer { spool.journal.onSpareTaken = nil }
        await cancelWhenGracefulShutdown {
            var lastCompaction = ContinuousClock.now
            let spool = self.spool
            while !Task.isCancelled {
                do {
                    try await threadPool.runIfActive {
                        while spool.journal.needsSpare {
                            // Zeros only while no reception is filling segments (docs/journal.md).
                            try spool.journal.prepareSpare(zeroFill: !spool.journal.isBusy(within: .seconds(30)))
                        }
                    }
                } catch {
                    if !Task.isCancelled {
                        logger.warning("journal: cannot prepare a segment in advance", metadata: ["error": "\(error)"])
                    }
                }
                if ContinuousClock.now - lastCompaction >= compactionInterval {
                    lastCompaction = ContinuousClock.now
                    do {
                        let copied = try await threadPool.runIfActive { try spool.compactSegments() }
                        if copied > 0 {
                            logger.info("journal: survivors of mostly purged segments copied forward",
                                        metadata: ["instances": "\(copied)"])
                        }
                    } catch {
                        if !Task.isCancelled {
                            logger.warning("journal: compaction failed", metadata: ["error": "\(error)"])
                        }
                    }
                }
                await wakeup.wait(upTo: .seconds(5))
            }
        }
    }
}
