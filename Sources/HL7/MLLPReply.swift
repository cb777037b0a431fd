/// The application's answer to one ``MLLPInbound`` frame.
public enum MLLPReply: Sendable {
    /// Send these bytes (an ACK, unframed: the handler frames it) and go on reading.
    case acknowledge([UInt8])
    /// Close the connection without answering.
    case close
}
