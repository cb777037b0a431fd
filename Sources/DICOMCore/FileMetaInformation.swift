/// File meta information of a Part-10 file, PS3.10 §7.1 (group 0002).
public struct FileMetaInformation: Sendable, Equatable {
    public var fileMetaInformationVersion: [UInt8]?
    public var mediaStorageSOPClassUID: String?
    public var mediaStorageSOPInstanceUID: String?
    public var transferSyntaxUID: String?
    public var implementationClassUID: String?
    public var implementationVersionName: String?
    public var sourceApplicationEntityTitle: String?
    /// Offset of the data set's first byte, relative to where reading started (file start).
    public var dataSetOffset: Int

    public init(dataSetOffset: Int) {
        self.dataSetOffset = dataSetOffset
    }

    /// The transfer syntax of the data set, nil when absent or unknown.
    public var transferSyntax: TransferSyntax? {
        transferSyntaxUID.flatMap(TransferSyntax.init(uid:))
    }
}
