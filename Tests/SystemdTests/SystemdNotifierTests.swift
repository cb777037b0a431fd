import Foundation
import Logging
import Synchronization
import Testing

@testable import Systemd

/// These tests set process-wide environment variables (`NOTIFY_SOCKET`, `WATCHDOG_USEC`,
/// `WATCHDOG_PID`, `JOURNAL_STREAM`), so they run one at a time and restore the environment.
@Suite(.serialized)
struct SystemdNotifierTests {
    /// Runs `body` with the given environment variables set (nil: unset), then restores them.
    private func withEnvironment<T>(_ variables: [String: String?], _ body: () async throws -> T) async rethrows -> T {
        var saved: [String: String?] = [:]
        for (name, value) in variables {
            saved[name] = getenv(name).map { String(cString: $0) }
            if let value { setenv(name, value, 1) } else { unsetenv(name) }
        }
        defer {
            for (name, value) in saved {
                if let value { setenv(name, value, 1) } else { unsetenv(name) }
            }
        }
        return try await body()
    }

    @Test func withoutNotifySocketEverythingIsANoOp() async {
        await withEnvironment(["NOTIFY_SOCKET": nil, "WATCHDOG_USEC": nil, "WATCHDOG_PID": nil]) {
            let notifier = SystemdNotifier()
            #expect(!notifier.isEnabled)
            #expect(!notifier.ready())
            #expect(!notifier.status("idle"))
            #expect(!notifier.watchdog())
            #expect(!notifier.reloading())
            #expect(!notifier.stopping())
            #expect(notifier.watchdogInterval == nil)
            #expect(WatchdogService(logger: Logger(label: "test")) { true } == nil)
        }
    }

    @Test func messagesArriveInOrder() async throws {
        let socket = try NotifyDatagramSocket()
        try await withEnvironment(["NOTIFY_SOCKET": socket.path]) {
            let notifier = SystemdNotifier()
            #expect(notifier.isEnabled)
            #expect(notifier.ready(status: "listening on 127.0.0.1:11112"))
            #expect(notifier.status("3 associations\nsecond line"))
            #expect(notifier.watchdog())
            #expect(notifier.stopping())

            #expect(socket.receive() == "READY=1\nSTATUS=listening on 127.0.0.1:11112")
            #expect(socket.receive() == "STATUS=3 associations second line")
            #expect(socket.receive() == "WATCHDOG=1")
            #expect(socket.receive() == "STOPPING=1")
            #expect(socket.receive(timeout: .milliseconds(100)) == nil)
            _ = try #require(Optional(socket))  // keep the socket alive until here
        }
    }

    @Test func reloadingCarriesMonotonicTimestamp() async throws {
        let socket = try NotifyDatagramSocket()
        try await withEnvironment(["NOTIFY_SOCKET": socket.path]) {
            let before = SystemdNotifier.monotonicMicroseconds()
            #expect(SystemdNotifier().reloading())
            let after = SystemdNotifier.monotonicMicroseconds()
            let message = try #require(socket.receive())
            let lines = message.split(separator: "\n")
            #expect(lines.first == "RELOADING=1")
            let stamp = try #require(lines.first { $0.hasPrefix("MONOTONIC_USEC=") })
            let usec = try #require(UInt64(stamp.dropFirst("MONOTONIC_USEC=".count)))
            #expect(before <= usec && usec <= after)
        }
    }

    @Test func watchdogIntervalComesFromEnvironment() async {
        await withEnvironment(["NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "\(getpid())"]) {
            #expect(SystemdNotifier().watchdogInterval == .seconds(30))
            let watchdog = WatchdogService(logger: Logger(label: "test")) { true }
            #expect(watchdog?.period == .seconds(15))
        }
        // WATCHDOG_PID names another process: not for us.
        await withEnvironment(["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "\(getpid() + 1)"]) {
            #expect(SystemdNotifier().watchdogInterval == nil)
        }
    }

    @Test func watchdogPingsOnlyWhileHealthy() async throws {
        let socket = try NotifyDatagramSocket()
        let healthy = Mutex(true)
        let checks = Mutex(0)
        try await withEnvironment(["NOTIFY_SOCKET": socket.path]) {
            let watchdog = WatchdogService(period: .milliseconds(50), logger: Logger(label: "test")) {
                checks.withLock { $0 += 1 }
                return healthy.withLock { $0 }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await watchdog.run() }

                // Healthy: pings keep coming.
                for _ in 0..<3 {
                    #expect(await socket.receiveOffPool(timeout: .seconds(1)) == "WATCHDOG=1")
                }
                // A stalled loop: no ping at all.
                healthy.withLock { $0 = false }
                while await socket.receiveOffPool(timeout: .milliseconds(120)) != nil {}  // drain the in-flight ping
                let checksBefore = checks.withLock { $0 }
                #expect(await socket.receiveOffPool(timeout: .milliseconds(300)) == nil)
                #expect(checks.withLock { $0 } > checksBefore)  // still checking, just not pinging
                // Recovered: pings resume.
                healthy.withLock { $0 = true }
                #expect(await socket.receiveOffPool(timeout: .seconds(1)) == "WATCHDOG=1")

                group.cancelAll()
                try await group.waitForAll()  // run() returns on cancellation
            }
        }
    }

    /// `JOURNAL_STREAM` is process-wide too: the real check against this process's stderr.
    @Test func shouldUseJournalComparesWithStderr() async {
        var info = stat()
        #expect(fstat(STDERR_FILENO, &info) == 0)
        await withEnvironment(["JOURNAL_STREAM": "\(info.st_dev):\(info.st_ino)"]) {
            #expect(JournalLogHandler.shouldUseJournal())
        }
        await withEnvironment(["JOURNAL_STREAM": "\(info.st_dev):\(info.st_ino + 1)"]) {
            #expect(!JournalLogHandler.shouldUseJournal())
        }
        await withEnvironment(["JOURNAL_STREAM": nil]) {
            #expect(!JournalLogHandler.shouldUseJournal())
        }
    }

    @Test func slowHealthCheckCountsAsUnhealthy() async throws {
        let socket = try NotifyDatagramSocket()
        try await withEnvironment(["NOTIFY_SOCKET": socket.path]) {
            let watchdog = WatchdogService(period: .milliseconds(50), logger: Logger(label: "test")) {
                try? await Task.sleep(for: .milliseconds(80))
                return true
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await watchdog.run() }
                #expect(socket.receive(timeout: .milliseconds(400)) == nil)
                group.cancelAll()
                try await group.waitForAll()
            }
        }
    }
}

extension NotifyDatagramSocket {
    /// `receive(timeout:)` blocks its thread: waiting on the (2-thread) cooperative pool would
    /// starve the watchdog task under test when other suites run in parallel.
    func receiveOffPool(timeout: Duration) async -> String? {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: self.receive(timeout: timeout))
            }
        }
    }
}
