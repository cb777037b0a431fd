import NIOCore

/// The application behind an ``MLLPServer``: it decides, the listener only frames.
public protocol MLLPMessageHandler: Sendable {
    /// Called once per accepted connection before anything is read (and before a TLS
    /// handshake): false closes it at once, e.g. for an address not on the allow-list.
    func accepts(peer: SocketAddress?) -> Bool

    /// One frame. Called in order per connection, and the next frame of that connection is
    /// handed over only after this future's reply was written: in original mode a sender
    /// waits for each ACK, and a pipelining sender still gets its ACKs in order. May complete
    /// on any event loop or thread; a failed future closes the connection without answer.
    func handle(_ inbound: MLLPInbound, peer: SocketAddress?, connection: UInt64,
                on eventLoop: any EventLoop) -> EventLoopFuture<MLLPReply>

    /// Something the listener decided itself (not MLLP, unfinished frame, idle timeout, TLS
    /// failure) and the connection's opening and closing. For logs and counters.
    func connectionEvent(_ event: MLLPConnectionEvent, peer: SocketAddress?, connection: UInt64)
}
