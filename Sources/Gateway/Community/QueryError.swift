/// Why an identifier is refused (status A900). `message` becomes the Error Comment (0000,0902),
/// an LO, hence at most 64 characters; `tag` the Offending Element (0000,0901).
public struct QueryError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var tag: UInt32?

    public init(_ message: String, tag: UInt32? = nil) {
        self.message = String(message.prefix(64))
        self.tag = tag
    }

    public var description: String { message }

    static func missing(_ name: String, _ tag: UInt32) -> QueryError {
        QueryError("\(name) \(QueryAttribute.display(tag)) is missing", tag: tag)
    }
}
