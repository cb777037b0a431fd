/// C-FIND-RSP (PS3.7 §9.3.2.2). Pending responses carry an identifier (data set).
public struct CFindRSP: DIMSECommand {
    public static let commandField = CommandField.cFindRSP

    public var messageIDBeingRespondedTo: UInt16
    public var affectedSOPClassUID: String?
    public var status: DIMSEStatus
    /// Whether an identifier data set follows (pending responses).
    public var hasIdentifier: Bool
    public var offendingElements: [UInt32]?
    public var errorComment: String?

    public init(
        messageIDBeingRespondedTo: UInt16, affectedSOPClassUID: String?, status: DIMSEStatus,
        hasIdentifier: Bool, offendingElements: [UInt32]? = nil, errorComment: String? = nil
    ) {
        self.messageIDBeingRespondedTo = messageIDBeingRespondedTo
        self.affectedSOPClassUID = affectedSOPClassUID
        self.status = status
        self.hasIdentifier = hasIdentifier
        self.offendingElements = offendingElements
        self.errorComment = errorComment
    }

    public init(commandSet set: CommandSet) throws(CommandSetError) {
        try Self.checkField(set)
        messageIDBeingRespondedTo = try set.required16(.messageIDBeingRespondedTo, "C-FIND-RSP")
        status = try responseStatus(set, "C-FIND-RSP")
        affectedSOPClassUID = set.string(.affectedSOPClassUID)
        hasIdentifier = set.hasDataSet
        offendingElements = set.tags(.offendingElement)
        errorComment = set.string(.errorComment)
    }

    public var commandSet: CommandSet {
        .make(Self.commandField, hasDataSet: hasIdentifier, [
            (.messageIDBeingRespondedTo, .uint16(messageIDBeingRespondedTo)),
            (.affectedSOPClassUID, affectedSOPClassUID.commandValue), (.status, .uint16(status.rawValue)),
            (.offendingElement, offendingElements.map(CommandValue.tags)), (.errorComment, errorComment.commandValue),
        ])
    }
}
