import Foundation
import Testing
@testable import Gateway

/// The scheduling of one destination, driven by hand: time and jitter are inputs, and each
/// input's action is checked.
@Suite struct DestinationSchedulerTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let backoff = Backoff(minimum: .seconds(2), maximum: .seconds(60))

    func at(_ seconds: TimeInterval) -> Date { t0.addingTimeInterval(seconds) }

    /// A scheduler whose worker has a client.
    func scheduler(parallel: Int = 2) -> DestinationScheduler {
        var scheduler = DestinationScheduler(settings: .init(parallel: parallel, backoff: Self.backoff))
        scheduler.clientCreated()
        return scheduler
    }

    // MARK: What to start

    @Test func takesChunksUpToParallelThenWaitsAtMostASecond() {
        var scheduler = scheduler(parallel: 2)
        #expect(scheduler.next(now: t0) == .takeChunk)
        scheduler.chunkTaken()
        #expect(scheduler.next(now: t0) == .takeChunk)
        scheduler.chunkTaken()
        #expect(scheduler.chunksInFlight == 2)
        // Slots full; a new worker's first verification is overdue at once.
        #expect(scheduler.next(now: t0) == .verify)
        #expect(scheduler.next(now: t0) == .wait(until: at(1)))
        // A chunk done frees its slot.
        scheduler.chunkFinished()
        #expect(scheduler.next(now: at(0.5)) == .takeChunk)
        scheduler.chunkTaken()
        #expect(scheduler.next(now: at(0.5)) == .wait(until: at(1.5)))
    }

    @Test func theSpoolIsAskedAgainAfterEachWaitAndNotBefore() {
        var scheduler = scheduler(parallel: 4)
        #expect(scheduler.next(now: t0) == .takeChunk)
        #expect(scheduler.next(now: t0) == .wait(until: at(1)), "the take is not answered yet")
        scheduler.nothingDue()
        #expect(scheduler.round == .drained)
        #expect(scheduler.next(now: t0) == .verify)
        #expect(scheduler.next(now: t0) == .wait(until: at(1)), "drained: nothing more this round")
        #expect(scheduler.next(now: at(1)) == .takeChunk, "woken: a new round")
    }

    @Test func aStrayChunkFinishedFreesNoSlot() {
        var scheduler = scheduler(parallel: 1)
        scheduler.chunkFinished()
        #expect(scheduler.chunksInFlight == 0)
        #expect(scheduler.next(now: t0) == .takeChunk)
        scheduler.chunkTaken()
        #expect(scheduler.next(now: t0) == .verify)
        #expect(scheduler.next(now: t0) == .wait(until: at(1)), "parallel 1: one chunk out")
    }

    // MARK: Verification

    @Test func aDrainedQueueIsVerifiedInEachLullOnePassAtATime() {
        var scheduler = scheduler(parallel: 4)
        #expect(scheduler.next(now: t0) == .takeChunk)
        scheduler.nothingDue()
        #expect(scheduler.next(now: t0) == .verify)
        #expect(scheduler.verification == .running(startedAt: t0))
        #expect(scheduler.next(now: t0) == .wait(until: at(1)))
        #expect(scheduler.next(now: at(1)) == .takeChunk)
        scheduler.nothingDue()
        #expect(scheduler.next(now: at(1)) == .wait(until: at(2)), "the first pass still runs")
        scheduler.verificationFinished()
        #expect(scheduler.verification == .idle(lastStartedAt: t0))
        #expect(scheduler.next(now: at(2)) == .takeChunk)
        scheduler.nothingDue()
        #expect(scheduler.next(now: at(2)) == .verify, "another lull, another pass")
    }

    @Test func verificationWaitsForALullButNotLongerThanItsMaximumDelay() {
        var scheduler = scheduler(parallel: 2)
        #expect(scheduler.next(now: t0) == .takeChunk)
        scheduler.chunkTaken()
        #expect(scheduler.next(now: t0) == .takeChunk)
        scheduler.nothingDue()
        #expect(scheduler.next(now: t0) == .verify, "overdue: none yet")
        #expect(scheduler.next(now: t0) == .wait(until: at(1)))
        scheduler.verificationFinished()
        // A chunk still out: an empty queue is not a lull.
        #expect(scheduler.next(now: at(1)) == .takeChunk)
        scheduler.nothingDue()
        #expect(scheduler.next(now: at(1)) == .wait(until: at(2)))
        // Busy sending: no verification before 30 s, one after.
        #expect(scheduler.next(now: at(30)) == .takeChunk)
        scheduler.chunkTaken()
        #expect(scheduler.next(now: at(30)) == .wait(until: at(31)))
        #expect(scheduler.next(now: at(30.5)) == .verify)
    }

    // MARK: Health and backoff

    @Test func backoffDoublesWithConsecutiveFailuresUpToTheMaximum() {
        var scheduler = scheduler()
        var delays: [TimeInterval] = []
        for failures in 1...7 {
            let hold = scheduler.hubFailed("HTTP 503", at: t0, jitter: 0)
            #expect(hold.consecutiveFailures == failures)
            delays.append(hold.until.timeIntervalSince(t0))
        }
        #expect(delays == [2, 4, 8, 16, 32, 60, 60])
        #expect(scheduler.hubFailed("HTTP 503", at: t0, jitter: 1).until == at(75), "+25 % over the cap")
        #expect(scheduler.hubFailed("HTTP 503", at: t0, jitter: -1).until == at(45))
    }

    @Test func jitterSpreadsTheFirstDelaysByAQuarter() {
        var scheduler = scheduler()
        #expect(scheduler.hubFailed("timeout", at: t0, jitter: -1).until == at(1.5))
        #expect(scheduler.hubFailed("timeout", at: t0, jitter: 1).until == at(5))
        #expect(scheduler.hubFailed("timeout", at: t0, jitter: 0.5).until == at(9))
    }

    @Test func aFailureHoldsTheDestinationAndTheNextAnswerReleasesIt() {
        var scheduler = scheduler()
        #expect(!scheduler.health.isFailing)
        #expect(scheduler.hubAnswered(at: t0) == .none, "was not failing")
        #expect(scheduler.health.lastSuccessAt == t0)

        let hold = scheduler.hubFailed("HTTP 503", at: at(10), jitter: 0)
        #expect(hold.until == at(12) && hold.consecutiveFailures == 1)
        #expect(scheduler.health.condition == .failing(consecutiveFailures: 1, holdUntil: at(12)))
        #expect(scheduler.health.lastError == .init(at: at(10), message: "HTTP 503"))
        // Held: nothing started, woken at the end of the hold.
        #expect(scheduler.next(now: at(10.5)) == .wait(until: at(11.5)))
        #expect(scheduler.next(now: at(11.5)) == .wait(until: at(12)))
        #expect(scheduler.next(now: at(11.995)) == .wait(until: at(11.995).addingTimeInterval(0.01)),
                "never a sleep shorter than 10 ms")
        #expect(scheduler.next(now: at(12)) == .takeChunk)
        scheduler.chunkTaken()

        #expect(scheduler.hubAnswered(at: at(13)) == .expediteRetries, "answers again: retries due now")
        #expect(scheduler.hubAnswered(at: at(14)) == .none)
        #expect(scheduler.health.condition == .ok)
        #expect(scheduler.health.lastSuccessAt == at(14))
        #expect(scheduler.health.lastError?.message == "HTTP 503", "kept for status")
        // Failing again starts from the minimum.
        #expect(scheduler.hubFailed("HTTP 503", at: at(20), jitter: 0).until == at(22))
    }

    @Test func chunksFinishingDoNotLiftAHold() {
        var scheduler = scheduler(parallel: 2)
        for _ in 0..<2 {
            #expect(scheduler.next(now: t0) == .takeChunk)
            scheduler.chunkTaken()
        }
        _ = scheduler.hubFailed("connection refused", at: t0, jitter: 0)
        scheduler.chunkFinished()
        scheduler.chunkFinished()
        #expect(scheduler.next(now: at(0.5)) == .wait(until: at(1.5)))
        #expect(scheduler.next(now: at(1.5)) == .wait(until: at(2)))
        #expect(scheduler.next(now: at(2)) == .takeChunk)
    }

    @Test func theOperatorsRetryLiftsTheHoldButNotTheFailureCount() {
        var scheduler = scheduler()
        _ = scheduler.hubFailed("timeout", at: t0, jitter: 0)
        _ = scheduler.hubFailed("timeout", at: t0, jitter: 0)
        #expect(scheduler.next(now: at(1)) == .wait(until: at(2)))
        scheduler.retryNow()
        #expect(scheduler.health.condition == .failing(consecutiveFailures: 2, holdUntil: nil))
        #expect(scheduler.health.isFailing)
        #expect(scheduler.next(now: at(1)) == .takeChunk)
        #expect(scheduler.hubFailed("timeout", at: at(1), jitter: 0).until == at(9), "the third failure")
    }

    @Test func aClientThatCannotBeMadeHoldsEverythingUntilAReload() {
        var scheduler = DestinationScheduler(settings: .init(parallel: 2, backoff: Self.backoff))
        scheduler.clientUnavailable("cannot read /etc/passerelle/tls/site.key", at: t0)
        #expect(scheduler.health.isFailing && !scheduler.health.isUsable)
        #expect(scheduler.health.lastError == .init(at: t0, message: "cannot read /etc/passerelle/tls/site.key"))
        #expect(scheduler.next(now: t0) == .wait(until: nil), "no timer: only a reload helps")
        #expect(scheduler.hubAnswered(at: t0) == .none)
        #expect(!scheduler.health.isUsable, "only a reload leaves it")
        scheduler.clientCreated()
        #expect(scheduler.health.condition == .ok)
        #expect(scheduler.next(now: t0) == .takeChunk)
    }

    // MARK: Operator and reload

    @Test func pauseStopsNewWorkAndVerificationButNotTheChunksOut() {
        var scheduler = scheduler(parallel: 2)
        #expect(scheduler.next(now: t0) == .takeChunk)
        scheduler.chunkTaken()
        scheduler.setPaused(true)
        #expect(scheduler.next(now: t0) == .wait(until: at(1)))
        #expect(scheduler.next(now: at(1)) == .wait(until: at(2)), "no verification either")
        scheduler.chunkFinished()
        #expect(scheduler.chunksInFlight == 0)
        #expect(scheduler.next(now: at(2)) == .wait(until: at(3)))
        scheduler.setPaused(false)
        #expect(scheduler.next(now: at(2)) == .takeChunk)
    }

    @Test func aReloadChangesParallelAndBackoffAndKeepsPauseAndHistory() {
        var scheduler = scheduler(parallel: 1)
        _ = scheduler.hubAnswered(at: t0)
        _ = scheduler.hubFailed("HTTP 500", at: t0, jitter: 0)
        scheduler.setPaused(true)
        scheduler.apply(.init(parallel: 3, backoff: Backoff(minimum: .seconds(10), maximum: .seconds(20))))
        scheduler.clientCreated()
        #expect(scheduler.paused)
        #expect(scheduler.health.lastSuccessAt == t0)
        #expect(scheduler.health.condition == .failing(consecutiveFailures: 1, holdUntil: at(2)), "still held")
        scheduler.setPaused(false)
        #expect(scheduler.next(now: at(1)) == .wait(until: at(2)))
        for _ in 0..<3 {
            #expect(scheduler.next(now: at(2)) == .takeChunk)
            scheduler.chunkTaken()
        }
        #expect(scheduler.next(now: at(2)) == .verify)
        #expect(scheduler.next(now: at(2)) == .wait(until: at(3)))
        #expect(scheduler.hubFailed("HTTP 500", at: at(2), jitter: 0).until == at(22), "2nd failure: 20 s")
        #expect(scheduler.hubFailed("HTTP 500", at: at(2), jitter: 0).until == at(22), "capped at 20 s")
    }

    @Test func aNewWorkerForgetsTheWorkOfTheLastOne() {
        var scheduler = scheduler(parallel: 1)
        #expect(scheduler.next(now: t0) == .takeChunk)
        scheduler.chunkTaken()
        #expect(scheduler.next(now: t0) == .verify)
        // A reload: the old worker's run has ended (its tasks with it) before the new one starts.
        scheduler.clientCreated()
        #expect(scheduler.chunksInFlight == 0)
        #expect(scheduler.verification == .idle(lastStartedAt: nil))
        #expect(scheduler.next(now: at(1)) == .takeChunk)
    }

    @Test func settingsComeFromTheUploadTable() {
        var upload = UploadSettings()
        upload.parallel = 7
        upload.retryMin = .seconds(3)
        upload.retryMax = .seconds(90)
        let settings = DestinationScheduler.Settings(upload)
        #expect(settings == .init(parallel: 7, backoff: Backoff(minimum: .seconds(3), maximum: .seconds(90))))
        #expect(settings.verificationMaximumDelay == .seconds(30))
    }
}

// Equality of actions, for the tests only.
extension DestinationScheduler.Action: Equatable {
    public static func == (lhs: Self, rhs: Self) -> Bool {
        switch (lhs, rhs) {
        case (.takeChunk, .takeChunk), (.verify, .verify): true
        case (.wait(let left), .wait(let right)): left == right
        default: false
        }
    }
}
