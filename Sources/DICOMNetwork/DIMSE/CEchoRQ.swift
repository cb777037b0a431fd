import DICOMCore

/// C-ECHO-RQ (PS3.7 §9.3.5.1).
public struct CEchoRQ: DIMSECommand {
    public static let commandField = CommandField.cEchoRQ

    public var messageID: UInt16
    public var affectedSOPClassUID: String

    public init(messageID: UInt16, affectedSOPClassUID: String = UIDRegistry.verificationSOPClassUID) {
        self.messageID = messageID
        self.affectedSOPClassUID = affectedSOPClassUID
    }

    public init(commandSet set: CommandSet) throws(CommandSetError) {
        try Self.checkField(set)
        messageID = try set.required16(.messageID, "C-ECHO-RQ")
        affectedSOPClassUID = try set.requiredString(.affectedSOPClassUID, "C-ECHO-RQ")
    }

    public var commandSet: CommandSet {
        .make(Self.commandField, hasDataSet: false, [
            (.messageID, .uint16(messageID)), (.affectedSOPClassUID, .string(affectedSOPClassUID)),
        ])
    }
}
