import NIOCore

/// Serialises PDUs for the channel pipeline; each PDU becomes one buffer.
public struct PDUEncoder: MessageToByteEncoder, Sendable {
    public typealias OutboundIn = PDU

    public init() {}

    public func encode(data: PDU, out: inout ByteBuffer) throws {
        data.write(into: &out)
    }
}
