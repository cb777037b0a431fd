import Logging

/// Sends `WATCHDOG=1` every half `WatchdogSec=`, but only while the daemon answers.
///
/// Each period it awaits `isHealthy`; the ping is sent only if that returns `true` within
/// the period. The daemon implements `isHealthy` by hopping onto each of its event loops
/// (`try await loop.submit { }.get()` for every loop of the group), so a stalled loop — or a
/// check that never returns — stops the pings and systemd restarts the service after
/// `WatchdogSec` (`Restart=on-failure` treats a watchdog timeout as a failure).
///
/// `run()` has the shape of swift-service-lifecycle's `Service.run()`; this module does not
/// depend on ServiceLifecycle, so the daemon wraps it (see `docs/systemd.md`):
///
/// ```swift
/// struct WatchdogPinger: Service {
///     let watchdog: WatchdogService
///     func run() async throws { try await cancelWhenGracefulShutdown { await watchdog.run() } }
/// }
/// ```
///
/// Put it *first* in the `ServiceGroup` so it is shut down last and keeps pinging while the
/// gateway drains its associations. `run()` returns (normally) when its task is cancelled.
public struct WatchdogService: Sendable {
    /// Time between two health checks (and pings): half of `WatchdogSec=`.
    public let period: Duration
    private let notifier: SystemdNotifier
    private let isHealthy: @Sendable () async -> Bool
    private let logger: Logger

    /// A watchdog for the unit's `WatchdogSec=`; `nil` when systemd did not enable the watchdog
    /// for this process (not under systemd, no `WatchdogSec=`, or `WATCHDOG_PID` is another
    /// process): then there is nothing to run.
    public init?(
        notifier: SystemdNotifier = SystemdNotifier(),
        logger: Logger,
        isHealthy: @escaping @Sendable () async -> Bool
    ) {
        guard let interval = notifier.watchdogInterval else { return nil }
        self.init(period: interval / 2, notifier: notifier, logger: logger, isHealthy: isHealthy)
    }

    /// A watchdog pinging every `period` (tests; or a period shorter than half `WatchdogSec`).
    public init(
        period: Duration,
        notifier: SystemdNotifier = SystemdNotifier(),
        logger: Logger,
        isHealthy: @escaping @Sendable () async -> Bool
    ) {
        precondition(period > .zero, "watchdog period must be positive")
        self.period = period
        self.notifier = notifier
        self.logger = logger
        self.isHealthy = isHealthy
    }

    /// Checks and pings until the task is cancelled.
    public func run() async {
        let clock = ContinuousClock()
        var wasHealthy = true
        logger.debug("watchdog started", metadata: ["period": "\(period)"])
        while !Task.isCancelled {
            let start = clock.now
            let healthy = await isHealthy()
            let elapsed = start.duration(to: clock.now)
            if Task.isCancelled { break }
            if healthy && elapsed < period {
                notifier.watchdog()
                if !wasHealthy {
                    logger.notice("health check passes again; watchdog pings resumed")
                }
                wasHealthy = true
            } else {
                if wasHealthy {
                    logger.error(
                        "health check failed; withholding the watchdog ping (systemd restarts the service if this persists)",
                        metadata: ["healthy": "\(healthy)", "check_duration": "\(elapsed)"])
                }
                wasHealthy = false
            }
            do {
                try await Task.sleep(until: start.advanced(by: period), clock: clock)
            } catch {
                break  // cancelled
            }
        }
        logger.debug("watchdog stopped")
    }
}
