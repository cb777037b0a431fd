/// The value of `$JOURNAL_STREAM`: `device:inode`, both decimal.
public struct JournalStream: Equatable, Sendable {
    public var device: UInt64
    public var inode: UInt64

    public init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }

    /// Parses `"device:inode"`; `nil` for anything else (empty, missing part, non-decimal).
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2,
            parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } }),
            let device = UInt64(parts[0]), let inode = UInt64(parts[1])
        else { return nil }
        self.init(device: device, inode: inode)
    }
}
