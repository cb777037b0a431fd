/// The value of one command element.
public enum CommandValue: Sendable, Hashable {
    /// UL
    case uint32(UInt32)
    /// US
    case uint16(UInt16)
    /// UI, AE, LO, SH — padding removed.
    case string(String)
    /// AT — each tag as (group << 16 | element).
    case tags([UInt32])
    /// An element outside the command dictionary, kept as its raw value bytes.
    case bytes([UInt8])
}
