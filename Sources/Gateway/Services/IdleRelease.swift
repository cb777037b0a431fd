import CLinux
import ServiceLifecycle
import Spool

/// Gives back what a burst of work took once receptions stop: the database's extra reader
/// connections and page caches, and the malloc arenas' free pages. After a 10-minute soak of
/// 64 associations the daemon otherwise kept ~65 MB and a few descriptors above its idle figures.
struct IdleRelease: Service {
    let spool: Spool
    /// Quiet for this long (no DICOM instance nor HL7 message received) counts as idle.
    var quiet: Duration = .seconds(60)
    var interval: Duration = .seconds(10)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var released = true
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if spool.journal.isBusy(within: quiet) {
                    released = false
                } else if !released {
                    released = true
                    spool.database.releaseMemory()
                    ProcessMemory.releaseFree()
                }
            }
        }
    }
}

/// The process's heap, as glibc's malloc keeps it.
public enum ProcessMemory {
    /// Two arenas rather than glibc's eight per core: each thread that allocates may get an
    /// arena of its own, and every arena keeps its high-water mark. Under the soak (64
    /// associations, 10 minutes) RSS grew 27 MB from minute 2 to minute 10 with the default,
    /// 17 MB with two (flat over 4 minutes), for the same CPU. `MALLOC_ARENA_MAX` in the
    /// environment wins.
    public static func limitMallocArenas() {
        _ = passerelle_limit_malloc_arenas(2)
    }

    /// Returns the heap's free pages to the system.
    static func releaseFree() {
        passerelle_release_free_memory()
    }
}
