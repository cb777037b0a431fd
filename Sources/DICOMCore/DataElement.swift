/// A data element to write: tag, VR and value bytes (PS3.5 §7.1). Numbers must already be in the
/// byte order of the target transfer syntax; text is written as given and padded by the writer.
public struct DataElement: Hashable, Sendable {
    public var tag: Tag
    public var vr: VR
    public var value: [UInt8]

    public init(_ tag: Tag, _ vr: VR, _ value: [UInt8]) {
        self.tag = tag
        self.vr = vr
        self.value = value
    }

    /// A text element (UTF-8 bytes; ASCII for non-text VRs).
    public init(_ tag: Tag, _ vr: VR, string: String) {
        self.init(tag, vr, Array(string.utf8))
    }
}
