import Foundation

/// What the uploader knows of a destination between requests (memory only: after a restart
/// the queue in SQLite is the truth, and health is learnt again from the first request).
///
/// A pure value, part of `DestinationScheduler`: time and jitter are inputs.
struct DestinationHealth: Sendable, Equatable {
    enum Condition: Sendable, Equatable {
        /// Answering, or not asked yet.
        case ok
        /// The last `consecutiveFailures` requests failed; no new request before `holdUntil`
        /// (nil once the operator's `retry` lifted the hold).
        case failing(consecutiveFailures: Int, holdUntil: Date?)
        /// No client could be made from the configuration (TLS files, URL): nothing is sent
        /// until a reload brings a usable one.
        case unusable(reason: String)
    }

    /// The last error, as status shows it.
    struct LastError: Sendable, Equatable {
        var at: Date
        var message: String
    }

    private(set) var condition = Condition.ok
    private(set) var lastSuccessAt: Date?
    private(set) var lastError: LastError?

    init() {}

    var isFailing: Bool {
        if case .ok = condition { false } else { true }
    }

    var isUsable: Bool {
        if case .unusable = condition { false } else { true }
    }

    var consecutiveFailures: Int {
        if case .failing(let failures, _) = condition { failures } else { 0 }
    }

    /// No new request before this (the destination failed and is backed off).
    var holdUntil: Date? {
        if case .failing(_, let until) = condition { until } else { nil }
    }

    func isHeld(at now: Date) -> Bool {
        holdUntil.map { $0 > now } ?? false
    }

    /// The hub answered; returns whether it was failing until now.
    mutating func answered(at now: Date) -> Bool {
        lastSuccessAt = now
        guard case .failing = condition else { return false }
        condition = .ok
        return true
    }

    /// Records a failure; returns the time until which the destination is held.
    mutating func failed(_ message: String, at now: Date, backoff: Backoff, jitter: Double) -> Date {
        lastError = LastError(at: now, message: message)
        let failures = consecutiveFailures + 1
        let until = now.addingTimeInterval(Backoff.seconds(backoff.delay(afterFailures: failures, jitter: jitter)))
        // Only a reload leaves `unusable`; a late answer of a former client does not.
        if isUsable { condition = .failing(consecutiveFailures: failures, holdUntil: until) }
        return until
    }

    mutating func becameUnusable(_ reason: String, at now: Date) {
        condition = .unusable(reason: reason)
        lastError = LastError(at: now, message: reason)
    }

    /// A client could be made: a configuration error is over (failures of a former client,
    /// and their hold, are kept).
    mutating func becameUsable() {
        if !isUsable { condition = .ok }
    }

    /// The operator asked for a retry: the next request goes out at once.
    mutating func liftHold() {
        if case .failing(let failures, _) = condition {
            condition = .failing(consecutiveFailures: failures, holdUntil: nil)
        }
    }
}
