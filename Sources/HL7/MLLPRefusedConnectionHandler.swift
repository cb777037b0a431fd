import NIOCore

/// The only handler of a connection the application refused: closes it as soon as it is
/// active, before the first read (and before any TLS handshake could start).
final class MLLPRefusedConnectionHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    func channelActive(context: ChannelHandlerContext) {
        context.close(promise: nil)
    }
}
