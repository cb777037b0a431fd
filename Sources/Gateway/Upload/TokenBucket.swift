import Foundation
import NIOConcurrencyHelpers

/// The bandwidth cap of all uploads together: a token bucket refilled at the rate in force
/// (which the schedule may change), holding at most one second of tokens.
///
/// A sender takes its bytes at once and then waits for the bucket to be back in credit, so
/// concurrent senders share the rate and none is starved.
public final class TokenBucket: Sendable {
    private struct State {
        var rate: Int?  // bytes per second; nil = unlimited
        var tokens: Double = 0
        var refilledAt: ContinuousClock.Instant
    }

    private let state: NIOLockedValueBox<State>
    private let clock = ContinuousClock()

    public init(bytesPerSecond: Int?) {
        state = NIOLockedValueBox(State(rate: bytesPerSecond, tokens: Double(bytesPerSecond ?? 0),
                                        refilledAt: ContinuousClock().now))
    }

    public var bytesPerSecond: Int? { state.withLockedValue { $0.rate } }

    public func setRate(_ bytesPerSecond: Int?) {
        state.withLockedValue { state in
            guard state.rate != bytesPerSecond else { return }
            state.rate = bytesPerSecond
            state.tokens = min(state.tokens, Double(bytesPerSecond ?? 0))
        }
    }

    /// Takes `bytes` and returns once they may be sent.
    public func acquire(_ bytes: Int) async throws {
        if let wait = reserve(bytes, at: clock.now) { try await Task.sleep(for: wait) }
    }

    /// Takes `bytes` at `now`; returns how long to wait before sending them (nil: at once).
    func reserve(_ bytes: Int, at now: ContinuousClock.Instant) -> Duration? {
        state.withLockedValue { state in
            guard let rate = state.rate else { return nil }
            let elapsed = max(0, Backoff.seconds(state.refilledAt.duration(to: now)))
            state.tokens = min(Double(rate), state.tokens + elapsed * Double(rate))
            state.refilledAt = max(state.refilledAt, now)
            state.tokens -= Double(bytes)
            guard state.tokens < 0 else { return nil }
            return .microseconds(Int64(-state.tokens / Double(rate) * 1_000_000))
        }
    }

    /// A bucket whose clock starts at `start`, for tests.
    init(bytesPerSecond: Int?, start: ContinuousClock.Instant) {
        state = NIOLockedValueBox(State(rate: bytesPerSecond, tokens: Double(bytesPerSecond ?? 0), refilledAt: start))
    }
}
