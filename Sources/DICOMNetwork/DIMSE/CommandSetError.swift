/// A command set could not be decoded, or a message lacks a required element.
public struct CommandSetError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let name: String
        public var description: String { name }

        public static let truncated = Code(name: "truncated")
        public static let notCommandGroup = Code(name: "notCommandGroup")
        public static let invalidLength = Code(name: "invalidLength")
        public static let groupLengthMismatch = Code(name: "groupLengthMismatch")
        public static let duplicateElement = Code(name: "duplicateElement")
        public static let missingElement = Code(name: "missingElement")
        public static let wrongValueType = Code(name: "wrongValueType")
        public static let unknownCommandField = Code(name: "unknownCommandField")
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "CommandSetError.\(code): \(message)" }
}
