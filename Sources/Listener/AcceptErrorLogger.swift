import Logging
import NIOCore

/// Logs what goes wrong while accepting (a refused socket option, too many open files…),
/// which NIO would otherwise settle by closing the new connection without a word.
public final class AcceptErrorLogger: ChannelInboundHandler, Sendable {
    public typealias InboundIn = Any
    private let logger: Logger
    private let message: Logger.Message

    /// `message`: what the log line says, e.g. "cannot accept an HL7 connection".
    public init(logger: Logger, message: Logger.Message) {
        self.logger = logger
        self.message = message
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.error(message, metadata: ["error": "\(error)"])
        context.fireErrorCaught(error)
    }
}
