/// What the listener saw or decided on its own about a connection, for logs and counters.
public enum MLLPConnectionEvent: Sendable, Equatable {
    /// An accepted connection (refused ones are neither opened nor closed).
    case opened
    /// The peer sent bytes outside any frame that are not whitespace (shown escaped): closed.
    case notMLLP(String)
    /// Closed (by the peer or the idle timeout) in the middle of a frame, never acknowledged.
    case unfinishedFrame(bytes: Int)
    /// No byte for ``MLLPServerConfiguration/idleTimeout`` while no frame was being handled: closed.
    case idleTimeout
    /// The connection is closed; the last event of an opened connection.
    case closed
    /// A transport error, e.g. a TLS handshake failure or a reset: closed.
    case error(String)
}
