import Foundation
import Logging
import NIOCore
import NIOConcurrencyHelpers
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// The status socket: a Unix stream socket (mode 0660) answering one JSON line per request line.
/// As a `Service`, it serves until a graceful stop; a socket that cannot be bound is warned
/// about and the gateway goes on (storage matters more than the status socket).
///
/// Answers are read, worked out and written on threads of its own: on the shared event loops
/// and pool they waited behind the receptions of every busy association (status took hundreds
/// of ms under load).
public final class StatusServer: Service, Sendable {
    private let path: String
    private let responder: StatusResponder
    private let threadPool = NIOThreadPool(numberOfThreads: 2)
    private let logger: Logger
    private let channel: NIOLockedValueBox<(any Channel)?> = NIOLockedValueBox(nil)

    public init(path: String, responder: StatusResponder, logger: Logger) {
        self.path = path
        self.responder = responder
        self.logger = logger
    }

    public func run() async throws {
        threadPool.start()
        let eventLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            try await start(group: eventLoop)
        } catch {
            logger.warning("status socket unavailable", metadata: ["path": "\(path)", "error": "\(error)"])
        }
        try? await gracefulShutdown()
        await stop()
        try? await threadPool.shutdownGracefully()
        try? await eventLoop.shutdownGracefully()
    }

    func start(group: any EventLoopGroup) async throws {
        let responder = self.responder
        let threadPool = self.threadPool
        let bound = try await ServerBootstrap(group: group)
            // A client may send its requests and shut its side: answer them all before closing.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(LineDecoder(maximumLength: StatusRequest.maximumLineLength)),
                        StatusConnectionHandler(responder: responder, threadPool: threadPool),
                    ])
                }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true)
            .get()
        // The group (passerelle) may ask; others may not (the socket can pause uploads).
        chmod(path, 0o660)
        channel.withLockedValue { $0 = bound }
    }

    func stop() async {
        let bound = channel.withLockedValue { $0 }
        try? await bound?.close()
        unlink(path)
    }
}

/// Splits input into lines; a line longer than `maximumLength` is an error (no unbounded buffering).
struct LineDecoder: NIOSingleStepByteToMessageDecoder {
    typealias InboundOut = String
    let maximumLength: Int

    struct LineTooLong: Error {}

    mutating func decode(buffer: inout ByteBuffer) throws -> String? {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > maximumLength { throw LineTooLong() }
            return nil
        }
        let length = newline - buffer.readerIndex
        guard length <= maximumLength else { throw LineTooLong() }
        let line = buffer.readString(length: length) ?? ""
        buffer.moveReaderIndex(forwardBy: 1)
        return line.hasSuffix("\r") ? String(line.dropLast()) : line
    }

    mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> String? {
        try decode(buffer: &buffer)
    }
}

/// Answers each line in order, off the event loop (the answers read the database).
final class StatusConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = String
    typealias OutboundOut = ByteBuffer

    private let responder: StatusResponder
    private let threadPool: NIOThreadPool
    private var previous: EventLoopFuture<Void>?

    init(responder: StatusResponder, threadPool: NIOThreadPool) {
        self.responder = responder
        self.threadPool = threadPool
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { return }
        let responder = self.responder
        let pool = threadPool
        let eventLoop = context.eventLoop
        let start = previous ?? eventLoop.makeSucceededVoidFuture()
        let answered = start.flatMap {
            pool.runIfActive(eventLoop: eventLoop) { responder.respond(to: line) }
        }
        previous = answered.assumeIsolated().map { [context] response in
            context.writeAndFlush(NIOAny(ByteBuffer(string: response + "\n")), promise: nil)
        }.nonisolated()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case ChannelEvent.inputClosed = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        let pending = previous ?? context.eventLoop.makeSucceededVoidFuture()
        pending.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let message = error is LineDecoder.LineTooLong
            ? StatusError(code: "bad_request", message: "request line longer than \(StatusRequest.maximumLineLength) bytes")
            : StatusError(code: "bad_request", message: "\(error)")
        let response = (try? StatusResponder.encode(ok: false, error: message)) ?? #"{"ok":false}"#
        context.writeAndFlush(NIOAny(ByteBuffer(string: response + "\n"))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
