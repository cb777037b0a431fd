/// The bandwidth cap of all uploads together: a token bucket refilled at the rate in force
/// (which the schedule may change), holding at most one second of tokens.
///
/// A sender takes its bytes at once and then waits for the bucket to be back in credit, so
/// concurrent senders share the rate and none is starved. A pure value: the `Uploader` keeps
/// the one bucket of all destinations under a lock, senders sleep for what `reserve` says.
struct TokenBucket: Sendable, Equatable {
    /// Bytes per second; nil = unlimited.
    private(set) var bytesPerSecond: Int?
    private var tokens: Double
    private var refilledAt: ContinuousClock.Instant

    /// A full bucket at `start`.
    init(bytesPerSecond: Int?, start: ContinuousClock.Instant) {
        self.bytesPerSecond = bytesPerSecond
        tokens = Double(bytesPerSecond ?? 0)
        refilledAt = start
    }

    mutating func setRate(_ bytesPerSecond: Int?) {
        guard self.bytesPerSecond != bytesPerSecond else { return }
        self.bytesPerSecond = bytesPerSecond
        tokens = min(tokens, Double(bytesPerSecond ?? 0))
    }

    /// Takes `bytes` at `now`; returns how long to wait before sending them (nil: at once).
    mutating func reserve(_ bytes: Int, at now: ContinuousClock.Instant) -> Duration? {
        guard let rate = bytesPerSecond else { return nil }
        let elapsed = max(0, Backoff.seconds(refilledAt.duration(to: now)))
        tokens = min(Double(rate), tokens + elapsed * Double(rate))
        refilledAt = max(refilledAt, now)
        tokens -= Double(bytes)
        guard tokens < 0 else { return nil }
        return .microseconds(Int64(-tokens / Double(rate) * 1_000_000))
    }
}
