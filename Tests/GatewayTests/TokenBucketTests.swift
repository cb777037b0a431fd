import Testing
@testable import Gateway

/// The bandwidth cap shared by all destinations, driven by hand: each call says how long its
/// sender waits.
@Suite struct TokenBucketTests {
    let start = ContinuousClock.now

    @Test func concurrentSendersQueueBehindEachOther() {
        var bucket = TokenBucket(bytesPerSecond: 1000, start: start)
        #expect(bucket.reserve(1000, at: start) == nil, "a full bucket pays at once")
        #expect(bucket.reserve(500, at: start) == .milliseconds(500))
        #expect(bucket.reserve(500, at: start) == .seconds(1), "the second sender waits for the first")
        #expect(bucket.reserve(1, at: start + .seconds(1)) == .milliseconds(1), "the debt is paid, no credit")
    }

    @Test func aLowerRateCapsTheCreditAtOnce() {
        var bucket = TokenBucket(bytesPerSecond: 10_000, start: start)
        bucket.setRate(1000)
        #expect(bucket.bytesPerSecond == 1000)
        #expect(bucket.reserve(2000, at: start) == .seconds(1), "1000 of credit left, not 10 000")
    }

    @Test func unlimitedSendsAtOnceAndLeavesNoCreditForALaterCap() {
        var bucket = TokenBucket(bytesPerSecond: 1000, start: start)
        bucket.setRate(nil)
        #expect(bucket.bytesPerSecond == nil)
        #expect(bucket.reserve(1 << 30, at: start) == nil)
        // A schedule window starts: the cap applies from an empty bucket.
        bucket.setRate(1000)
        #expect(bucket.reserve(500, at: start) == .milliseconds(500))
    }

    @Test func settingTheSameRateKeepsTheCredit() {
        var bucket = TokenBucket(bytesPerSecond: 1000, start: start)
        #expect(bucket.reserve(400, at: start) == nil)
        bucket.setRate(1000)
        #expect(bucket.reserve(600, at: start) == nil)
        #expect(bucket.reserve(100, at: start) == .milliseconds(100))
    }

    @Test func anInstantBeforeTheLastRefillAddsNothing() {
        var bucket = TokenBucket(bytesPerSecond: 1000, start: start)
        #expect(bucket.reserve(1000, at: start + .seconds(1)) == nil)
        #expect(bucket.reserve(500, at: start) == .milliseconds(500))
    }
}
