/// Presentation Context item of an A-ASSOCIATE-AC, item type 0x21 (PS3.8 §9.3.3.2).
///
/// ```
///  0      1      2         4      5      6      7      8
/// +------+------+---------+------+------+------+------+---------------------------+
/// | 0x21 | rsvd | length  |  ID  | rsvd |result| rsvd | 0x40 transfer syntax (1)  |
/// +------+------+---------+------+------+------+------+---------------------------+
/// ```
/// The transfer syntax is not significant when the result is not acceptance.
public struct PresentationContextResult: Sendable, Hashable {
    public enum Result: UInt8, Sendable, Hashable, CaseIterable {
        case acceptance = 0
        case userRejection = 1
        case noReason = 2
        case abstractSyntaxNotSupported = 3
        case transferSyntaxesNotSupported = 4
    }

    public var id: UInt8
    public var result: Result
    /// The accepted transfer syntax; empty if the peer omitted the sub-item of a rejected context.
    public var transferSyntax: String

    public init(id: UInt8, result: Result, transferSyntax: String) {
        self.id = id
        self.result = result
        self.transferSyntax = transferSyntax
    }
}
