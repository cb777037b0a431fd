/// Presentation Context item of an A-ASSOCIATE-RQ, item type 0x20 (PS3.8 §9.3.2.2).
///
/// ```
///  0      1      2         4      5      6      7      8
/// +------+------+---------+------+------+------+------+--------------------------------+
/// | 0x20 | rsvd | length  |  ID  | rsvd | rsvd | rsvd | 0x30 abstract syntax (1)       |
/// |      |      | UInt16  | odd  |      |      |      | 0x40 transfer syntax (1 or more)|
/// +------+------+---------+------+------+------+------+--------------------------------+
/// ```
/// Each sub-item: type, reserved, UInt16 length, UID (not padded).
public struct PresentationContextProposal: Sendable, Hashable {
    /// Odd integer 1…255.
    public var id: UInt8
    public var abstractSyntax: String
    public var transferSyntaxes: [String]

    public init(id: UInt8, abstractSyntax: String, transferSyntaxes: [String]) {
        self.id = id
        self.abstractSyntax = abstractSyntax
        self.transferSyntaxes = transferSyntaxes
    }
}
