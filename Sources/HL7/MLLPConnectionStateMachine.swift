import NIOCore

/// One MLLP connection without I/O: bytes and replies in, actions out (the handler runs them).
///
/// Frames are handed to the application one at a time, in order: the next only once the
/// reply to the previous one is written (original acknowledgment mode). Frames decoded
/// meanwhile wait in a short queue; when it is full, reads are held back until it drains,
/// so a pipelining or flooding peer is slowed by TCP instead of filling memory.
struct MLLPConnectionStateMachine {
    enum Action {
        /// Give the frame to the application; its reply comes back through ``replied(_:)``.
        case handOver(MLLPInbound)
        /// Write this reply (unframed); completion comes back through ``replyWritten()``.
        case write([UInt8])
        /// Resume reading: pass on the read that was held back.
        case read
        case close
        case report(MLLPConnectionEvent)
        /// A frame interrupted by a new start block was dropped (worth a log line).
        case logDiscardedFrame(size: Int)
    }

    enum State: Equatable {
        /// Reading, no frame with the application.
        case idle
        /// A frame is with the application, or its reply is being written.
        case busy
        /// Shutting down: close once the reply to the frame in hand is written.
        case draining
        /// We asked for the close; the channel's end is still to come.
        case closing
        /// The channel is closed.
        case closed
    }

    private(set) var state = State.idle
    private var decoder: MLLPFrameDecoder
    /// Frames decoded while one is with the application.
    private var queued = CircularBuffer<MLLPInbound>()
    private let maximumQueuedFrames: Int
    /// A read was held back because the queue is full.
    private var readPending = false

    init(maximumMessageSize: Int, maximumQueuedFrames: Int) {
        decoder = MLLPFrameDecoder(maximumMessageSize: maximumMessageSize)
        self.maximumQueuedFrames = max(1, maximumQueuedFrames)
    }

    var queuedFrames: Int { queued.count }

    mutating func connected() -> [Action] {
        [.report(.opened)]
    }

    mutating func bytesReceived(_ bytes: ByteBuffer) -> [Action] {
        guard state == .idle || state == .busy else { return [] }
        var actions: [Action] = []
        for event in decoder.feed(bytes) {
            switch event {
            case .message(let content):
                actions += frameReceived(.message(content))
            case .oversized(let head, let size):
                actions += frameReceived(.oversized(head: head, size: size))
            case .discarded(let size):
                actions.append(.logDiscardedFrame(size: size))
            case .notMLLP(let seen):
                return actions + closing(with: .notMLLP(seen))
            }
        }
        return actions
    }

    private mutating func frameReceived(_ inbound: MLLPInbound) -> [Action] {
        if state == .idle {
            state = .busy
            return [.handOver(inbound)]
        }
        queued.append(inbound)
        return []
    }

    /// The channel asks for more bytes: true to let the read through.
    mutating func readRequested() -> Bool {
        switch state {
        case .idle, .busy:
            if queued.count < maximumQueuedFrames { return true }
            readPending = true
            return false
        case .draining, .closing, .closed:
            return false
        }
    }

    mutating func replied(_ reply: MLLPReply) -> [Action] {
        guard state == .busy || state == .draining else { return [] }  // closed meanwhile
        switch reply {
        case .acknowledge(let bytes):
            return [.write(bytes)]
        case .close:
            return closing(with: nil)
        }
    }

    mutating func replyWritten() -> [Action] {
        switch state {
        case .busy:
            guard let next = queued.popFirst() else {
                state = .idle
                return resumeReading()
            }
            return [.handOver(next)] + resumeReading()
        case .draining:
            return closing(with: nil)
        case .idle, .closing, .closed:
            return []
        }
    }

    private mutating func resumeReading() -> [Action] {
        guard readPending, queued.count < maximumQueuedFrames else { return [] }
        readPending = false
        return [.read]
    }

    /// The application's future failed, or the reply could not be written.
    mutating func replyFailed() -> [Action] {
        guard state == .busy || state == .draining else { return [] }
        return closing(with: nil)
    }

    /// Only an idle connection times out: while a frame is with the application, the peer
    /// is rightly silent, waiting for its ACK.
    mutating func idleTimeoutFired() -> [Action] {
        guard state == .idle else { return [] }
        return closing(with: .idleTimeout)
    }

    /// The server shuts down: an idle connection closes now, a busy one after its reply.
    /// Queued frames are dropped unanswered (the sender sends them again elsewhere or later).
    mutating func drainRequested() -> [Action] {
        switch state {
        case .idle:
            return closing(with: nil)
        case .busy:
            state = .draining
            queued.removeAll()
            return []
        case .draining, .closing, .closed:
            return []
        }
    }

    mutating func errorCaught(_ description: String) -> [Action] {
        guard state != .closing && state != .closed else { return [] }
        return closing(with: .error(description))
    }

    mutating func channelClosed() -> [Action] {
        guard state != .closed else { return [] }
        state = .closed
        queued.removeAll()
        var actions: [Action] = []
        if decoder.isInsideFrame { actions.append(.report(.unfinishedFrame(bytes: decoder.pendingFrameSize))) }
        actions.append(.report(.closed))
        return actions
    }

    private mutating func closing(with event: MLLPConnectionEvent?) -> [Action] {
        state = .closing
        queued.removeAll()
        return (event.map { [.report($0)] } ?? []) + [.close]
    }
}
