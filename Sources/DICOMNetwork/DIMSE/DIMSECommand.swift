/// A typed DIMSE-C message, convertible to and from its ``CommandSet``.
public protocol DIMSECommand: Sendable, Hashable {
    static var commandField: CommandField { get }
    /// Reads the message from a command set; throws ``CommandSetError`` (code
    /// `.missingElement`) naming the first required element that is absent.
    init(commandSet: CommandSet) throws(CommandSetError)
    /// The command set to send (CommandGroupLength is added on encoding).
    var commandSet: CommandSet { get }
}

extension DIMSECommand {
    static func checkField(_ set: CommandSet) throws(CommandSetError) {
        let name = String(describing: Self.self)
        let field = try set.required16(.commandField, name)
        guard field == commandField.rawValue else {
            throw CommandSetError(
                code: .unknownCommandField,
                message: "\(name) expected CommandField 0x\(String(commandField.rawValue, radix: 16)), got 0x\(String(field, radix: 16))"
            )
        }
    }
}

/// Fields shared by every DIMSE-C response.
func responseStatus(_ set: CommandSet, _ name: String) throws(CommandSetError) -> DIMSEStatus {
    DIMSEStatus(try set.required16(.status, name))
}
