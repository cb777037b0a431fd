/// C-CANCEL-RQ (PS3.7 §9.3.2.3, §9.3.3.3, §9.3.4.3): cancels a C-FIND, C-GET or C-MOVE.
public struct CCancelRQ: DIMSECommand {
    public static let commandField = CommandField.cCancelRQ

    public var messageIDBeingRespondedTo: UInt16

    public init(messageIDBeingRespondedTo: UInt16) {
        self.messageIDBeingRespondedTo = messageIDBeingRespondedTo
    }

    public init(commandSet set: CommandSet) throws(CommandSetError) {
        try Self.checkField(set)
        messageIDBeingRespondedTo = try set.required16(.messageIDBeingRespondedTo, "C-CANCEL-RQ")
    }

    public var commandSet: CommandSet {
        .make(Self.commandField, hasDataSet: false, [(.messageIDBeingRespondedTo, .uint16(messageIDBeingRespondedTo))])
    }
}
