/// MSA-1 in original acknowledgment mode (HL7 table 0008).
public enum HL7AcknowledgmentCode: String, Sendable {
    /// The message was accepted and processed (here: durably received).
    case applicationAccept = "AA"
    /// The message was valid but could not be processed; the sender may retry.
    case applicationError = "AE"
    /// The message was rejected (unreadable, unsupported type or version…); do not resend as is.
    case applicationReject = "AR"
}
