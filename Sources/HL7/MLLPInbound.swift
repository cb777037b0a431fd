/// A frame the listener hands to the application, which decides what to answer.
public enum MLLPInbound: Sendable, Equatable {
    /// A complete frame's content: one HL7 message, not yet parsed.
    case message([UInt8])
    /// A frame over the maximum size: its first bytes (enough for MSH, to build an AR) and
    /// its full size. The rest was dropped as it arrived.
    case oversized(head: [UInt8], size: Int)
}
