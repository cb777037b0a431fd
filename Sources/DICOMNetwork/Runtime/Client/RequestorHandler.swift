import Logging
import NIOCore
import NIOPosix

/// Drives one association on the requestor side: decoded PDUs and the user's requests go to
/// the ``RequestorStateMachine``, whose actions this handler executes. It only moves bytes,
/// arms the timer and completes promises: every decision is the machine's.
///
/// Requests come down the pipeline as ``Request`` values (`channel.write(request)`); each
/// carries the promise of its answer. Data set fragments are acknowledged (their `ready`
/// promise) once the channel is writable again, which is the sender's backpressure.
///
/// C-GET sub-operations: each inbound C-STORE-RQ gets a ``StoreReceiver`` from the request's
/// ``StoreSink``; the sink and every receiver call run one at a time, in order, on the thread
/// pool (a chain of jobs per receiver, as the acceptor's `AssociationHandler` does). The data
/// set's fragments (slices of the read buffers, never copied) are gathered into batches of at
/// most ``writeChunkSize`` bytes, or one read burst. Reading pauses while more than
/// ``maximumBytesInFlight`` bytes wait for the receiver, so memory stays bounded; the C-STORE-RSP
/// goes once the receiver calls `respond`, and the final response is reported once every
/// receiver of the operation has settled.
final class RequestorHandler: ChannelDuplexHandler {
    typealias InboundIn = PDU
    typealias InboundOut = Never
    typealias OutboundIn = Request
    typealias OutboundOut = PDU

    /// The outcome of association establishment.
    struct Negotiated: Sendable {
        var associateAC: AssociateAC
        var acceptedContexts: [UInt8: PresentationContext]
        /// Largest data set fragment per P-DATA-TF for the peer's maximum length.
        var maximumDataFragmentLength: Int
    }

    /// Sees each pending response (and its data set), in order, on the event loop.
    typealias PendingHandler = @Sendable (DIMSEMessage, ByteBuffer?) -> Void

    /// Makes the receiver of a C-GET sub-operation from its C-STORE-RQ and the transfer syntax
    /// of its context. Called on the thread pool (it may open a file).
    typealias StoreSink = @Sendable (CStoreRQ, _ transferSyntax: String) -> any StoreReceiver

    /// Data set bytes gathered before one hand-over to the receiver, at most: otherwise each
    /// read burst is handed over whole (`channelReadComplete`).
    static let writeChunkSize = 1 << 20
    /// Bytes handed to receivers and not yet written before reading pauses.
    static let maximumBytesInFlight = 4 << 20

    enum Request: Sendable {
        /// Send a DIMSE request; `response` gets the final response (or the failure), `pending`
        /// each pending one before it. A C-GET's sub-operations go to `store` (without one, they
        /// are refused with 0xA700 Out of Resources).
        case operation(DIMSEMessage, contextID: UInt8, response: EventLoopPromise<DIMSEMessage>,
                       pending: PendingHandler? = nil, store: StoreSink? = nil)
        /// The next block of the operation's data set, cut in `fragmentLength` pieces (one hop
        /// to the event loop per block rather than per fragment); `ready` completes when the
        /// next one may be sent (channel writable), or fails when the operation failed.
        case dataSetBlock(ByteBuffer, fragmentLength: Int, isLast: Bool, ready: EventLoopPromise<Void>)
        /// C-CANCEL-RQ for the operation in progress (nothing if none is).
        case cancel
        case release(EventLoopPromise<Void>)
        /// A-ABORT; the channel closes once the peer closed or ARTIM expired.
        case abort
    }

    private var machine: RequestorStateMachine
    private let timeouts: DICOMClient.Timeouts
    private let threadPool: NIOThreadPool
    private let logger: Logger

    private var established: EventLoopPromise<Negotiated>?
    /// Completed when the channel goes away, with why the association ended.
    private let ended: EventLoopPromise<DICOMNetworkError>
    private var response: EventLoopPromise<DIMSEMessage>?
    private var pending: PendingHandler?
    private var ready: EventLoopPromise<Void>?
    private var release: EventLoopPromise<Void>?

    /// C-GET: the operation's sink, the sub-operation being received, and the `settled` of the
    /// operation's receivers (its final response waits for them).
    private var store: StoreSink?
    private var acceptedContexts: [UInt8: PresentationContext] = [:]
    private var reception: InboundReception?
    private var settling: [EventLoopFuture<Void>] = []
    /// Bytes handed to receivers and not yet written.
    private var bytesInFlight = 0
    /// Reading is paused (backpressure); PDUs already decoded wait in `queued`.
    private var paused = false
    private var readPending = false
    private var queued = CircularBuffer<PDU>()

    private var timer: Scheduled<Void>?
    private var timerGeneration = 0
    private var isConnected = false
    private var context: ChannelHandlerContext!
    /// A failed TLS handshake: what every waiter is told, rather than "connection closed".
    private var handshakeFailure: DICOMNetworkError?

    init(request: AssociateRQ, timeouts: DICOMClient.Timeouts, established: EventLoopPromise<Negotiated>,
         ended: EventLoopPromise<DICOMNetworkError>, threadPool: NIOThreadPool = .singleton, logger: Logger) {
        self.machine = RequestorStateMachine(request: request)
        self.timeouts = timeouts
        self.threadPool = threadPool
        self.established = established
        self.ended = ended
        self.logger = logger
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { connected() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimer()
        failAll(.connectionClosed)
    }

    func channelActive(context: ChannelHandlerContext) {
        connected()
        context.fireChannelActive()
    }

    private func connected() {
        guard !isConnected else { return }
        isConnected = true
        run(machine.connected())
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let pdu = unwrapInboundIn(data)
        if paused {
            queued.append(pdu)
        } else {
            run(machine.pduReceived(pdu))
        }
    }

    /// The end of a read burst: what it brought of a data set goes to the receiver in one job.
    func channelReadComplete(context: ChannelHandlerContext) {
        if let reception, reception.gathered > 0 { flush(reception) }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if paused {
            readPending = true
        } else {
            context.read()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? PDUDecodingError {
            logger.warning("invalid PDU from the peer, aborting the association", metadata: ["error": "\(error)"])
            run(machine.invalidPDUReceived(error))  // Evt19
        } else if let reason = TLSHandshakeFailure.reason(for: error) {
            logger.notice("TLS handshake failed: \(reason)")
            handshakeFailure = DICOMNetworkError(code: .tlsHandshakeFailed, message: "TLS handshake failed: \(reason)")
            context.close(promise: nil)
        } else {
            logger.notice("connection error", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimer()
        run(machine.connectionClosed())  // Evt17
        failAll(.connectionClosed)
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let ready {
            self.ready = nil
            ready.succeed()
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Requests

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        promise?.succeed()  // the request is taken; its own promise carries the outcome
        switch unwrapOutboundIn(data) {
        case .operation(let message, let contextID, let response, let pending, let store):
            guard self.response == nil else {
                response.fail(DICOMNetworkError.notEstablished("another operation is in progress on this association"))
                return
            }
            self.response = response
            self.pending = pending
            self.store = store
            self.settling = []
            run(machine.operationRequested(message, contextID: contextID))
        case .dataSetBlock(var bytes, let fragmentLength, let isLast, let ready):
            guard self.response != nil, self.ready == nil else {
                ready.fail(DICOMNetworkError.notEstablished("no data set is being sent"))
                return
            }
            self.ready = ready
            repeat {
                let fragment = bytes.readSlice(length: min(fragmentLength, bytes.readableBytes)) ?? ByteBuffer()
                run(machine.dataSetFragment(fragment, isLast: isLast && bytes.readableBytes == 0))
            } while bytes.readableBytes > 0 && self.ready != nil
            if let next = self.ready, context.channel.isWritable {
                self.ready = nil
                next.succeed()
            }
        case .cancel:
            run(machine.cancelRequested())
        case .release(let promise):
            guard release == nil else {
                promise.fail(DICOMNetworkError.notEstablished("the association is being released"))
                return
            }
            release = promise
            run(machine.releaseRequested())
        case .abort:
            run(machine.abortRequested())
        }
    }

    // MARK: Actions

    private func run(_ actions: [RequestorStateMachine.Action]) {
        var needsFlush = false
        for action in actions {
            switch action {
            case .write(let pdu):
                context.write(wrapOutboundOut(pdu), promise: nil)
                needsFlush = true
            case .close:
                if needsFlush { context.flush(); needsFlush = false }
                context.close(promise: nil)
            case .startTimer(let kind):
                startTimer(kind)
            case .cancelTimer:
                cancelTimer()
            case .associateSucceeded(let ac, let accepted):
                acceptedContexts = accepted
                let negotiated = Negotiated(
                    associateAC: ac, acceptedContexts: accepted,
                    maximumDataFragmentLength: PDataTF.maximumDataFragmentLength(
                        peerMaximumPDULength: ac.userInformation.maximumLength))
                established?.succeed(negotiated)
                established = nil
            case .associateFailed(let error):
                let error = handshakeFailure ?? error
                logger.notice("association failed", metadata: ["error": "\(error)"])
                established?.fail(error)
                established = nil
            case .operationPending(let message, let dataSet):
                pending?(message, dataSet)
            case .operationSucceeded(let message):
                ready?.fail(DICOMNetworkError.notEstablished("the operation is complete"))
                ready = nil
                pending = nil
                store = nil
                let response = self.response
                self.response = nil
                if settling.isEmpty {
                    response?.succeed(message)
                } else {
                    // What the sub-operations received is settled (indexed) before the answer.
                    EventLoopFuture.andAllComplete(settling, on: context.eventLoop).whenComplete { _ in
                        response?.succeed(message)
                    }
                    settling = []
                }
            case .operationFailed(let error):
                logger.notice("DIMSE operation failed", metadata: ["error": "\(error)"])
                ready?.fail(error)
                ready = nil
                pending = nil
                store = nil
                settling = []
                response?.fail(error)
                response = nil
            case .storeRequested(let request, let contextID):
                startReception(request, transferSyntax: acceptedContexts[contextID]?.transferSyntax ?? "")
            case .storeFragment(let bytes, let isLast):
                received(bytes, isLast: isLast)
            case .storeAbandoned:
                abandonReception()
            case .releaseSucceeded:
                release?.succeed()
                release = nil
            case .releaseFailed(let error):
                release?.fail(error)
                release = nil
            }
        }
        if needsFlush { context.flush() }
    }

    private func startTimer(_ kind: RequestorStateMachine.Timer) {
        timer?.cancel()
        timerGeneration += 1
        let generation = timerGeneration
        let delay = switch kind {
        case .association, .artim: timeouts.association
        case .dimse: timeouts.dimse
        }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            guard generation == timerGeneration else { return }
            timer = nil
            if kind == .dimse, paused {
                startTimer(kind)  // we stopped reading: the receiver is behind, not the peer
                return
            }
            logger.notice("timer expired", metadata: ["timer": "\(kind)"])
            run(machine.timeoutFired(kind))
        }
    }

    private func cancelTimer() {
        timerGeneration += 1
        timer?.cancel()
        timer = nil
    }

    /// The channel is gone: nothing pending may wait forever.
    private func failAll(_ fallback: DICOMNetworkError) {
        let error: DICOMNetworkError = if let handshakeFailure {
            handshakeFailure
        } else {
            switch machine.state {
            case .failed(let failure): failure
            case .closed: .released
            default: fallback
            }
        }
        ended.succeed(error)
        abandonReception(resuming: false)
        established?.fail(error)
        established = nil
        ready?.fail(error)
        ready = nil
        pending = nil
        response?.fail(error)
        response = nil
        if let release {
            self.release = nil
            if case .closed = machine.state { release.succeed() } else { release.fail(error) }
        }
    }

    // MARK: C-GET sub-operations

    /// A C-STORE-RQ of the peer: its receiver is made on the thread pool, first job of its chain.
    private func startReception(_ request: CStoreRQ, transferSyntax: String) {
        let sink = store
        let receiver = threadPool.runIfActive(eventLoop: context.eventLoop) { () -> any StoreReceiver in
            guard let sink else {
                return RefusingStoreReceiver(StoreOutcome(
                    status: .outOfResources, errorComment: "no receiver for C-STORE sub-operations"))
            }
            return sink(request, transferSyntax)
        }
        reception = InboundReception(request: request, chain: receiver)
    }

    private func received(_ bytes: ByteBuffer, isLast: Bool) {
        guard let reception else { return }
        if bytes.readableBytes > 0 {
            reception.slices.append(bytes)
            reception.gathered += bytes.readableBytes
        }
        if isLast {
            finish(reception)
        } else if reception.gathered >= Self.writeChunkSize {
            flush(reception)
        }
    }

    /// Hands the gathered slices to the receiver, after its previous jobs.
    private func flush(_ reception: InboundReception) {
        guard reception.gathered > 0 else { return }
        let chunk = reception.slices
        let count = reception.gathered
        reception.slices = []
        reception.gathered = 0
        bytesInFlight += count
        let eventLoop = context.eventLoop
        let pool = threadPool
        reception.chain = reception.chain.flatMap { receiver in
            pool.runIfActive(eventLoop: eventLoop) { () -> any StoreReceiver in
                receiver.write(chunk)
                return receiver
            }
        }
        reception.chain.assumeIsolated().whenComplete { [self] _ in
            bytesInFlight -= count
            if bytesInFlight <= Self.maximumBytesInFlight / 2 { resume() }
        }
        if bytesInFlight > Self.maximumBytesInFlight { paused = true }
    }

    /// The data set is complete: the last bytes and `finish` in one job; the C-STORE-RSP goes
    /// when the receiver responds.
    private func finish(_ reception: InboundReception) {
        reception.finishing = true
        let eventLoop = context.eventLoop
        let pool = threadPool
        let last = reception.slices.isEmpty ? nil : reception.slices
        reception.slices = []
        reception.gathered = 0
        let responded = eventLoop.makePromise(of: StoreOutcome.self)
        let settled = eventLoop.makePromise(of: Void.self)
        reception.chain.flatMap { receiver in
            pool.runIfActive(eventLoop: eventLoop) {
                if let last { receiver.write(last) }
                receiver.finish(respond: { responded.succeed($0) }, settled: { settled.succeed(()) })
            }
        }.whenFailure { error in
            // The receiver could not be made, or the job never ran (the pool is stopping).
            responded.fail(error)
            settled.succeed(())
        }
        settling.append(settled.futureResult)
        responded.futureResult.assumeIsolated().whenComplete { [self] result in
            if self.reception === reception { self.reception = nil }
            let outcome: StoreOutcome
            switch result {
            case .success(let value): outcome = value
            case .failure(let error): outcome = StoreOutcome(status: .processingFailure, errorComment: "\(error)")
            }
            run(machine.storeResponded(status: outcome.status, errorComment: outcome.errorComment))
        }
    }

    /// The association ended mid data set: the receiver drops it, after its previous jobs.
    /// (A reception already finishing is left to its receiver.)
    private func abandonReception(resuming: Bool = true) {
        guard let reception else { return }
        self.reception = nil
        guard !reception.finishing else { return }
        let pool = threadPool
        let eventLoop = context.eventLoop
        reception.chain.whenSuccess { receiver in
            _ = pool.runIfActive(eventLoop: eventLoop) { receiver.abandon() }
        }
        if resuming, paused {
            // The peer's close (after our A-ABORT) must still be read; after this batch of actions.
            context.eventLoop.assumeIsolated().execute { [self] in resume() }
        }
    }

    private func resume() {
        guard paused else { return }
        paused = false
        while !paused, let pdu = queued.popFirst() {
            run(machine.pduReceived(pdu))
        }
        if !paused, let reception, reception.gathered > 0 { flush(reception) }
        if !paused, readPending {
            readPending = false
            context.read()
        }
    }
}

/// One inbound C-STORE data set on its way to its receiver: the slices gathered for the next
/// hand-over and the chain of thread-pool jobs (which yields the receiver).
private final class InboundReception {
    let request: CStoreRQ
    var chain: EventLoopFuture<any StoreReceiver>
    var slices: [ByteBuffer] = []
    var gathered = 0
    /// `finish` is scheduled: the receiver answers, nothing to abandon.
    var finishing = false

    init(request: CStoreRQ, chain: EventLoopFuture<any StoreReceiver>) {
        self.request = request
        self.chain = chain
    }
}
