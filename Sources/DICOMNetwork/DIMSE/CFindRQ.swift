/// C-FIND-RQ (PS3.7 §9.3.2.1). An identifier (data set) always follows.
public struct CFindRQ: DIMSECommand {
    public static let commandField = CommandField.cFindRQ

    public var messageID: UInt16
    public var affectedSOPClassUID: String
    public var priority: DIMSEPriority

    public init(messageID: UInt16, affectedSOPClassUID: String, priority: DIMSEPriority = .medium) {
        self.messageID = messageID
        self.affectedSOPClassUID = affectedSOPClassUID
        self.priority = priority
    }

    public init(commandSet set: CommandSet) throws(CommandSetError) {
        try Self.checkField(set)
        messageID = try set.required16(.messageID, "C-FIND-RQ")
        affectedSOPClassUID = try set.requiredString(.affectedSOPClassUID, "C-FIND-RQ")
        priority = DIMSEPriority(rawValue: try set.required16(.priority, "C-FIND-RQ"))
    }

    public var commandSet: CommandSet {
        .make(Self.commandField, hasDataSet: true, [
            (.messageID, .uint16(messageID)), (.affectedSOPClassUID, .string(affectedSOPClassUID)),
            (.priority, .uint16(priority.rawValue)),
        ])
    }
}
