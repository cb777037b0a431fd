/// The HL7 v2 Minimal Lower Layer Protocol (HL7 v2.5.1 Appendix C, MLLP Release 2 block format):
///
///     +------+-------------------------+------+------+
///     | 0x0B |  HL7 message (segments) | 0x1C | 0x0D |
///     +------+-------------------------+------+------+
///      <VT>   start block               <FS>   <CR>  end block
///
/// The content is never escaped: an HL7 message cannot hold VT or FS.
public enum MLLP {
    public static let startBlock: UInt8 = 0x0B
    public static let endBlock: UInt8 = 0x1C
    public static let carriageReturn: UInt8 = 0x0D

    /// The message wrapped in its start and end blocks.
    public static func frame(_ message: [UInt8]) -> [UInt8] {
        var framed: [UInt8] = []
        framed.reserveCapacity(message.count + 3)
        framed.append(startBlock)
        framed.append(contentsOf: message)
        framed.append(endBlock)
        framed.append(carriageReturn)
        return framed
    }
}
