import Logging
import NIOCore

/// Drives one association on the requestor side: decoded PDUs and the user's requests go to
/// the ``RequestorStateMachine``, whose actions this handler executes. It only moves bytes,
/// arms the timer and completes promises: every decision is the machine's.
///
/// Requests come down the pipeline as ``Request`` values (`channel.write(request)`); each
/// carries the promise of its answer. Data set fragments are acknowledged (their `ready`
/// promise) once the channel is writable again, which is the sender's backpressure.
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

    enum Request: Sendable {
        /// Send a DIMSE request; `response` gets the final response (or the failure), `pending`
        /// each pending one before it.
        case operation(DIMSEMessage, contextID: UInt8, response: EventLoopPromise<DIMSEMessage>,
                       pending: PendingHandler? = nil)
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
    private let logger: Logger

    private var established: EventLoopPromise<Negotiated>?
    /// Completed when the channel goes away, with why the association ended.
    private let ended: EventLoopPromise<DICOMNetworkError>
    private var response: EventLoopPromise<DIMSEMessage>?
    private var pending: PendingHandler?
    private var ready: EventLoopPromise<Void>?
    private var release: EventLoopPromise<Void>?

    private var timer: Scheduled<Void>?
    private var timerGeneration = 0
    private var isConnected = false
    private var context: ChannelHandlerContext!

    init(request: AssociateRQ, timeouts: DICOMClient.Timeouts, established: EventLoopPromise<Negotiated>,
         ended: EventLoopPromise<DICOMNetworkError>, logger: Logger) {
        self.machine = RequestorStateMachine(request: request)
        self.timeouts = timeouts
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
        run(machine.pduReceived(unwrapInboundIn(data)))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? PDUDecodingError {
            logger.warning("invalid PDU from the peer, aborting the association", metadata: ["error": "\(error)"])
            run(machine.invalidPDUReceived(error))  // Evt19
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
        case .operation(let message, let contextID, let response, let pending):
            guard self.response == nil else {
                response.fail(DICOMNetworkError.notEstablished("another operation is in progress on this association"))
                return
            }
            self.response = response
            self.pending = pending
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
                let negotiated = Negotiated(
                    associateAC: ac, acceptedContexts: accepted,
                    maximumDataFragmentLength: PDataTF.maximumDataFragmentLength(
                        peerMaximumPDULength: ac.userInformation.maximumLength))
                established?.succeed(negotiated)
                established = nil
            case .associateFailed(let error):
                logger.notice("association failed", metadata: ["error": "\(error)"])
                established?.fail(error)
                established = nil
            case .operationPending(let message, let dataSet):
                pending?(message, dataSet)
            case .operationSucceeded(let message):
                ready?.fail(DICOMNetworkError.notEstablished("the operation is complete"))
                ready = nil
                pending = nil
                response?.succeed(message)
                response = nil
            case .operationFailed(let error):
                logger.notice("DIMSE operation failed", metadata: ["error": "\(error)"])
                ready?.fail(error)
                ready = nil
                pending = nil
                response?.fail(error)
                response = nil
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
        let error: DICOMNetworkError
        switch machine.state {
        case .failed(let failure): error = failure
        case .closed: error = .released
        default: error = fallback
        }
        ended.succeed(error)
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
}
