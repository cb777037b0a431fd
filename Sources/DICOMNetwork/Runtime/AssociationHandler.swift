import DICOMCore
import Logging
import NIOCore
import NIOPosix

/// Drives one association on the acceptor side: decoded PDUs and the provider's answers go
/// to the ``AcceptorStateMachine``, whose actions this handler executes. It only moves bytes,
/// arms the ARTIM timer, calls the provider and holds what the machine names by ID (the
/// operations' handles, the sub-operations' promises): every decision is the machine's.
///
/// Data sets are streamed: the received fragments (slices of the read buffers, never copied)
/// are gathered into large batches and handed, in order, to the `StoreReceiver` on a thread pool. Reading pauses while too many bytes wait for the disk
/// and while an instance is being made durable, so memory stays bounded whatever the
/// instance size.
final class AssociationHandler: ChannelDuplexHandler {
    typealias InboundIn = PDU
    typealias InboundOut = Never
    typealias OutboundIn = Never
    typealias OutboundOut = PDU

    struct Configuration: Sendable {
        var maximumPDULength: UInt32
        var artimTimeout: TimeAmount
        /// Data set bytes gathered before one hand-over to the receiver, at most: otherwise
        /// each read burst is handed over whole (`channelReadComplete`).
        var writeChunkSize = 1024 * 1024
        /// Bytes handed to the receiver and not yet written before reading pauses.
        var maximumBytesInFlight = 4 * 1024 * 1024
    }

    /// Sent by the server at the end of the shutdown grace period.
    struct AbortForShutdown: Sendable {}

    private let configuration: Configuration
    private let provider: any DICOMServiceProvider
    let threadPool: NIOThreadPool
    private var logger: Logger

    private var machine: AcceptorStateMachine
    private var context: ChannelHandlerContext!
    private var artim: Scheduled<Void>?

    /// The C-STORE data set being written to its receiver.
    private var reception: StoreReception?
    /// Running query/retrieve operations, and C-GET sub-operations awaiting their C-STORE-RSP.
    private var operations: [UInt16: any QueryRetrieveOperation] = [:]
    private var subOperations: [UInt16: EventLoopPromise<CStoreRSP>] = [:]
    /// The future of the last PDU written (responses wait on it for flow control).
    private var lastWrite: EventLoopFuture<Void>?

    /// Receptions answered but not yet settled (`StoreReceiver.finish`), and the end of the
    /// association waiting for them.
    private var settling = 0
    private var pendingEnd: (() -> Void)?

    /// Reading is paused (backpressure); PDUs already decoded wait in `queued`.
    private var paused = false
    private var readPending = false
    private var queued = CircularBuffer<PDU>()

    init(configuration: Configuration, provider: any DICOMServiceProvider, threadPool: NIOThreadPool,
         associationID: UInt64, logger: Logger) {
        self.configuration = configuration
        self.provider = provider
        self.threadPool = threadPool
        self.logger = logger
        self.machine = AcceptorStateMachine(configuration: .init(maximumPDULength: configuration.maximumPDULength),
                                            associationID: associationID)
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { connected() }
    }

    func channelActive(context: ChannelHandlerContext) {
        connected()
        context.fireChannelActive()
    }

    private func connected() {
        run(machine.connected(peer: peer))  // Evt5
    }

    /// "address:port" of the peer, for the provider and the logs.
    private var peer: String {
        context.channel.remoteAddress.map { address in
            address.ipAddress.map { "\($0):\(address.port ?? 0)" } ?? "\(address)"
        } ?? "unknown"
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let pdu = unwrapInboundIn(data)
        if paused || waitsForSettling(pdu) {
            queued.append(pdu)
        } else {
            run(machine.pduReceived(pdu))
        }
    }

    /// An A-RELEASE-RQ waits until every instance received is settled (indexed): once the
    /// sender has its A-RELEASE-RP, what it sent is listed and audited.
    private func waitsForSettling(_ pdu: PDU) -> Bool {
        guard case .releaseRQ = pdu, settling > 0 else { return false }
        paused = true
        return true
    }

    /// The end of a read burst: what it brought goes to the receiver in one hand-over. A
    /// 512 KiB instance often arrives in a single read, and one job costs less than a chain
    /// of them (each a round trip between the event loop and the thread pool).
    func channelReadComplete(context: ChannelHandlerContext) {
        if let reception, reception.gathered > 0 { flush(reception) }
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? PDUDecodingError {
            logger.warning("invalid PDU, aborting the association", metadata: ["error": "\(error)"])
            run(machine.invalidPDUReceived(error))  // Evt19
        } else {
            logger.warning("connection error", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is AbortForShutdown {
            logger.notice("shutting down: aborting the association")
            run(machine.shutdownRequested())
        } else if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            if !paused { run(machine.readTimeoutFired()) }  // paused: we are the ones busy
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        artim?.cancel()
        run(machine.connectionClosed())  // Evt17
        context.fireChannelInactive()
    }

    func read(context: ChannelHandlerContext) {
        if paused {
            readPending = true
        } else {
            context.read()
        }
    }

    // MARK: Actions

    private func run(_ actions: [AcceptorStateMachine.Action]) {
        var needsFlush = false
        for action in actions {
            switch action {
            case .write(let pdu):
                lastWrite = context.write(wrapOutboundOut(pdu))
                needsFlush = true
            case .close:
                if needsFlush { context.flush(); needsFlush = false }
                context.close(promise: nil)
            case .startTimer(.artim):
                artim?.cancel()
                artim = context.eventLoop.assumeIsolated().scheduleTask(in: configuration.artimTimeout) { [self] in
                    logger.notice("ARTIM timer expired")
                    run(machine.timerFired(.artim))  // Evt18
                }
            case .cancelTimer(.artim):
                artim?.cancel()
                artim = nil
            case .decideAssociation(let request):
                decide(request)
            case .verify(let request, let contextID, let association):
                let status = provider.verify(association)
                run(machine.respond(.cEchoRSP(CEchoRSP(respondingTo: request, status: status)), contextID: contextID))
            case .beginStore(let request, let transferSyntax, let association):
                startReception(provider.beginStore(request, transferSyntax: transferSyntax, association: association))
            case .refuseStore(let refusal):
                startReception(RefusingStoreReceiver(StoreOutcome(status: refusal.status,
                                                                  errorComment: refusal.errorComment)))
            case .storeData(let bytes, let isLast):
                received(bytes, isLast: isLast)
            case .abandonStore:
                abandonReception()
            case .beginQueryRetrieve(let request, let association):
                let responder = QueryRetrieveResponder(eventLoop: context.eventLoop, handler: self, request: request,
                                                       association: association,
                                                       peerMaximumPDULength: machine.peerMaximumPDULength)
                operations[request.messageID] = provider.beginQueryRetrieve(request, association: association,
                                                                            responder: responder)
            case .cancelOperation(let messageID):
                operations[messageID]?.cancel()
            case .operationEnded(let messageID):
                operations[messageID] = nil
            case .subOperationAnswered(let messageID, let response):
                subOperations.removeValue(forKey: messageID)?.succeed(response)
            case .subOperationFailed(let messageID, let reason):
                subOperations.removeValue(forKey: messageID)?.fail(
                    DICOMNetworkError(code: .associationNotEstablished, message: reason))
            case .protocolError(let message):
                logger.warning("DIMSE protocol error, aborting the association", metadata: ["error": "\(message)"])
            case .eventNotAllowed(let event, let state):
                logger.debug("event not allowed", metadata: ["event": "\(event)", "state": "\(state)"])
            case .associationEnded(let association, let reason):
                ended(association, reason: reason)
            }
        }
        if needsFlush { context.flush() }
    }

    private func decide(_ request: AssociateRQ) {
        logger[metadataKey: "calling_ae"] = "\(request.callingAETitle)"
        let peer = self.peer
        switch provider.associationRequested(request, peer: peer) {
        case .reject(let rejection):
            logger.notice("association rejected", metadata: [
                "called_ae": "\(request.calledAETitle)", "reason": "\(rejection.reason)",
            ])
            run(machine.associationRejected(rejection))  // Evt8
        case .accept(let contexts, let roles):
            logger.info("association accepted", metadata: [
                "peer": "\(peer)",
                "contexts": "\(contexts.filter { $0.result == .acceptance }.count)/\(request.presentationContexts.count)",
            ])
            run(machine.associationAccepted(contexts, roleSelections: roles))  // Evt7
        }
    }

    private func ended(_ association: AssociationContext, reason: AssociationEndReason) {
        let running = operations.values
        operations = [:]
        for operation in running { operation.cancel() }
        // (Sub-operations were failed by the machine's actions just before.)
        // Its receptions' acts are recorded first (the audit counts them at the end).
        if settling > 0 {
            pendingEnd = { [provider] in provider.associationEnded(association, reason: reason) }
        } else {
            provider.associationEnded(association, reason: reason)
        }
    }

    // MARK: Query/retrieve (from the responder, on the event loop)

    /// Writes a response of a running operation; a final one ends it. Completes once written.
    func respond(_ message: DIMSEMessage, identifier: ByteBuffer?, messageID: UInt16,
                 contextID: UInt8) -> EventLoopFuture<Void> {
        lastWrite = nil
        run(machine.respond(message, identifier: identifier, messageID: messageID, contextID: contextID))
        return lastWrite ?? context.eventLoop.makeSucceededVoidFuture()
    }

    /// C-GET: sends the C-STORE-RQ of a sub-operation; its data set follows by ``subOperationData``.
    /// Returns its Message ID and the future of its C-STORE-RSP; nil when the association ended.
    func beginSubOperation(_ file: Part10DataSetFile, contextID: UInt8)
        -> (messageID: UInt16, response: EventLoopFuture<CStoreRSP>)?
    {
        let (messageID, actions) = machine.subOperationRequested(
            sopClassUID: file.sopClassUID, sopInstanceUID: file.sopInstanceUID, contextID: contextID)
        guard let messageID else { return nil }
        let promise = context.eventLoop.makePromise(of: CStoreRSP.self)
        subOperations[messageID] = promise
        run(actions)
        return (messageID, promise.futureResult)
    }

    /// The next block of a sub-operation's data set; completes once written (flow control).
    func subOperationData(messageID: UInt16, _ bytes: ByteBuffer, isLast: Bool) -> EventLoopFuture<Void> {
        lastWrite = nil
        let actions = machine.subOperationData(messageID: messageID, bytes, isLast: isLast)
        let failed = actions.contains { if case .subOperationFailed(messageID, _) = $0 { true } else { false } }
        run(actions)
        if failed {
            return context.eventLoop.makeFailedFuture(
                DICOMNetworkError(code: .associationNotEstablished, message: "the association ended"))
        }
        return lastWrite ?? context.eventLoop.makeSucceededVoidFuture()
    }

    /// A sub-operation's file could not be read: the association is aborted.
    func subOperationFileFailed(_ error: DICOMNetworkError) {
        logger.warning("file read failed during a C-GET sub-operation, aborting", metadata: ["error": "\(error)"])
        run(machine.subOperationFileFailed(error.message))
    }

    // MARK: C-STORE data set

    private func startReception(_ receiver: any StoreReceiver) {
        reception = StoreReception(receiver: receiver, writes: context.eventLoop.makeSucceededVoidFuture())
    }

    private func received(_ bytes: ByteBuffer, isLast: Bool) {
        guard let reception else { return }
        if bytes.readableBytes > 0 {
            reception.slices.append(bytes)
            reception.gathered += bytes.readableBytes
        }
        if isLast {
            finish(reception)
        } else if reception.gathered >= configuration.writeChunkSize {
            flush(reception)
        }
    }

    /// Hands the gathered slices to the receiver, after the previous writes.
    private func flush(_ reception: StoreReception) {
        guard reception.gathered > 0 else { return }
        let chunk = reception.slices
        let count = reception.gathered
        reception.slices = []
        reception.gathered = 0
        reception.bytesInFlight += count
        let eventLoop = context.eventLoop
        let receiver = reception.receiver
        let pool = threadPool
        reception.writes = reception.writes.flatMap {
            pool.runIfActive(eventLoop: eventLoop) { receiver.write(chunk) }
        }
        reception.writes.assumeIsolated().whenComplete { [self] _ in
            reception.bytesInFlight -= count
            if reception.bytesInFlight <= configuration.maximumBytesInFlight / 2, self.reception === reception {
                resume()
            }
        }
        if reception.bytesInFlight > configuration.maximumBytesInFlight { paused = true }
    }

    /// The data set is complete: wait for the receiver to make it durable, then answer.
    /// The last bytes are written in the same thread-pool job (one hop less per instance).
    private func finish(_ reception: StoreReception) {
        paused = true
        let eventLoop = context.eventLoop
        let receiver = reception.receiver
        let pool = threadPool
        let last = reception.slices.isEmpty ? nil : reception.slices
        reception.slices = []
        reception.gathered = 0
        let responded = eventLoop.makePromise(of: StoreOutcome.self)
        let settled = eventLoop.makePromise(of: Void.self)
        reception.writes.flatMap {
            pool.runIfActive(eventLoop: eventLoop) {
                if let last { receiver.write(last) }
                receiver.finish(respond: { responded.succeed($0) }, settled: { settled.succeed(()) })
            }
        }.whenFailure { error in
            // The job never ran (the pool is stopping).
            responded.fail(error)
            settled.succeed(())
        }
        // Anything after (an abandon on abort) waits for the receiver to be done.
        reception.writes = settled.futureResult
        settling += 1
        settled.futureResult.assumeIsolated().whenComplete { [self] _ in
            settling -= 1
            guard settling == 0 else { return }
            if let end = pendingEnd {
                pendingEnd = nil
                end()
            }
            resume()
        }
        responded.futureResult.assumeIsolated().whenComplete { [self] result in
            guard self.reception === reception else { return }
            self.reception = nil
            let outcome: StoreOutcome
            switch result {
            case .success(let value): outcome = value
            case .failure(let error): outcome = StoreOutcome(status: .processingFailure, errorComment: "\(error)")
            }
            run(machine.storeFinished(outcome))
            resume()
        }
    }

    private func abandonReception() {
        guard let reception else { return }
        self.reception = nil
        let receiver = reception.receiver
        let pool = threadPool
        let eventLoop = context.eventLoop
        reception.writes.whenComplete { _ in
            _ = pool.runIfActive(eventLoop: eventLoop) { receiver.abandon() }
        }
    }

    // MARK: Backpressure

    private func resume() {
        guard paused else { return }
        paused = false
        while !paused, let pdu = queued.first {
            if waitsForSettling(pdu) { break }
            queued.removeFirst()
            run(machine.pduReceived(pdu))
        }
        if !paused, let reception, reception.gathered > 0 { flush(reception) }
        if !paused, readPending {
            readPending = false
            context.read()
        }
    }
}

/// One C-STORE data set on its way to the receiver: the slices gathered for the next
/// hand-over, the chain of writes on the thread pool, and how many bytes it holds.
private final class StoreReception {
    let receiver: any StoreReceiver
    var slices: [ByteBuffer] = []
    var gathered = 0
    var writes: EventLoopFuture<Void>
    var bytesInFlight = 0

    init(receiver: any StoreReceiver, writes: EventLoopFuture<Void>) {
        self.receiver = receiver
        self.writes = writes
    }
}

/// A receiver that drops the data set and answers a fixed failure.
public final class RefusingStoreReceiver: StoreReceiver {
    let outcome: StoreOutcome
    public init(_ outcome: StoreOutcome) { self.outcome = outcome }
    public func write(_ slices: [ByteBuffer]) {}
    public func finish(respond: @escaping @Sendable (StoreOutcome) -> Void, settled: @escaping @Sendable () -> Void) {
        respond(outcome)
        settled()
    }
    public func abandon() {}
}
