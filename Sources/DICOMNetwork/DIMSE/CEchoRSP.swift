import DICOMCore

/// C-ECHO-RSP (PS3.7 §9.3.5.2).
public struct CEchoRSP: DIMSECommand {
    public static let commandField = CommandField.cEchoRSP

    public var messageIDBeingRespondedTo: UInt16
    public var affectedSOPClassUID: String?
    public var status: DIMSEStatus
    public var errorComment: String?

    public init(
        messageIDBeingRespondedTo: UInt16, affectedSOPClassUID: String? = UIDRegistry.verificationSOPClassUID,
        status: DIMSEStatus = .success, errorComment: String? = nil
    ) {
        self.messageIDBeingRespondedTo = messageIDBeingRespondedTo
        self.affectedSOPClassUID = affectedSOPClassUID
        self.status = status
        self.errorComment = errorComment
    }

    /// The response to `request`, echoing its identifiers.
    public init(respondingTo request: CEchoRQ, status: DIMSEStatus = .success, errorComment: String? = nil) {
        self.init(
            messageIDBeingRespondedTo: request.messageID, affectedSOPClassUID: request.affectedSOPClassUID,
            status: status, errorComment: errorComment
        )
    }

    public init(commandSet set: CommandSet) throws(CommandSetError) {
        try Self.checkField(set)
        messageIDBeingRespondedTo = try set.required16(.messageIDBeingRespondedTo, "C-ECHO-RSP")
        status = try responseStatus(set, "C-ECHO-RSP")
        affectedSOPClassUID = set.string(.affectedSOPClassUID)
        errorComment = set.string(.errorComment)
    }

    public var commandSet: CommandSet {
        .make(Self.commandField, hasDataSet: false, [
            (.messageIDBeingRespondedTo, .uint16(messageIDBeingRespondedTo)),
            (.affectedSOPClassUID, affectedSOPClassUID.commandValue),
            (.status, .uint16(status.rawValue)), (.errorComment, errorComment.commandValue),
        ])
    }
}
