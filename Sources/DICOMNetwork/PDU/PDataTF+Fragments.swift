import NIOCore

extension PDataTF {
    /// Fragment size used when the peer advertised a Maximum Length of 0 ("unlimited",
    /// PS3.8 §D.1): 16 KiB, DCMTK's default, which every peer handles.
    public static let defaultMaximumPDULengthForUnlimited: UInt32 = 16 * 1024

    /// Smallest usable maximum: a PDV header (6 bytes) plus 2 data bytes. Smaller
    /// advertised values are raised to this so that fragmenting always makes progress.
    public static let minimumUsablePDULength: UInt32 = 8

    /// The largest data fragment one P-DATA-TF may carry for a peer that advertised
    /// `peerMaximumPDULength` (its PDV item header takes 6 bytes).
    public static func maximumDataFragmentLength(peerMaximumPDULength: UInt32) -> Int {
        let effective = peerMaximumPDULength == 0 ? defaultMaximumPDULengthForUnlimited : peerMaximumPDULength
        return Int(max(effective, minimumUsablePDULength)) - 6
    }

    /// Splits one encoded command or data set into P-DATA-TF PDUs, one PDV per PDU.
    ///
    /// Each PDU's variable field (PDV item length field + context ID + header + data) is
    /// ≤ `maximumPDULength`, the Maximum Length the *peer* advertised. The last PDV has
    /// `isLast` set. An empty message yields one empty, last PDV. Slices share storage
    /// with `message` (no copy).
    public static func fragments(
        of message: ByteBuffer, contextID: UInt8, isCommand: Bool, maximumPDULength: UInt32
    ) -> [PDataTF] {
        let chunk = maximumDataFragmentLength(peerMaximumPDULength: maximumPDULength)
        var remaining = message
        var result: [PDataTF] = []
        result.reserveCapacity(remaining.readableBytes / chunk + 1)
        repeat {
            let size = min(chunk, remaining.readableBytes)
            let data = remaining.readSlice(length: size) ?? ByteBuffer()
            let pdv = PresentationDataValue(
                contextID: contextID, isCommand: isCommand, isLast: remaining.readableBytes == 0, data: data
            )
            result.append(PDataTF(values: [pdv]))
        } while remaining.readableBytes > 0
        return result
    }
}
