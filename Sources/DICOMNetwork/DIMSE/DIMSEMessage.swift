/// Any DIMSE-C message this gateway speaks (PS3.7 §9).
public enum DIMSEMessage: Sendable, Hashable {
    case cEchoRQ(CEchoRQ)
    case cEchoRSP(CEchoRSP)
    case cStoreRQ(CStoreRQ)
    case cStoreRSP(CStoreRSP)
    case cFindRQ(CFindRQ)
    case cFindRSP(CFindRSP)
    case cMoveRQ(CMoveRQ)
    case cMoveRSP(CMoveRSP)
    case cGetRQ(CGetRQ)
    case cGetRSP(CGetRSP)
    case cCancelRQ(CCancelRQ)

    /// Types a received command set. Unknown command fields (N-services, …) throw
    /// `.unknownCommandField`: answer them with ``DIMSEStatus/unrecognizedOperation``.
    public init(commandSet set: CommandSet) throws(CommandSetError) {
        guard let field = set.commandField else {
            throw CommandSetError(code: .missingElement, message: "command set without \(CommandElement.commandField)")
        }
        switch CommandField(rawValue: field) {
        case .cEchoRQ: self = .cEchoRQ(try CEchoRQ(commandSet: set))
        case .cEchoRSP: self = .cEchoRSP(try CEchoRSP(commandSet: set))
        case .cStoreRQ: self = .cStoreRQ(try CStoreRQ(commandSet: set))
        case .cStoreRSP: self = .cStoreRSP(try CStoreRSP(commandSet: set))
        case .cFindRQ: self = .cFindRQ(try CFindRQ(commandSet: set))
        case .cFindRSP: self = .cFindRSP(try CFindRSP(commandSet: set))
        case .cMoveRQ: self = .cMoveRQ(try CMoveRQ(commandSet: set))
        case .cMoveRSP: self = .cMoveRSP(try CMoveRSP(commandSet: set))
        case .cGetRQ: self = .cGetRQ(try CGetRQ(commandSet: set))
        case .cGetRSP: self = .cGetRSP(try CGetRSP(commandSet: set))
        case .cCancelRQ: self = .cCancelRQ(try CCancelRQ(commandSet: set))
        default:
            throw CommandSetError(code: .unknownCommandField, message: "unsupported CommandField 0x\(String(field, radix: 16))")
        }
    }

    /// Same as ``init(commandSet:)``.
    public init(_ commandSet: CommandSet) throws(CommandSetError) {
        try self.init(commandSet: commandSet)
    }

    public var commandSet: CommandSet {
        switch self {
        case .cEchoRQ(let m): m.commandSet
        case .cEchoRSP(let m): m.commandSet
        case .cStoreRQ(let m): m.commandSet
        case .cStoreRSP(let m): m.commandSet
        case .cFindRQ(let m): m.commandSet
        case .cFindRSP(let m): m.commandSet
        case .cMoveRQ(let m): m.commandSet
        case .cMoveRSP(let m): m.commandSet
        case .cGetRQ(let m): m.commandSet
        case .cGetRSP(let m): m.commandSet
        case .cCancelRQ(let m): m.commandSet
        }
    }

    /// Whether a data set follows the command.
    public var hasDataSet: Bool { commandSet.hasDataSet }
}
