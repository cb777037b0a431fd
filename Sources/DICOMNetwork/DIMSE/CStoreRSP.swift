/// C-STORE-RSP (PS3.7 §9.3.1.2).
public struct CStoreRSP: DIMSECommand {
    public static let commandField = CommandField.cStoreRSP

    public var messageIDBeingRespondedTo: UInt16
    public var affectedSOPClassUID: String?
    public var affectedSOPInstanceUID: String?
    public var status: DIMSEStatus
    public var offendingElements: [UInt32]?
    public var errorComment: String?

    public init(
        messageIDBeingRespondedTo: UInt16, affectedSOPClassUID: String?, affectedSOPInstanceUID: String?,
        status: DIMSEStatus, offendingElements: [UInt32]? = nil, errorComment: String? = nil
    ) {
        self.messageIDBeingRespondedTo = messageIDBeingRespondedTo
        self.affectedSOPClassUID = affectedSOPClassUID
        self.affectedSOPInstanceUID = affectedSOPInstanceUID
        self.status = status
        self.offendingElements = offendingElements
        self.errorComment = errorComment
    }

    /// The response to `request`, echoing its identifiers.
    public init(respondingTo request: CStoreRQ, status: DIMSEStatus, errorComment: String? = nil) {
        self.init(
            messageIDBeingRespondedTo: request.messageID, affectedSOPClassUID: request.affectedSOPClassUID,
            affectedSOPInstanceUID: request.affectedSOPInstanceUID, status: status, errorComment: errorComment
        )
    }

    public init(commandSet set: CommandSet) throws(CommandSetError) {
        try Self.checkField(set)
        messageIDBeingRespondedTo = try set.required16(.messageIDBeingRespondedTo, "C-STORE-RSP")
        status = try responseStatus(set, "C-STORE-RSP")
        affectedSOPClassUID = set.string(.affectedSOPClassUID)
        affectedSOPInstanceUID = set.string(.affectedSOPInstanceUID)
        offendingElements = set.tags(.offendingElement)
        errorComment = set.string(.errorComment)
    }

    public var commandSet: CommandSet {
        .make(Self.commandField, hasDataSet: false, [
            (.messageIDBeingRespondedTo, .uint16(messageIDBeingRespondedTo)),
            (.affectedSOPClassUID, affectedSOPClassUID.commandValue),
            (.affectedSOPInstanceUID, affectedSOPInstanceUID.commandValue),
            (.status, .uint16(status.rawValue)), (.offendingElement, offendingElements.map(CommandValue.tags)),
            (.errorComment, errorComment.commandValue),
        ])
    }
}
