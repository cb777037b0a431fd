/// An accepted presentation context (PS3.8 §7.1.1.13): its ID, abstract syntax and the
/// transfer syntax the acceptor chose. Both sides of an association use it.
public struct PresentationContext: Sendable, Hashable {
    public var id: UInt8
    public var abstractSyntax: String
    public var transferSyntax: String

    public init(id: UInt8, abstractSyntax: String, transferSyntax: String) {
        self.id = id
        self.abstractSyntax = abstractSyntax
        self.transferSyntax = transferSyntax
    }
}
