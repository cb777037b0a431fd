/// The body shared by C-MOVE-RSP and C-GET-RSP (PS3.7 §9.3.3.2, §9.3.4.2).
public struct RetrieveResponseFields: Sendable, Hashable {
    public var messageIDBeingRespondedTo: UInt16
    public var affectedSOPClassUID: String?
    public var status: DIMSEStatus
    public var numberOfRemainingSuboperations: UInt16?
    public var numberOfCompletedSuboperations: UInt16?
    public var numberOfFailedSuboperations: UInt16?
    public var numberOfWarningSuboperations: UInt16?
    /// Whether an identifier follows (the Failed SOP Instance UID List of a final response).
    public var hasIdentifier: Bool
    public var offendingElements: [UInt32]?
    public var errorComment: String?

    public init(
        messageIDBeingRespondedTo: UInt16, affectedSOPClassUID: String?, status: DIMSEStatus,
        remaining: UInt16? = nil, completed: UInt16? = nil, failed: UInt16? = nil, warning: UInt16? = nil,
        hasIdentifier: Bool = false, offendingElements: [UInt32]? = nil, errorComment: String? = nil
    ) {
        self.messageIDBeingRespondedTo = messageIDBeingRespondedTo
        self.affectedSOPClassUID = affectedSOPClassUID
        self.status = status
        self.numberOfRemainingSuboperations = remaining
        self.numberOfCompletedSuboperations = completed
        self.numberOfFailedSuboperations = failed
        self.numberOfWarningSuboperations = warning
        self.hasIdentifier = hasIdentifier
        self.offendingElements = offendingElements
        self.errorComment = errorComment
    }

    init(_ set: CommandSet, _ name: String) throws(CommandSetError) {
        messageIDBeingRespondedTo = try set.required16(.messageIDBeingRespondedTo, name)
        status = try responseStatus(set, name)
        affectedSOPClassUID = set.string(.affectedSOPClassUID)
        numberOfRemainingSuboperations = set.uint16(.numberOfRemainingSuboperations)
        numberOfCompletedSuboperations = set.uint16(.numberOfCompletedSuboperations)
        numberOfFailedSuboperations = set.uint16(.numberOfFailedSuboperations)
        numberOfWarningSuboperations = set.uint16(.numberOfWarningSuboperations)
        hasIdentifier = set.hasDataSet
        offendingElements = set.tags(.offendingElement)
        errorComment = set.string(.errorComment)
    }

    func commandSet(_ field: CommandField) -> CommandSet {
        .make(field, hasDataSet: hasIdentifier, [
            (.messageIDBeingRespondedTo, .uint16(messageIDBeingRespondedTo)),
            (.affectedSOPClassUID, affectedSOPClassUID.commandValue), (.status, .uint16(status.rawValue)),
            (.numberOfRemainingSuboperations, numberOfRemainingSuboperations.commandValue),
            (.numberOfCompletedSuboperations, numberOfCompletedSuboperations.commandValue),
            (.numberOfFailedSuboperations, numberOfFailedSuboperations.commandValue),
            (.numberOfWarningSuboperations, numberOfWarningSuboperations.commandValue),
            (.offendingElement, offendingElements.map(CommandValue.tags)), (.errorComment, errorComment.commandValue),
        ])
    }
}

/// C-MOVE-RSP (PS3.7 §9.3.4.2).
public struct CMoveRSP: DIMSECommand {
    public static let commandField = CommandField.cMoveRSP
    public var fields: RetrieveResponseFields

    public init(_ fields: RetrieveResponseFields) { self.fields = fields }

    public init(commandSet set: CommandSet) throws(CommandSetError) {
        try Self.checkField(set)
        fields = try RetrieveResponseFields(set, "C-MOVE-RSP")
    }

    public var commandSet: CommandSet { fields.commandSet(Self.commandField) }
}

/// C-GET-RSP (PS3.7 §9.3.3.2).
public struct CGetRSP: DIMSECommand {
    public static let commandField = CommandField.cGetRSP
    public var fields: RetrieveResponseFields

    public init(_ fields: RetrieveResponseFields) { self.fields = fields }

    public init(commandSet set: CommandSet) throws(CommandSetError) {
        try Self.checkField(set)
        fields = try RetrieveResponseFields(set, "C-GET-RSP")
    }

    public var commandSet: CommandSet { fields.commandSet(Self.commandField) }
}
