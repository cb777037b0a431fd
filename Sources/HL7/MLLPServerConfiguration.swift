import NIOCore
import NIOSSL

/// Where and how an ``MLLPServer`` listens.
public struct MLLPServerConfiguration: Sendable {
    public var host: String
    /// 0 asks the system for a free port (``MLLPServer/start()`` returns it).
    public var port: Int
    /// The largest frame content handed over whole; a longer one arrives as
    /// ``MLLPInbound/oversized(head:size:)``, its bytes past the limit dropped.
    public var maximumMessageSize: Int
    /// A connection with no byte for this long is closed (a frame without end block ends
    /// here); not while its frame is with the application.
    public var idleTimeout: TimeAmount
    /// TLS on the listener when set (NIOSSLServerHandler first in the pipeline).
    public var tls: NIOSSLContext?
    /// Frames decoded ahead while one is with the application; past this, reading pauses.
    public var maximumQueuedFrames: Int

    public init(host: String, port: Int, maximumMessageSize: Int, idleTimeout: TimeAmount,
                tls: NIOSSLContext? = nil, maximumQueuedFrames: Int = 4) {
        self.host = host
        self.port = port
        self.maximumMessageSize = maximumMessageSize
        self.idleTimeout = idleTimeout
        self.tls = tls
        self.maximumQueuedFrames = maximumQueuedFrames
    }
}
