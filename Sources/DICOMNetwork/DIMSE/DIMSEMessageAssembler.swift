import NIOCore

/// What the assembler produced from one PDV.
public enum DIMSEAssemblyEvent: Sendable, Hashable {
    /// A complete command set (its last fragment arrived).
    case command(contextID: UInt8, CommandSet)
    /// A fragment of the data set announced by the last command, passed on as it arrives
    /// (never buffered) so that the runtime can stream it to a file.
    case dataFragment(contextID: UInt8, ByteBuffer, isLast: Bool)
}

/// Why a PDV sequence is not a valid DIMSE message stream (PS3.7 §6.3.1, PS3.8 Annex E).
public struct DIMSEAssemblyError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let name: String
        public var description: String { name }

        /// Command fragments exceed ``DIMSEMessageAssembler/maximumCommandLength``.
        public static let commandTooLarge = Code(name: "commandTooLarge")
        /// A data PDV arrived while no command announced a data set (or the command was incomplete).
        public static let unexpectedData = Code(name: "unexpectedData")
        /// The presentation context changed in the middle of a message.
        public static let contextIDChanged = Code(name: "contextIDChanged")
        /// A new command started while the previous command's data set was still expected.
        public static let commandWhileDataSetExpected = Code(name: "commandWhileDataSetExpected")
        /// A command fragment arrived after data fragments had begun.
        public static let commandAfterData = Code(name: "commandAfterData")
        /// The complete command set could not be decoded.
        public static let invalidCommandSet = Code(name: "invalidCommandSet")
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "DIMSEAssemblyError.\(code): \(message)" }
}

/// Reassembles DIMSE messages from presentation data values, as a pure value.
///
/// Command fragments are buffered (bounded by `maximumCommandLength`) until the last one;
/// data fragments are emitted immediately. After an error the assembler is in an
/// undefined state: abort the association.
public struct DIMSEMessageAssembler: Sendable {
    /// Default bound for a command set (64 KiB; real ones are a few hundred bytes).
    public static let defaultMaximumCommandLength = 64 * 1024

    private enum State: Sendable {
        case idle
        case receivingCommand(contextID: UInt8, buffer: ByteBuffer)
        case awaitingDataSet(contextID: UInt8)
        case receivingDataSet(contextID: UInt8)
    }

    public let maximumCommandLength: Int
    private var state: State = .idle

    public init(maximumCommandLength: Int = DIMSEMessageAssembler.defaultMaximumCommandLength) {
        self.maximumCommandLength = maximumCommandLength
    }

    /// Whether a message is partly received (a command or data set in progress).
    public var isIdle: Bool {
        if case .idle = state { return true }
        return false
    }

    /// Feeds every PDV of a P-DATA-TF in order.
    public mutating func receive(_ pData: PDataTF) throws(DIMSEAssemblyError) -> [DIMSEAssemblyEvent] {
        var events: [DIMSEAssemblyEvent] = []
        for pdv in pData.values {
            events += try receive(pdv)
        }
        return events
    }

    public mutating func receive(_ pdv: PresentationDataValue) throws(DIMSEAssemblyError) -> [DIMSEAssemblyEvent] {
        if pdv.isCommand {
            return try receiveCommandFragment(pdv)
        }
        return try receiveDataFragment(pdv)
    }

    private mutating func receiveCommandFragment(_ pdv: PresentationDataValue) throws(DIMSEAssemblyError) -> [DIMSEAssemblyEvent] {
        var buffer: ByteBuffer
        switch state {
        case .idle:
            buffer = ByteBuffer()
        case .receivingCommand(let contextID, let existing):
            guard contextID == pdv.contextID else { throw Self.contextChanged(contextID, pdv.contextID) }
            buffer = existing
        case .awaitingDataSet(let contextID):
            throw DIMSEAssemblyError(
                code: .commandWhileDataSetExpected,
                message: "command PDV on context \(pdv.contextID) while the data set on context \(contextID) is expected"
            )
        case .receivingDataSet(let contextID):
            throw DIMSEAssemblyError(
                code: .commandAfterData,
                message: "command PDV on context \(pdv.contextID) during the data set on context \(contextID)"
            )
        }
        guard buffer.readableBytes + pdv.data.readableBytes <= maximumCommandLength else {
            throw DIMSEAssemblyError(
                code: .commandTooLarge,
                message: "command set exceeds \(maximumCommandLength) bytes"
            )
        }
        state = .idle  // release the old buffer reference before appending (avoids a copy)
        var fragment = pdv.data
        buffer.writeBuffer(&fragment)
        guard pdv.isLast else {
            state = .receivingCommand(contextID: pdv.contextID, buffer: buffer)
            return []
        }
        let commandSet: CommandSet
        do {
            commandSet = try CommandSet.decode(buffer)
        } catch {
            throw DIMSEAssemblyError(code: .invalidCommandSet, message: error.description)
        }
        state = commandSet.hasDataSet ? .awaitingDataSet(contextID: pdv.contextID) : .idle
        return [.command(contextID: pdv.contextID, commandSet)]
    }

    private mutating func receiveDataFragment(_ pdv: PresentationDataValue) throws(DIMSEAssemblyError) -> [DIMSEAssemblyEvent] {
        switch state {
        case .idle:
            throw DIMSEAssemblyError(
                code: .unexpectedData,
                message: "data PDV on context \(pdv.contextID) without a command announcing a data set"
            )
        case .receivingCommand(let contextID, _):
            throw DIMSEAssemblyError(
                code: .unexpectedData,
                message: "data PDV on context \(pdv.contextID) before the command on context \(contextID) was complete"
            )
        case .awaitingDataSet(let contextID), .receivingDataSet(let contextID):
            guard contextID == pdv.contextID else { throw Self.contextChanged(contextID, pdv.contextID) }
            state = pdv.isLast ? .idle : .receivingDataSet(contextID: contextID)
            return [.dataFragment(contextID: contextID, pdv.data, isLast: pdv.isLast)]
        }
    }

    private static func contextChanged(_ expected: UInt8, _ got: UInt8) -> DIMSEAssemblyError {
        DIMSEAssemblyError(code: .contextIDChanged, message: "PDV on context \(got) in the middle of a message on context \(expected)")
    }
}
