/// The outcome of one C-STORE sent from a Part-10 file (PS3.7 §9.1.1), by the client or as a
/// C-GET sub-operation: the peer's status, whatever it is.
public struct CStoreResult: Sendable, Hashable {
    public var status: DIMSEStatus
    /// Error Comment (0000,0902), when the peer sent one.
    public var errorComment: String?
    public var sopClassUID: String
    public var sopInstanceUID: String
    /// The transfer syntax the data set was sent in (the file's).
    public var transferSyntaxUID: String
    /// The presentation context used.
    public var contextID: UInt8
    /// Bytes of data set sent.
    public var dataSetLength: Int

    public init(status: DIMSEStatus, errorComment: String?, sopClassUID: String, sopInstanceUID: String,
                transferSyntaxUID: String, contextID: UInt8, dataSetLength: Int) {
        self.status = status
        self.errorComment = errorComment
        self.sopClassUID = sopClassUID
        self.sopInstanceUID = sopInstanceUID
        self.transferSyntaxUID = transferSyntaxUID
        self.contextID = contextID
        self.dataSetLength = dataSetLength
    }

    /// The peer's answer to the C-STORE of `file` on `contextID`.
    init(_ response: CStoreRSP, file: Part10DataSetFile, contextID: UInt8) {
        self.init(status: response.status, errorComment: response.errorComment, sopClassUID: file.sopClassUID,
                  sopInstanceUID: file.sopInstanceUID, transferSyntaxUID: file.transferSyntaxUID,
                  contextID: contextID, dataSetLength: file.dataSetLength)
    }
}
