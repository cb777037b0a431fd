import CSystemd
import Foundation
import Logging

/// Tells the service manager about the daemon's state: `sd_notify(3)`.
///
/// Every method is a no-op (returning `false`) when `NOTIFY_SOCKET` is unset, i.e. when the
/// daemon is not started by systemd as a `Type=notify` unit. `sd_notify` reads
/// `NOTIFY_SOCKET` at every call, so the value can change during the process's life (tests
/// rely on this); this type never unsets it, so threads and child processes are unaffected.
///
/// ```swift
/// let notifier = SystemdNotifier(logger: logger)
/// notifier.ready(status: "listening on 0.0.0.0:11112")   // READY=1, once the port is bound
/// notifier.reloading()                                  // on SIGHUP, then ready() again
/// notifier.stopping()                                   // at the start of graceful shutdown
/// ```
public struct SystemdNotifier: Sendable {
    private let logger: Logger?

    /// - Parameter logger: where failures to notify are reported (at `warning`); `nil` keeps
    ///   them silent.
    public init(logger: Logger? = nil) {
        self.logger = logger
    }

    /// Whether a service manager listens (`NOTIFY_SOCKET` is set and non-empty).
    public var isEnabled: Bool {
        guard let socket = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"] else { return false }
        return !socket.isEmpty
    }

    /// Half of what the unit asked for is the ping period; this is the full `WatchdogSec=`,
    /// from `sd_watchdog_enabled(3)` (`WATCHDOG_USEC`, and `WATCHDOG_PID` when set must be
    /// this process). `nil` when the watchdog is not enabled for this process.
    public var watchdogInterval: Duration? {
        var usec: UInt64 = 0
        let result = sd_watchdog_enabled(0, &usec)
        guard result > 0, usec > 0 else { return nil }
        return .microseconds(Int64(clamping: usec))
    }

    /// `READY=1`: start-up is finished (the DICOM port is bound). Before it, `systemctl start`
    /// waits; with `Type=notify` a daemon that never sends it is killed after `TimeoutStartSec`.
    @discardableResult
    public func ready(status: String? = nil) -> Bool {
        send(["READY=1"] + Self.statusAssignment(status))
    }

    /// `STATUS=…`: one line shown by `systemctl status`.
    @discardableResult
    public func status(_ text: String) -> Bool {
        send(Self.statusAssignment(text))
    }

    /// `WATCHDOG=1`: the keep-alive ping. Prefer ``WatchdogService``, which sends it only while
    /// the daemon is healthy.
    @discardableResult
    public func watchdog() -> Bool {
        send(["WATCHDOG=1"])
    }

    /// `STOPPING=1`: graceful shutdown has begun.
    @discardableResult
    public func stopping(status: String? = nil) -> Bool {
        send(["STOPPING=1"] + Self.statusAssignment(status))
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (`CLOCK_MONOTONIC`, as `sd_notify(3)` requires for
    /// `Type=notify-reload` and recommends otherwise). Send ``ready(status:)`` once the new
    /// configuration is in effect.
    @discardableResult
    public func reloading(status: String? = nil) -> Bool {
        send(["RELOADING=1", "MONOTONIC_USEC=\(Self.monotonicMicroseconds())"] + Self.statusAssignment(status))
    }

    /// Sends raw `KEY=VALUE` assignments, one per element, in one datagram.
    ///
    /// - Returns: `true` if the datagram was sent, `false` if no service manager listens or
    ///   sending failed (the failure is logged).
    @discardableResult
    public func send(_ assignments: [String]) -> Bool {
        guard !assignments.isEmpty else { return false }
        let state = assignments.joined(separator: "\n")
        let result = sd_notify(0, state)
        if result < 0 {
            logger?.warning(
                "sd_notify failed",
                metadata: ["state": "\(state)", "errno": "\(-result)", "error": "\(String(cString: strerror(-result)))"])
            return false
        }
        return result > 0
    }

    /// `STATUS=` takes one line; newlines would start new assignments.
    static func statusAssignment(_ text: String?) -> [String] {
        guard let text else { return [] }
        let line = text.map { $0.isNewline ? " " : $0 }
        return ["STATUS=" + String(line)]
    }

    static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }
}
