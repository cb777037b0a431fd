/// C-STORE-RQ (PS3.7 §9.3.1.1). A data set (the SOP instance) always follows.
public struct CStoreRQ: DIMSECommand {
    public static let commandField = CommandField.cStoreRQ

    public var messageID: UInt16
    public var affectedSOPClassUID: String
    public var affectedSOPInstanceUID: String
    public var priority: DIMSEPriority
    /// Set when the store is a C-MOVE sub-operation.
    public var moveOriginatorAETitle: String?
    public var moveOriginatorMessageID: UInt16?

    public init(
        messageID: UInt16, affectedSOPClassUID: String, affectedSOPInstanceUID: String,
        priority: DIMSEPriority = .medium, moveOriginatorAETitle: String? = nil, moveOriginatorMessageID: UInt16? = nil
    ) {
        self.messageID = messageID
        self.affectedSOPClassUID = affectedSOPClassUID
        self.affectedSOPInstanceUID = affectedSOPInstanceUID
        self.priority = priority
        self.moveOriginatorAETitle = moveOriginatorAETitle
        self.moveOriginatorMessageID = moveOriginatorMessageID
    }

    public init(commandSet set: CommandSet) throws(CommandSetError) {
        try Self.checkField(set)
        messageID = try set.required16(.messageID, "C-STORE-RQ")
        affectedSOPClassUID = try set.requiredString(.affectedSOPClassUID, "C-STORE-RQ")
        affectedSOPInstanceUID = try set.requiredString(.affectedSOPInstanceUID, "C-STORE-RQ")
        priority = DIMSEPriority(rawValue: try set.required16(.priority, "C-STORE-RQ"))
        moveOriginatorAETitle = set.string(.moveOriginatorApplicationEntityTitle)
        moveOriginatorMessageID = set.uint16(.moveOriginatorMessageID)
    }

    public var commandSet: CommandSet {
        .make(Self.commandField, hasDataSet: true, [
            (.messageID, .uint16(messageID)), (.affectedSOPClassUID, .string(affectedSOPClassUID)),
            (.affectedSOPInstanceUID, .string(affectedSOPInstanceUID)), (.priority, .uint16(priority.rawValue)),
            (.moveOriginatorApplicationEntityTitle, moveOriginatorAETitle.commandValue),
            (.moveOriginatorMessageID, moveOriginatorMessageID.commandValue),
        ])
    }
}
