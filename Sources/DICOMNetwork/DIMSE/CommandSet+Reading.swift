extension CommandSet {
    /// A required US element, or a clear error naming the element and the message.
    func required16(_ element: CommandElement, _ message: String) throws(CommandSetError) -> UInt16 {
        guard let value = elements[element] else {
            throw CommandSetError(code: .missingElement, message: "\(message) without required \(element)")
        }
        guard case .uint16(let v) = value else {
            throw CommandSetError(code: .wrongValueType, message: "\(message): \(element) is not US")
        }
        return v
    }

    /// A required string element (UI/AE/LO/SH).
    func requiredString(_ element: CommandElement, _ message: String) throws(CommandSetError) -> String {
        guard let value = elements[element] else {
            throw CommandSetError(code: .missingElement, message: "\(message) without required \(element)")
        }
        guard case .string(let v) = value else {
            throw CommandSetError(code: .wrongValueType, message: "\(message): \(element) is not a string")
        }
        return v
    }

    /// A command set with CommandField, CommandDataSetType and the given elements set.
    static func make(_ field: CommandField, hasDataSet: Bool, _ values: [(CommandElement, CommandValue?)]) -> CommandSet {
        var set = CommandSet()
        set[.commandField] = .uint16(field.rawValue)
        set[.commandDataSetType] = .uint16(hasDataSet ? CommandSet.dataSetPresent : CommandSet.noDataSet)
        for (element, value) in values {
            if let value { set[element] = value }
        }
        return set
    }
}

extension Optional where Wrapped == String {
    var commandValue: CommandValue? { map(CommandValue.string) }
}

extension Optional where Wrapped == UInt16 {
    var commandValue: CommandValue? { map(CommandValue.uint16) }
}
