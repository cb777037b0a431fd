/// Why a data set could not be read. A struct with static codes, so new codes don't break clients.
public struct DataSetError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The data ended before an element, item or value was complete.
        public static let truncated = Code("truncated")
        /// A length is odd, beyond its container, or otherwise impossible.
        public static let invalidLength = Code("invalidLength")
        /// An explicit VR header holds an unknown VR.
        public static let invalidVR = Code("invalidVR")
        /// A delimiter where none may be, or a missing one.
        public static let unexpectedDelimiter = Code("unexpectedDelimiter")
        /// A value the reader must hold in memory exceeds its bound.
        public static let valueTooLarge = Code("valueTooLarge")
        /// Sequences nested deeper than the reader allows.
        public static let tooDeep = Code("tooDeep")
        /// The deflate stream of a deflated transfer syntax is corrupt.
        public static let inflateFailed = Code("inflateFailed")
        /// The underlying file could not be read.
        public static let readFailed = Code("readFailed")
        /// Part-10 preamble, "DICM" prefix or file meta information is wrong (PS3.10 §7.1).
        public static let invalidFileMetaInformation = Code("invalidFileMetaInformation")
    }

    public let code: Code
    /// Byte offset in the (decompressed) source where the problem was found.
    public let offset: Int
    public let message: String

    public init(_ code: Code, offset: Int, _ message: String) {
        self.code = code
        self.offset = offset
        self.message = message
    }

    public static func truncated(at offset: Int, _ message: String = "unexpected end of data") -> DataSetError {
        DataSetError(.truncated, offset: offset, message)
    }

    public var description: String { "\(code) at offset \(offset): \(message)" }
}
