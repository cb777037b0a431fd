import Logging
import NIOCore
import NIOSSL

/// The NIO side of one MLLP connection: bytes and replies go to the
/// ``MLLPConnectionStateMachine``, whose actions this handler runs. It holds back reads the
/// machine refuses, calls the application and frames its replies; every decision is the machine's.
final class MLLPHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = Never
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Sent by the server when it shuts down.
    struct Drain: Sendable {}

    private var machine: MLLPConnectionStateMachine
    private let application: any MLLPMessageHandler
    private let connection: UInt64
    private let logger: Logger
    private var context: ChannelHandlerContext?
    private var peer: SocketAddress?

    /// Actions produced while others run (a reply that completes at once, a write that
    /// completes inside the flush) wait here, so a burst of frames never nests calls deeply.
    private var pendingActions = CircularBuffer<MLLPConnectionStateMachine.Action>()
    private var isRunning = false

    init(configuration: MLLPServerConfiguration, application: any MLLPMessageHandler, connection: UInt64,
         logger: Logger) {
        machine = MLLPConnectionStateMachine(maximumMessageSize: configuration.maximumMessageSize,
                                             maximumQueuedFrames: configuration.maximumQueuedFrames)
        self.application = application
        self.connection = connection
        self.logger = logger
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        peer = context.channel.remoteAddress
        if context.channel.isActive { run(machine.connected()) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        peer = context.channel.remoteAddress
        run(machine.connected())
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        run(machine.bytesReceived(unwrapInboundIn(data)))
    }

    func read(context: ChannelHandlerContext) {
        if machine.readRequested() { context.read() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is Drain {
            run(machine.drainRequested())
        } else if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            run(machine.idleTimeoutFired())
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A peer that drops TCP without TLS close_notify: the close that follows says enough.
        if let error = error as? NIOSSLError, case .uncleanShutdown = error { return }
        run(machine.errorCaught("\(error)"))
    }

    func channelInactive(context: ChannelHandlerContext) {
        run(machine.channelClosed())
        context.fireChannelInactive()
    }

    // MARK: Actions

    private func run(_ actions: [MLLPConnectionStateMachine.Action]) {
        pendingActions.append(contentsOf: actions)
        guard !isRunning else { return }
        isRunning = true
        defer { isRunning = false }
        while let action = pendingActions.popFirst() {
            perform(action)
        }
    }

    private func perform(_ action: MLLPConnectionStateMachine.Action) {
        guard let context else { return }
        switch action {
        case .handOver(let inbound):
            application.handle(inbound, peer: peer, connection: connection, on: context.eventLoop)
                .hop(to: context.eventLoop)
                .assumeIsolated()
                .whenComplete { [self] result in
                    switch result {
                    case .success(let reply):
                        run(machine.replied(reply))
                    case .failure(let error):
                        logger.warning("the application failed on a frame; closing without answer",
                                       metadata: ["error": "\(error)"])
                        run(machine.replyFailed())
                    }
                }
        case .write(let reply):
            var buffer = context.channel.allocator.buffer(capacity: reply.count + 3)
            buffer.writeInteger(MLLP.startBlock)
            buffer.writeBytes(reply)
            buffer.writeInteger(MLLP.endBlock)
            buffer.writeInteger(MLLP.carriageReturn)
            context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { [self] result in
                switch result {
                case .success:
                    run(machine.replyWritten())
                case .failure(let error):
                    logger.debug("cannot write the acknowledgment", metadata: ["error": "\(error)"])
                    run(machine.replyFailed())
                }
            }
        case .read:
            context.read()
        case .close:
            context.close(promise: nil)
        case .report(let event):
            application.connectionEvent(event, peer: peer, connection: connection)
        case .logDiscardedFrame(let size):
            logger.warning("frame interrupted by a new start block, discarded", metadata: ["bytes": "\(size)"])
        }
    }
}
