/// C-GET-RQ (PS3.7 §9.3.3.1). An identifier (data set) always follows.
public struct CGetRQ: DIMSECommand {
    public static let commandField = CommandField.cGetRQ

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
        messageID = try set.required16(.messageID, "C-GET-RQ")
        affectedSOPClassUID = try set.requiredString(.affectedSOPClassUID, "C-GET-RQ")
        priority = DIMSEPriority(rawValue: try set.required16(.priority, "C-GET-RQ"))
    }

    public var commandSet: CommandSet {
        .make(Self.commandField, hasDataSet: true, [
            (.messageID, .uint16(messageID)), (.affectedSOPClassUID, .string(affectedSOPClassUID)),
            (.priority, .uint16(priority.rawValue)),
        ])
    }
}
