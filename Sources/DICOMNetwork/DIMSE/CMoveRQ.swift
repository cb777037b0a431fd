/// C-MOVE-RQ (PS3.7 §9.3.4.1). An identifier (data set) always follows.
public struct CMoveRQ: DIMSECommand {
    public static let commandField = CommandField.cMoveRQ

    public var messageID: UInt16
    public var affectedSOPClassUID: String
    public var priority: DIMSEPriority
    public var moveDestination: String

    public init(messageID: UInt16, affectedSOPClassUID: String, priority: DIMSEPriority = .medium, moveDestination: String) {
        self.messageID = messageID
        self.affectedSOPClassUID = affectedSOPClassUID
        self.priority = priority
        self.moveDestination = moveDestination
    }

    public init(commandSet set: CommandSet) throws(CommandSetError) {
        try Self.checkField(set)
        messageID = try set.required16(.messageID, "C-MOVE-RQ")
        affectedSOPClassUID = try set.requiredString(.affectedSOPClassUID, "C-MOVE-RQ")
        priority = DIMSEPriority(rawValue: try set.required16(.priority, "C-MOVE-RQ"))
        moveDestination = try set.requiredString(.moveDestination, "C-MOVE-RQ")
    }

    public var commandSet: CommandSet {
        .make(Self.commandField, hasDataSet: true, [
            (.messageID, .uint16(messageID)), (.affectedSOPClassUID, .string(affectedSOPClassUID)),
            (.priority, .uint16(priority.rawValue)), (.moveDestination, .string(moveDestination)),
        ])
    }
}
