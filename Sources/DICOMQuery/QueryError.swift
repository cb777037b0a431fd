import DICOMCore

/// Why an identifier is refused (status A900). `message` becomes the Error Comment (0000,0902),
/// an LO, hence at most 64 characters; `tag` the Offending Element (0000,0901).
public struct QueryError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var tag: Tag?

    public init(_ message: String, tag: Tag? = nil) {
        self.message = String(message.prefix(64))
        self.tag = tag
    }

    public var description: String { message }

    /// "Study Instance UID (0020,000D) is missing": the attribute's PS3.6 name and its tag.
    static func missing(_ tag: Tag) -> QueryError {
        QueryError("\(name(of: tag)) \(tag) is missing", tag: tag)
    }

    /// The attribute's name in PS3.6 ("Patient ID"), for messages.
    static func name(of tag: Tag) -> String {
        DataDictionary.entry(for: tag)?.name ?? "Attribute"
    }
}
