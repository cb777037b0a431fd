import DICOMCore
import Logging
import NIOCore
import NIOPosix

/// Drives one association on the acceptor side: decoded PDUs go to the
/// `AssociationStateMachine`, whose actions this handler executes; DIMSE messages go to the
/// `DICOMServiceProvider`. It only moves bytes and runs actions: every decision is made by
/// the state machine, the message assembler or the provider.
///
/// Data sets are streamed: fragments are coalesced into large writes and handed, in order, to
/// the `StoreReceiver` on a thread pool. Reading pauses while too many bytes wait for the disk
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
        /// Data set bytes gathered before one write to the receiver.
        var writeChunkSize = 512 * 1024
        /// Bytes handed to the receiver and not yet written before reading pauses.
        var maximumBytesInFlight = 4 * 1024 * 1024
    }

    private let configuration: Configuration
    private let provider: any DICOMServiceProvider
    private let threadPool: NIOThreadPool
    private var logger: Logger
    private let associationID: UInt64

    private var machine = AssociationStateMachine()
    private var assembler = DIMSEMessageAssembler()
    private var association: AssociationContext?
    private var peerMaximumPDULength: UInt32 = 0
    private var reception: Reception?
    private var releaseRequested = false
    private var released = false
    private var ended = false
    private var artim: Scheduled<Void>?

    /// Reading is paused (backpressure); PDUs already decoded wait in `queued`.
    private var paused = false
    private var readPending = false
    private var queued = CircularBuffer<PDU>()

    private var context: ChannelHandlerContext!

    /// A query/retrieve identifier being received, then the running operations by message ID.
    private var identifierReception: IdentifierReception?
    private var operations: [UInt16: any QueryRetrieveOperation] = [:]
    /// C-GET sub-operations waiting for their C-STORE-RSP, by our message ID.
    private var subOperations: [UInt16: EventLoopPromise<CStoreRSP>] = [:]
    private var nextSubOperationMessageID: UInt16 = 1
    /// The future of the last PDU written (responses wait on it for flow control).
    private var lastWrite: EventLoopFuture<Void>?

    private struct IdentifierReception {
        var command: QueryRetrieveRequest.Command
        var contextID: UInt8
        var transferSyntax: String
        var buffer: ByteBuffer
        /// Set when the request cannot be served: answered with this failure once the identifier is read.
        var refusal: (DIMSEStatus, String)?
    }

    /// Identifiers are a few keys; anything larger is refused rather than buffered.
    static let maximumIdentifierLength = 1024 * 1024

    /// One C-STORE data set being received.
    private final class Reception {
        let receiver: any StoreReceiver
        let request: CStoreRQ
        let contextID: UInt8
        var buffer: ByteBuffer
        var writes: EventLoopFuture<Void>
        var bytesInFlight = 0

        init(receiver: any StoreReceiver, request: CStoreRQ, contextID: UInt8, buffer: ByteBuffer,
             writes: EventLoopFuture<Void>) {
            self.receiver = receiver
            self.request = request
            self.contextID = contextID
            self.buffer = buffer
            self.writes = writes
        }
    }

    init(configuration: Configuration, provider: any DICOMServiceProvider, threadPool: NIOThreadPool,
         associationID: UInt64, logger: Logger) {
        self.configuration = configuration
        self.provider = provider
        self.threadPool = threadPool
        self.associationID = associationID
        self.logger = logger
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

    private var isConnected = false
    private func connected() {
        guard !isConnected else { return }
        isConnected = true
        run(machine.handle(.transportConnectIndication))  // Evt5
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let pdu = unwrapInboundIn(data)
        if paused {
            queued.append(pdu)
        } else {
            run(machine.handle(.pduReceived(pdu)))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? PDUDecodingError {
            logger.warning("invalid PDU, aborting the association", metadata: ["error": "\(error)"])
            run(machine.handle(.invalidPDUReceived(error)))  // Evt19
        } else {
            logger.warning("connection error", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    /// Sent by the server at the end of the shutdown grace period.
    struct AbortForShutdown: Sendable {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is AbortForShutdown {
            logger.notice("shutting down: aborting the association")
            abandonReception()
            if machine.isEstablished {
                run(machine.handle(.abortRequestPrimitive(AAbort(source: .serviceUser, reason: .notSpecified))))
            }
            context.close(promise: nil)
            return
        }
        guard let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // Silence while we are the ones working (writing, fsyncing) is not the peer's idleness.
        guard reception == nil, !paused, operations.isEmpty, subOperations.isEmpty else { return }
        if machine.isEstablished {
            logger.notice("idle timeout, aborting the association")
            run(machine.handle(.abortRequestPrimitive(AAbort(source: .serviceUser, reason: .notSpecified))))
        } else {
            // No association yet (or one being torn down): the silence counts as ARTIM expiry.
            logger.notice("idle timeout before the association was established, closing")
            run(machine.handle(.artimExpired))  // Evt18
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        artim?.cancel()
        run(machine.handle(.transportClosed))  // Evt17
        end(reason: released ? .released : .aborted("connection closed"))
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

    private func run(_ actions: [AssociationAction]) {
        var needsFlush = false
        for action in actions {
            switch action {
            case .send(let pdu):
                if case .releaseRP = pdu { released = true }
                lastWrite = context.write(wrapOutboundOut(pdu))
                needsFlush = true
            case .closeTransport:
                if needsFlush { context.flush(); needsFlush = false }
                context.close(promise: nil)
            case .startARTIM:
                artim?.cancel()
                let timeout = configuration.artimTimeout
                artim = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
                    logger.notice("ARTIM timer expired")
                    run(machine.handle(.artimExpired))  // Evt18
                }
            case .stopARTIM:
                artim?.cancel()
                artim = nil
            case .indicateAssociateRQ(let request):
                associateRequested(request)
            case .indicatePData(let pData):
                for value in pData.values { received(value) }
            case .indicateReleaseRQ:
                releaseRequested = true
                releaseIfIdle()
            case .indicateAbort(let indication):
                abandonReception()
                logger.info("association aborted", metadata: ["reason": "\(indication)"])
                end(reason: .aborted("\(indication)"))
            case .eventNotAllowed(let event, let state):
                logger.debug("event not allowed", metadata: ["event": "\(event)", "state": "\(state)"])
            case .openTransport, .indicateAssociateAC, .indicateAssociateRJ, .indicateReleaseConfirmed:
                break  // requestor-side actions
            }
        }
        if needsFlush { context.flush() }
    }

    private func associateRequested(_ request: AssociateRQ) {
        let peer = context.channel.remoteAddress.map { address in
            address.ipAddress.map { "\($0):\(address.port ?? 0)" } ?? "\(address)"
        } ?? "unknown"
        logger[metadataKey: "calling_ae"] = "\(request.callingAETitle)"
        switch provider.associationRequested(request, peer: peer) {
        case .reject(let rejection):
            logger.notice("association rejected", metadata: [
                "called_ae": "\(request.calledAETitle)", "reason": "\(rejection.reason)",
            ])
            run(machine.handle(.associateRJPrimitive(rejection)))  // Evt8
        case .accept(let contexts, let roles):
            peerMaximumPDULength = request.userInformation.maximumLength
            var accepted: [UInt8: (abstractSyntax: String, transferSyntax: String)] = [:]
            for result in contexts where result.result == .acceptance {
                if let proposal = request.presentationContexts.first(where: { $0.id == result.id }) {
                    accepted[result.id] = (proposal.abstractSyntax, result.transferSyntax)
                }
            }
            association = AssociationContext(
                callingAETitle: request.callingAETitle, calledAETitle: request.calledAETitle,
                peer: peer, acceptedContexts: accepted, id: associationID)
            var userInformation = UserInformation()
            userInformation.maximumLength = configuration.maximumPDULength
            userInformation.implementationClassUID = Implementation.classUID
            userInformation.implementationVersionName = Implementation.versionName
            userInformation.roleSelections = roles
            if request.userInformation.asynchronousOperationsWindow != nil {
                // One operation at a time: each response follows its instance being durable.
                userInformation.asynchronousOperationsWindow = AsynchronousOperationsWindow(
                    maximumOperationsInvoked: 1, maximumOperationsPerformed: 1)
            }
            let acceptance = AssociateAC(
                calledAETitle: request.calledAETitle, callingAETitle: request.callingAETitle,
                presentationContexts: contexts, userInformation: userInformation)
            logger.info("association accepted", metadata: [
                "peer": "\(peer)", "contexts": "\(accepted.count)/\(request.presentationContexts.count)",
            ])
            run(machine.handle(.associateACPrimitive(acceptance)))  // Evt7
        }
    }

    // MARK: DIMSE

    private func received(_ value: PresentationDataValue) {
        let events: [DIMSEAssemblyEvent]
        do {
            events = try assembler.receive(value)
        } catch {
            protocolError("\(error)")
            return
        }
        for event in events {
            switch event {
            case .command(let contextID, let commandSet):
                commandReceived(commandSet, contextID: contextID)
            case .dataFragment(let contextID, let bytes, let isLast):
                dataReceived(bytes, contextID: contextID, isLast: isLast)
            }
        }
    }

    private func commandReceived(_ commandSet: CommandSet, contextID: UInt8) {
        guard let association, let presentation = association.acceptedContexts[contextID] else {
            protocolError("command on presentation context \(contextID), which was not accepted")
            return
        }
        let message: DIMSEMessage
        do {
            message = try DIMSEMessage(commandSet: commandSet)
        } catch {
            protocolError("\(error)")
            return
        }
        switch message {
        case .cEchoRQ(let request):
            let status = provider.verify(association)
            send(.cEchoRSP(CEchoRSP(messageIDBeingRespondedTo: request.messageID,
                                    affectedSOPClassUID: request.affectedSOPClassUID, status: status)),
                 contextID: contextID)
        case .cStoreRQ(let request):
            let receiver: any StoreReceiver
            if request.affectedSOPClassUID != presentation.abstractSyntax {
                receiver = RefusingStoreReceiver(StoreOutcome(
                    status: .sopClassNotSupported,
                    errorComment: "SOP class differs from the presentation context's abstract syntax"))
            } else {
                receiver = provider.beginStore(request, transferSyntax: presentation.transferSyntax,
                                               association: association)
            }
            guard commandSet.hasDataSet else {
                // A C-STORE-RQ must carry a data set (PS3.7 §9.3.1.1).
                receiver.abandon()
                send(.cStoreRSP(CStoreRSP(respondingTo: request, status: .cannotUnderstand)), contextID: contextID)
                return
            }
            reception = Reception(
                receiver: receiver, request: request, contextID: contextID,
                buffer: context.channel.allocator.buffer(capacity: configuration.writeChunkSize),
                writes: context.eventLoop.makeSucceededVoidFuture())
        case .cFindRQ(let request):
            beginIdentifier(.find(request), sopClass: request.affectedSOPClassUID, hasDataSet: commandSet.hasDataSet,
                            contextID: contextID, presentation: presentation)
        case .cMoveRQ(let request):
            beginIdentifier(.move(request), sopClass: request.affectedSOPClassUID, hasDataSet: commandSet.hasDataSet,
                            contextID: contextID, presentation: presentation)
        case .cGetRQ(let request):
            beginIdentifier(.get(request), sopClass: request.affectedSOPClassUID, hasDataSet: commandSet.hasDataSet,
                            contextID: contextID, presentation: presentation)
        case .cCancelRQ(let request):
            // PS3.7 §9.3.2.3: a C-CANCEL for an operation already finished is ignored.
            operations[request.messageIDBeingRespondedTo]?.cancel()
        case .cStoreRSP(let response):
            guard let promise = subOperations.removeValue(forKey: response.messageIDBeingRespondedTo) else {
                protocolError("C-STORE-RSP for message \(response.messageIDBeingRespondedTo), which is not outstanding")
                return
            }
            promise.succeed(response)
        default:
            protocolError("DIMSE message \(commandSet.commandField.map { String($0, radix: 16) } ?? "?") "
                          + "not expected on this association")
        }
    }

    // MARK: Query/retrieve

    private func beginIdentifier(_ command: QueryRetrieveRequest.Command, sopClass: String, hasDataSet: Bool,
                                 contextID: UInt8, presentation: (abstractSyntax: String, transferSyntax: String)) {
        var reception = IdentifierReception(
            command: command, contextID: contextID, transferSyntax: presentation.transferSyntax,
            buffer: context.channel.allocator.buffer(capacity: 1024))
        if sopClass != presentation.abstractSyntax {
            reception.refusal = (.sopClassNotSupported, "SOP class differs from the presentation context's abstract syntax")
        }
        guard hasDataSet else {
            // PS3.7 §9.3.2.1: the identifier is mandatory.
            reception.refusal = (.cannotUnderstand, "request without an identifier")
            identifierComplete(reception)
            return
        }
        identifierReception = reception
    }

    private func identifierComplete(_ reception: IdentifierReception) {
        let request = QueryRetrieveRequest(command: reception.command, contextID: reception.contextID,
                                           transferSyntax: reception.transferSyntax, identifier: reception.buffer)
        guard let association else { return }
        let responder = QueryRetrieveResponder(eventLoop: context.eventLoop, handler: self, request: request,
                                               association: association)
        operations[request.messageID] = NoOperation()
        if let (status, comment) = reception.refusal {
            responder.respond(QueryRetrieveResponder.message(for: request, status: status, errorComment: comment))
            return
        }
        let operation = provider.beginQueryRetrieve(request, association: association, responder: responder)
        // The operation may already have answered its final response.
        if operations[request.messageID] != nil { operations[request.messageID] = operation }
    }

    /// Writes a response of a running operation; a final one ends it.
    func respond(_ message: DIMSEMessage, identifier: ByteBuffer?, messageID: UInt16,
                 contextID: UInt8) -> EventLoopFuture<Void> {
        guard operations[messageID] != nil, machine.canSendData else { return context.eventLoop.makeSucceededVoidFuture() }
        let status: DIMSEStatus? = switch message {
        case .cFindRSP(let rsp): rsp.status
        case .cMoveRSP(let rsp): rsp.fields.status
        case .cGetRSP(let rsp): rsp.fields.status
        default: nil
        }
        lastWrite = nil
        send(message, contextID: contextID)
        if let identifier {
            for pData in PDataTF.fragments(of: identifier, contextID: contextID, isCommand: false,
                                           maximumPDULength: peerMaximumPDULength) {
                run(machine.handle(.pDataRequestPrimitive(pData)))
            }
        }
        let written = lastWrite ?? context.eventLoop.makeSucceededVoidFuture()
        if let status, status.kind != .pending {
            operations[messageID] = nil
            releaseIfIdle()
        }
        return written
    }

    /// C-GET: one C-STORE sub-operation on this association; completes with the C-STORE-RSP.
    func storeSubOperation(_ file: Part10DataSetFile, contextID: UInt8,
                           originatorMessageID: UInt16) -> EventLoopFuture<CStoreRSP> {
        let eventLoop = context.eventLoop
        guard machine.canSendData, !ended else {
            return eventLoop.makeFailedFuture(DICOMClientError(code: .connectionClosed, message: "the association ended"))
        }
        let messageID = nextSubOperationMessageID
        nextSubOperationMessageID &+= 1
        if nextSubOperationMessageID == 0 { nextSubOperationMessageID = 1 }
        let promise = eventLoop.makePromise(of: CStoreRSP.self)
        subOperations[messageID] = promise
        send(.cStoreRQ(CStoreRQ(messageID: messageID, affectedSOPClassUID: file.sopClassUID,
                                affectedSOPInstanceUID: file.sopInstanceUID)), contextID: contextID)
        let fragmentLength = Int(max(peerMaximumPDULength == 0 ? PDataTF.defaultMaximumPDULengthForUnlimited
                                                                 : peerMaximumPDULength,
                                     PDataTF.minimumUsablePDULength)) - 6
        sendDataSet(file, remaining: file.dataSetLength, contextID: contextID,
                    blockSize: DICOMAssociation.blockSize(fragmentLength: fragmentLength), messageID: messageID)
        return promise.futureResult
    }

    /// Streams the data set one block at a time: the next block is read when the previous is written.
    private func sendDataSet(_ file: Part10DataSetFile, remaining: Int, contextID: UInt8, blockSize: Int,
                             messageID: UInt16) {
        let eventLoop = context.eventLoop
        let count = min(blockSize, remaining)
        let read: EventLoopFuture<(ByteBuffer, Part10DataSetFile)> = count == 0
            ? eventLoop.makeSucceededFuture((ByteBuffer(), file))
            : threadPool.runIfActive(eventLoop: eventLoop) {
                var source = file
                let bytes = try source.read(count)
                return (bytes, source)
            }
        read.assumeIsolated().whenComplete { [self] result in
            guard let promise = subOperations[messageID], machine.canSendData else { return }
            switch result {
            case .failure(let error):
                // A data set cannot be cut short: the only way out is an abort (PS3.7 §9.1.1).
                subOperations[messageID] = nil
                promise.fail(error)
                logger.warning("file read failed during a C-GET sub-operation, aborting", metadata: ["error": "\(error)"])
                abandonReception()
                run(machine.handle(.abortRequestPrimitive(AAbort(source: .serviceProvider, reason: .notSpecified))))
                end(reason: .aborted("file read failed: \(error)"))
            case .success(let (bytes, advanced)):
                let left = remaining - count
                lastWrite = nil
                for pData in PDataTF.fragments(of: bytes, contextID: contextID, isCommand: false,
                                               maximumPDULength: peerMaximumPDULength) {
                    var pData = pData
                    if left > 0 { pData.values[0].isLast = false }
                    run(machine.handle(.pDataRequestPrimitive(pData)))
                }
                guard left > 0 else { return }
                (lastWrite ?? eventLoop.makeSucceededVoidFuture()).assumeIsolated().whenComplete { [self] _ in
                    sendDataSet(advanced, remaining: left, contextID: contextID, blockSize: blockSize,
                                messageID: messageID)
                }
            }
        }
    }

    private func dataReceived(_ bytes: ByteBuffer, contextID: UInt8, isLast: Bool) {
        if var identifier = identifierReception {
            identifierReception = nil  // (no copy-on-write of the buffer while appending)
            var bytes = bytes
            if identifier.buffer.readableBytes + bytes.readableBytes > Self.maximumIdentifierLength {
                identifier.refusal = (.cannotUnderstand, "identifier larger than \(Self.maximumIdentifierLength) bytes")
            } else {
                identifier.buffer.writeBuffer(&bytes)
            }
            if isLast {
                identifierComplete(identifier)
            } else {
                identifierReception = identifier
            }
            return
        }
        guard let reception else {
            protocolError("data set without a C-STORE-RQ")
            return
        }
        var bytes = bytes
        reception.buffer.writeBuffer(&bytes)
        if isLast {
            finish(reception)
        } else if reception.buffer.readableBytes >= configuration.writeChunkSize {
            flush(reception)
        }
    }

    /// Hands the gathered bytes to the receiver, after the previous writes.
    private func flush(_ reception: Reception) {
        guard reception.buffer.readableBytes > 0 else { return }
        let chunk = reception.buffer
        reception.buffer = context.channel.allocator.buffer(capacity: configuration.writeChunkSize)
        let count = chunk.readableBytes
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
        if reception.bytesInFlight > configuration.maximumBytesInFlight { pause() }
    }

    /// The data set is complete: wait for the receiver to make it durable, then answer.
    /// The last bytes are written in the same thread-pool job (one hop less per instance).
    private func finish(_ reception: Reception) {
        pause()
        let eventLoop = context.eventLoop
        let receiver = reception.receiver
        let pool = threadPool
        let last = reception.buffer.readableBytes > 0 ? reception.buffer : nil
        reception.buffer = ByteBuffer()
        let finished = reception.writes.flatMap {
            pool.runIfActive(eventLoop: eventLoop) { () -> StoreOutcome in
                if let last { receiver.write(last) }
                return receiver.finish()
            }
        }
        // Anything after (an abandon on abort) waits for the receiver to be done finishing.
        reception.writes = finished.map { _ in }
        finished
            .assumeIsolated()
            .whenComplete { [self] result in
                guard self.reception === reception else { return }
                self.reception = nil
                let outcome: StoreOutcome
                switch result {
                case .success(let value): outcome = value
                case .failure(let error):
                    outcome = StoreOutcome(status: .processingFailure, errorComment: "\(error)")
                }
                let response = CStoreRSP(respondingTo: reception.request, status: outcome.status,
                                         errorComment: outcome.errorComment)
                send(.cStoreRSP(response), contextID: reception.contextID)
                resume()
                releaseIfIdle()
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

    private func send(_ message: DIMSEMessage, contextID: UInt8) {
        let encoded = message.commandSet.encoded()
        for pData in PDataTF.fragments(of: encoded, contextID: contextID, isCommand: true,
                                       maximumPDULength: peerMaximumPDULength) {
            run(machine.handle(.pDataRequestPrimitive(pData)))  // Evt9
        }
    }

    /// A-RELEASE-RP only once the last response is out (PS3.8 §7.2: no release while busy).
    private func releaseIfIdle() {
        guard releaseRequested, reception == nil, identifierReception == nil, operations.isEmpty,
              subOperations.isEmpty else { return }
        releaseRequested = false
        run(machine.handle(.releaseResponsePrimitive))  // Evt14
    }

    private func protocolError(_ message: String) {
        logger.warning("DIMSE protocol error, aborting the association", metadata: ["error": "\(message)"])
        abandonReception()
        run(machine.handle(.abortRequestPrimitive(AAbort(source: .serviceProvider, reason: .unexpectedPDUParameter))))
        end(reason: .aborted(message))
    }

    private func end(reason: AssociationEndReason) {
        guard !ended else { return }
        ended = true
        let running = operations.values
        operations = [:]
        for operation in running { operation.cancel() }
        let waiting = subOperations.values
        subOperations = [:]
        for promise in waiting {
            promise.fail(DICOMClientError(code: .aborted, message: "the association ended: \(reason)"))
        }
        if let association { provider.associationEnded(association, reason: reason) }
    }

    // MARK: Backpressure

    private func pause() {
        paused = true
    }

    private func resume() {
        guard paused else { return }
        paused = false
        while !paused, let pdu = queued.popFirst() {
            run(machine.handle(.pduReceived(pdu)))
        }
        if !paused, readPending {
            readPending = false
            context.read()
        }
    }
}

/// Holds the place of an operation answered before the provider returned its handle.
private struct NoOperation: QueryRetrieveOperation {
    func cancel() {}
}

/// A receiver that drops the data set and answers a fixed failure.
public final class RefusingStoreReceiver: StoreReceiver {
    let outcome: StoreOutcome
    public init(_ outcome: StoreOutcome) { self.outcome = outcome }
    public func write(_ bytes: ByteBuffer) {}
    public func finish() -> StoreOutcome { outcome }
    public func abandon() {}
}
