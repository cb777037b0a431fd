import Foundation

/// The scheduling of one destination as one value (docs/upload.md): its health and backoff,
/// the operator's pause, how many chunks are out, when to verify, when to wake up.
///
/// Pure: no I/O, no clock, no randomness. Time and jitter are inputs; the work to start and
/// the timer to set are returned as actions, which `DestinationUploader` runs, feeding the
/// outcomes back. The `Uploader` keeps one per destination across reloads (status keeps its
/// history) under one lock, so status reads a consistent snapshot.
///
/// Which chunk goes next (urgent studies first, then oldest) is the spool's choice
/// (`SpoolDatabase.takeChunk`); this value decides when and how many.
struct DestinationScheduler: Sendable {
    /// What the configuration says about scheduling (`[upload]`).
    struct Settings: Sendable, Equatable {
        /// Chunks (STOW-RS requests) out at once.
        var parallel: Int
        var backoff: Backoff
        /// Verification (QIDO-RS) costs the hub: it waits for a lull in sending, but not
        /// longer than this.
        var verificationMaximumDelay: Duration = .seconds(30)

        init(parallel: Int, backoff: Backoff, verificationMaximumDelay: Duration = .seconds(30)) {
            self.parallel = parallel
            self.backoff = backoff
            self.verificationMaximumDelay = verificationMaximumDelay
        }

        init(_ upload: UploadSettings) {
            self.init(parallel: upload.parallel, backoff: Backoff(minimum: upload.retryMin, maximum: upload.retryMax))
        }
    }

    /// What the run loop does next.
    enum Action: Sendable {
        /// Take the next due chunk from the spool (a slot is reserved for it); answer with
        /// `chunkTaken()` or `nothingDue()`.
        case takeChunk
        /// Start a verification pass beside the sends; answer with `verificationFinished()`.
        case verify
        /// Nothing to start: sleep until a signal (a chunk done, a new instance, the operator)
        /// or until `until` (nil: until a signal only), then ask again.
        case wait(until: Date?)
    }

    /// What to do after the hub answered.
    enum AnswerAction: Sendable {
        case none
        /// It had been failing: say so, and make its retries and postponed verifications due
        /// now rather than at their backed-off times.
        case expediteRetries
    }

    /// The destination failed: it is held until `until`, and so are the instances concerned.
    struct Hold: Sendable {
        var until: Date
        var consecutiveFailures: Int
    }

    /// Where the run loop's current round stands; a round starts after each wait.
    enum Round: Sendable, Equatable {
        /// Chunks may be taken.
        case open
        /// A chunk is being taken from the spool.
        case taking
        /// The spool had nothing due: nothing more is taken before the next wait.
        case drained
    }

    enum Verification: Sendable, Equatable {
        case idle(lastStartedAt: Date?)
        case running(startedAt: Date)
    }

    /// The loop sleeps at most this long, so that retries fall due in the spool (`next_at`)
    /// and the bandwidth schedule is followed.
    static let longestSleep: Duration = .seconds(1)
    /// The shortest sleep before a hold ends, so that the loop never spins.
    static let shortestSleep: Duration = .milliseconds(10)

    private(set) var settings: Settings
    private(set) var health = DestinationHealth()
    /// By the operator (`pause`), kept in the spool across restarts.
    private(set) var paused: Bool
    private(set) var round = Round.open
    /// Chunks taken and not finished.
    private(set) var chunksInFlight = 0
    private(set) var verification = Verification.idle(lastStartedAt: nil)

    init(settings: Settings, paused: Bool = false) {
        self.settings = settings
        self.paused = paused
    }

    // MARK: Configuration and operator

    /// A reload: new settings, history and pause kept.
    mutating func apply(_ settings: Settings) {
        self.settings = settings
    }

    /// A worker starts with a usable client: what an earlier worker had running is over
    /// (its run ended before this one started), and so is a configuration error.
    mutating func clientCreated() {
        round = .open
        chunksInFlight = 0
        verification = .idle(lastStartedAt: nil)
        health.becameUsable()
    }

    /// No client could be made from the configuration: nothing is sent until a reload.
    mutating func clientUnavailable(_ reason: String, at now: Date) {
        round = .open
        chunksInFlight = 0
        verification = .idle(lastStartedAt: nil)
        health.becameUnusable(reason, at: now)
    }

    mutating func setPaused(_ paused: Bool) {
        self.paused = paused
    }

    /// The operator's `retry`: the hold is lifted, the next round sends at once.
    mutating func retryNow() {
        health.liftHold()
    }

    // MARK: The run loop

    /// What to do now: take a chunk while slots are free and the spool has work, verify in a
    /// lull (or when verification is overdue), else wait.
    mutating func next(now: Date) -> Action {
        guard health.isUsable else { return .wait(until: nil) }
        if paused || health.isHeld(at: now) {
            return endRound(now: now)
        }
        switch round {
        case .taking:
            // The loop asks again before answering its take: nothing more to start meanwhile.
            return .wait(until: wakeUpTime(now: now))
        case .open where chunksInFlight < settings.parallel:
            round = .taking
            return .takeChunk
        case .open, .drained:
            guard case .idle(let lastStartedAt) = verification else { return endRound(now: now) }
            let lull = round == .drained && chunksInFlight == 0
            let overdue = lastStartedAt.map {
                now.timeIntervalSince($0) > Backoff.seconds(settings.verificationMaximumDelay)
            } ?? true
            guard lull || overdue else { return endRound(now: now) }
            verification = .running(startedAt: now)
            return .verify
        }
    }

    /// The spool gave a chunk: it is in flight until `chunkFinished()`.
    mutating func chunkTaken() {
        if round == .taking { round = .open }
        chunksInFlight += 1
    }

    /// The spool had nothing due (or could not be read): nothing more is taken this round.
    mutating func nothingDue() {
        round = .drained
    }

    /// A chunk's outcomes are recorded: its slot is free.
    mutating func chunkFinished() {
        chunksInFlight = max(0, chunksInFlight - 1)
    }

    mutating func verificationFinished() {
        if case .running(let startedAt) = verification {
            verification = .idle(lastStartedAt: startedAt)
        }
    }

    // MARK: The hub

    /// A request (STOW-RS or QIDO-RS) got an answer.
    mutating func hubAnswered(at now: Date) -> AnswerAction {
        health.answered(at: now) ? .expediteRetries : .none
    }

    /// A request failed for a reason of the destination's (transport, 5xx, TLS, credentials):
    /// the destination is held for a backoff that grows with consecutive failures.
    /// `jitter` in [-1, 1] spreads it by ±25 %.
    mutating func hubFailed(_ message: String, at now: Date, jitter: Double) -> Hold {
        let until = health.failed(message, at: now, backoff: settings.backoff, jitter: jitter)
        return Hold(until: until, consecutiveFailures: health.consecutiveFailures)
    }

    // MARK: Helpers

    private mutating func endRound(now: Date) -> Action {
        round = .open
        return .wait(until: wakeUpTime(now: now))
    }

    /// A second from now, or the end of a hold if sooner.
    private func wakeUpTime(now: Date) -> Date {
        let latest = now.addingTimeInterval(Backoff.seconds(Self.longestSleep))
        guard let hold = health.holdUntil, hold > now else { return latest }
        return min(latest, max(hold, now.addingTimeInterval(Backoff.seconds(Self.shortestSleep))))
    }
}
