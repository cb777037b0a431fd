import Foundation

/// What the uploader knows of a destination between requests (memory only: after a restart
/// the queue in SQLite is the truth, and health is learnt again from the first request).
public struct DestinationHealth: Sendable, Equatable {
    public var consecutiveFailures = 0
    /// No new request before this (the destination failed and is backed off).
    public var holdUntil: Date?
    public var lastSuccessAt: Date?
    public var lastErrorAt: Date?
    public var lastError: String?
    /// The client could not be made from the configuration (TLS files, URL).
    public var configurationError: String?

    public init() {}

    public var isFailing: Bool { consecutiveFailures > 0 || configurationError != nil }

    mutating func succeeded(at now: Date) {
        consecutiveFailures = 0
        holdUntil = nil
        lastSuccessAt = now
    }

    /// Records a failure; returns the time until which the destination is held.
    mutating func failed(_ message: String, at now: Date, backoff: Backoff) -> Date {
        consecutiveFailures += 1
        lastErrorAt = now
        lastError = message
        let until = now.addingTimeInterval(Backoff.seconds(backoff.delay(afterFailures: consecutiveFailures)))
        holdUntil = until
        return until
    }
}
