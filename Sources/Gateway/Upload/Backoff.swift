/// Exponential backoff with jitter: `minimum`·2ⁿ⁻¹ for the n-th failure, at most `maximum`,
/// spread by ±25 % so that instances (and sites) failing together do not retry together.
public struct Backoff: Sendable, Equatable {
    public var minimum: Duration
    public var maximum: Duration

    public init(minimum: Duration, maximum: Duration) {
        self.minimum = minimum
        self.maximum = maximum
    }

    /// The delay after `failures` consecutive failures (1 = the first); `jitter` in [-1, 1].
    public func delay(afterFailures failures: Int, jitter: Double) -> Duration {
        let base = Self.seconds(minimum) * Double(1 << min(max(failures - 1, 0), 30))
        let capped = min(base, Self.seconds(maximum))
        let spread = capped * (1 + 0.25 * max(-1, min(1, jitter)))
        return .milliseconds(Int64(max(Self.seconds(minimum) * 0.75, spread) * 1000))
    }

    public func delay(afterFailures failures: Int) -> Duration {
        delay(afterFailures: failures, jitter: Double.random(in: -1...1))
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
