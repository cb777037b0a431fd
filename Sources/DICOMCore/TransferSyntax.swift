/// A transfer syntax: how a data set is encoded (PS3.5 §10, UIDs from PS3.6 Annex A).
public struct TransferSyntax: Hashable, Sendable, CustomStringConvertible {
    public let uid: String
    public let name: String
    public let isExplicitVR: Bool
    public let isLittleEndian: Bool
    /// The data set after the file meta information is raw deflate compressed (PS3.5 §A.5).
    public let isDeflated: Bool
    /// Pixel Data is encapsulated: undefined length OB of fragments (PS3.5 §A.4).
    public let isEncapsulated: Bool
    public let isRetired: Bool

    public var description: String { "\(name) (\(uid))" }

    /// PS3.5 §A.1.
    public static let implicitVRLittleEndian = TransferSyntax(uid: "1.2.840.10008.1.2")!
    /// PS3.5 §A.2.
    public static let explicitVRLittleEndian = TransferSyntax(uid: "1.2.840.10008.1.2.1")!
    /// PS3.5 §A.3 (retired, still sent by old modalities).
    public static let explicitVRBigEndian = TransferSyntax(uid: "1.2.840.10008.1.2.2")!
    /// PS3.5 §A.5.
    public static let deflatedExplicitVRLittleEndian = TransferSyntax(uid: "1.2.840.10008.1.2.1.99")!

    /// Every transfer syntax of the registry that encodes a DICOM binary data set.
    /// Returns nil for unknown UIDs and for the retired RFC 2557 MIME / XML encodings (1.2.840.10008.1.2.6.x),
    /// which are not byte-stream encodings of PS3.5.
    public init?(uid rawUID: String) {
        let uid = UID.trimmed(rawUID)
        guard let entry = UIDRegistry.entry(for: uid), entry.type == "Transfer Syntax" else {
            // Deflated Image Frame Compression (PS3.5 §A.4.11) postdates some dictionaries.
            guard uid == "1.2.840.10008.1.2.8.1" else { return nil }
            self.init(uid: uid, name: "Deflated Image Frame Compression", explicit: true, little: true,
                      deflated: false, encapsulated: true, retired: false)
            return
        }
        var explicit = true, little = true, deflated = false, encapsulated = false
        switch uid {
        case "1.2.840.10008.1.2", "1.2.840.10008.1.20":  // Implicit VR LE; Papyrus 3 implicit
            explicit = false
        case "1.2.840.10008.1.2.1":
            break
        case "1.2.840.10008.1.2.2":
            little = false
        case "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.95", "1.2.840.10008.1.2.4.205":
            deflated = true  // Deflated Explicit VR LE; JPIP (HTJ2K) Referenced Deflate, PS3.5 §A.7
        case "1.2.840.10008.1.2.4.94", "1.2.840.10008.1.2.4.204":
            break  // JPIP Referenced: pixel data is a URL, not in the data set (PS3.5 §A.6)
        case _ where uid.hasPrefix("1.2.840.10008.1.2.7."):
            break  // SMPTE ST 2110: pixel data travels outside the data set (PS3.5 §A.8)
        case _ where uid.hasPrefix("1.2.840.10008.1.2.6."):
            return nil
        default:
            encapsulated = true  // JPEG, JPEG-LS, JPEG 2000, HTJ2K, RLE, MPEG, HEVC, encapsulated uncompressed
        }
        self.init(uid: uid, name: entry.name, explicit: explicit, little: little, deflated: deflated,
                  encapsulated: encapsulated, retired: entry.retired)
    }

    private init(uid: String, name: String, explicit: Bool, little: Bool, deflated: Bool,
                 encapsulated: Bool, retired: Bool) {
        self.uid = uid
        self.name = name
        self.isExplicitVR = explicit
        self.isLittleEndian = little
        self.isDeflated = deflated
        self.isEncapsulated = encapsulated
        self.isRetired = retired
    }
}
