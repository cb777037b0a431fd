import Gateway
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Systemd

/// Pings systemd's watchdog while every event loop answers (see `WatchdogService`).
struct WatchdogPinger: Service {
    let watchdog: WatchdogService
    let gateway: GatewayRuntime

    init?(gateway: GatewayRuntime, group: MultiThreadedEventLoopGroup, logger: Logger) {
        self.gateway = gateway
        guard let watchdog = WatchdogService(logger: logger, isHealthy: {
            for loop in group.makeIterator() {
                guard (try? await loop.submit {}.get()) != nil else { return false }
            }
            return true
        }) else { return nil }
        self.watchdog = watchdog
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            // systemd arms the watchdog at READY=1: ping from then on.
            // Never bound (the group is stopping): wait for our turn to stop.
            guard await gateway.waitUntilListening() != nil else { return try? await gracefulShutdown() }
            await watchdog.run()
        }
    }
}

/// Keeps systemd's STATUS= line current: "12 studies, 340 instances to send, archive ok, 2 associations".
struct StatusLineService: Service {
    let gateway: GatewayRuntime
    let notifier: SystemdNotifier
    var period: Duration = .seconds(10)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            // Never bound (the group is stopping): wait for our turn to stop.
            guard await gateway.waitUntilListening() != nil else { return try? await gracefulShutdown() }
            while !Task.isCancelled {
                if let report = gateway.statusReport() {
                    notifier.status(Self.line(report))
                }
                try? await Task.sleep(for: period)
            }
        }
    }

    static func line(_ report: StatusReport) -> String {
        var line = "\(report.spool.studies) studies, "
        if report.destinations.isEmpty {
            line += "\(report.spool.states["current"]?.instances ?? 0) instances waiting (no destination), "
        } else {
            let waiting = report.destinations.map { destination in
                destination.instances.filter { ["queued", "in_flight", "retry"].contains($0.key) }
                    .values.reduce(0) { $0 + $1.instances }
            }.max() ?? 0
            line += "\(waiting) instances to send, "
            line += report.destinations.map { "\($0.name) \($0.health)" }.joined(separator: ", ") + ", "
        }
        line += "\(report.associations.active) associations"
        if report.spool.belowMinimumFree { line += ", SPOOL DISK BELOW min_free" }
        return line
    }
}
