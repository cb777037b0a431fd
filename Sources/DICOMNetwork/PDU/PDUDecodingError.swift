/// Why a PDU could not be decoded, and which A-ABORT reason to send back (PS3.8 §9.3.8).
///
/// A struct with static codes so new codes never break clients.
public struct PDUDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let name: String
        public var description: String { name }

        /// The PDU-type byte is not 0x01…0x07.
        public static let unknownPDUType = Code(name: "unknownPDUType")
        /// The PDU-length exceeds the maximum this decoder accepts.
        public static let pduTooLarge = Code(name: "pduTooLarge")
        /// The PDU ended before a field was complete.
        public static let truncated = Code(name: "truncated")
        /// An item or sub-item declares a length that does not fit in its container.
        public static let invalidItemLength = Code(name: "invalidItemLength")
        /// A PDV item length is < 2 or overruns the P-DATA-TF PDU.
        public static let invalidPDVLength = Code(name: "invalidPDVLength")
        /// Bytes remain after the last field of a fixed-layout PDU or item.
        public static let trailingBytes = Code(name: "trailingBytes")
        /// A mandatory item is missing (application context, abstract syntax, …).
        public static let missingItem = Code(name: "missingItem")
        /// A field holds a value the standard does not allow.
        public static let invalidValue = Code(name: "invalidValue")
    }

    public var code: Code
    public var message: String
    /// The reason to put in the A-ABORT PDU sent in response (Evt19 → AA-8 / AA-1 / AA-7).
    public var abortReason: AAbort.Reason

    public init(code: Code, message: String, abortReason: AAbort.Reason) {
        self.code = code
        self.message = message
        self.abortReason = abortReason
    }

    public var description: String { "PDUDecodingError.\(code): \(message)" }

    static func unknownPDUType(_ type: UInt8) -> Self {
        .init(code: .unknownPDUType, message: "unknown PDU type 0x\(String(type, radix: 16))", abortReason: .unrecognizedPDU)
    }
    static func pduTooLarge(_ message: String) -> Self {
        .init(code: .pduTooLarge, message: message, abortReason: .invalidPDUParameterValue)
    }
    static func truncated(_ what: String) -> Self {
        .init(code: .truncated, message: "truncated \(what)", abortReason: .invalidPDUParameterValue)
    }
    static func invalidItemLength(_ message: String) -> Self {
        .init(code: .invalidItemLength, message: message, abortReason: .invalidPDUParameterValue)
    }
    static func invalidPDVLength(_ message: String) -> Self {
        .init(code: .invalidPDVLength, message: message, abortReason: .invalidPDUParameterValue)
    }
    static func trailingBytes(_ message: String) -> Self {
        .init(code: .trailingBytes, message: message, abortReason: .invalidPDUParameterValue)
    }
    static func missingItem(_ message: String) -> Self {
        .init(code: .missingItem, message: message, abortReason: .unexpectedPDUParameter)
    }
    static func invalidValue(_ message: String) -> Self {
        .init(code: .invalidValue, message: message, abortReason: .invalidPDUParameterValue)
    }
}
