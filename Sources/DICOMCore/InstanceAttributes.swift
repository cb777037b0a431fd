import NIOCore

/// The attributes Passerelle needs from every received instance, read in one bounded-memory pass.
///
/// Strings are decoded with the data set's Specific Character Set (PS3.5 §6.1) and trimmed of
/// padding (PS3.5 §6.2). The caller decides which absent values are errors.
public struct InstanceAttributes: Sendable, Equatable {
    public var specificCharacterSet: [String] = []
    public var sopClassUID: String?
    public var sopInstanceUID: String?
    public var studyInstanceUID: String?
    public var seriesInstanceUID: String?
    public var patientID: String?
    public var issuerOfPatientID: String?
    public var patientName: String?
    public var patientBirthDate: String?
    public var patientSex: String?
    public var studyDate: String?
    public var studyTime: String?
    public var accessionNumber: String?
    public var studyDescription: String?
    public var modality: String?
    public var seriesNumber: String?
    public var instanceNumber: String?
    public var numberOfFrames: String?
    /// Other Patient IDs Sequence (0010,1002): the patient's other identifiers, such as the INS.
    public var otherPatientIDs: [OtherPatientID] = []

    /// One item of the Other Patient IDs Sequence.
    public struct OtherPatientID: Sendable, Equatable {
        public var patientID: String
        public var issuerOfPatientID: String?
        /// Universal Entity ID (0040,0032) of the Issuer of Patient ID Qualifiers Sequence: an OID.
        public var universalEntityID: String?

        public init(patientID: String, issuerOfPatientID: String? = nil, universalEntityID: String? = nil) {
            self.patientID = patientID
            self.issuerOfPatientID = issuerOfPatientID
            self.universalEntityID = universalEntityID
        }
    }

    public init() {}

    private static let otherPatientIDTags: Set<Tag> = [.patientID, .issuerOfPatientID, .universalEntityID]

    /// Largest wanted value accepted; anything bigger is not a sane identifier or name.
    public static let maxValueLength = 64 * 1024

    private static let fields: [Tag: WritableKeyPath<InstanceAttributes, String?> & Sendable] = [
        .sopClassUID: \.sopClassUID,
        .sopInstanceUID: \.sopInstanceUID,
        .studyInstanceUID: \.studyInstanceUID,
        .seriesInstanceUID: \.seriesInstanceUID,
        .patientID: \.patientID,
        .issuerOfPatientID: \.issuerOfPatientID,
        .patientName: \.patientName,
        .patientBirthDate: \.patientBirthDate,
        .patientSex: \.patientSex,
        .studyDate: \.studyDate,
        .studyTime: \.studyTime,
        .accessionNumber: \.accessionNumber,
        .studyDescription: \.studyDescription,
        .modality: \.modality,
        .seriesNumber: \.seriesNumber,
        .instanceNumber: \.instanceNumber,
        .numberOfFrames: \.numberOfFrames,
    ]

    /// Walks the whole top-level data set (so truncation is detected) and returns the wanted values.
    ///
    /// - Parameters:
    ///   - source: positioned at the first element of the data set (after the file meta information).
    ///   - transferSyntax: how the data set is encoded; deflated data sets are inflated on the fly.
    ///   - length: bytes of the data set in `source` (for deflated syntaxes: compressed bytes). When
    ///     given the walk must end exactly there; when nil, at the end of `source`.
    public static func read(from source: inout some DICOMByteSource, transferSyntax: TransferSyntax,
                            length: Int?) throws(DataSetError) -> InstanceAttributes {
        let read = try DataSetReader.readValues(Set(fields.keys).union([.specificCharacterSet]),
                                                items: [.otherPatientIDsSequence: otherPatientIDTags], from: &source,
                                                transferSyntax: transferSyntax, length: length,
                                                maxValueLength: maxValueLength)
        return decode(read.values, otherPatientIDs: read.items[.otherPatientIDsSequence] ?? [])
    }

    static func decode(_ values: [Tag: ByteBuffer], otherPatientIDs: [[Tag: ByteBuffer]] = []) -> InstanceAttributes {
        var attributes = InstanceAttributes()
        if let raw = values[.specificCharacterSet] {
            attributes.specificCharacterSet = SpecificCharacterSet(
                rawValue: SpecificCharacterSet.latin1(Array(raw.readableBytesView))).values
        }
        let characterSet = SpecificCharacterSet(values: attributes.specificCharacterSet)
        for (tag, keyPath) in fields {
            guard let raw = values[tag] else { continue }
            let vr = DataDictionary.entry(for: tag)?.vr ?? .LO
            attributes[keyPath: keyPath] = trim(characterSet.decode(raw.readableBytesView, vr: vr), vr: vr)
        }
        func string(_ item: [Tag: ByteBuffer], _ tag: Tag) -> String? {
            guard let raw = item[tag] else { return nil }
            let vr = DataDictionary.entry(for: tag)?.vr ?? .LO
            let value = trim(characterSet.decode(raw.readableBytesView, vr: vr), vr: vr)
            return value.isEmpty ? nil : value
        }
        attributes.otherPatientIDs = otherPatientIDs.compactMap { item in
            string(item, .patientID).map {
                OtherPatientID(patientID: $0, issuerOfPatientID: string(item, .issuerOfPatientID),
                               universalEntityID: string(item, .universalEntityID))
            }
        }
        return attributes
    }

    /// PS3.5 Table 6.2-1: trailing padding is never significant; leading spaces are insignificant
    /// except in PN and the free-text VRs.
    static func trim(_ value: String, vr: VR) -> String {
        var scalars = Substring(value)
        while let last = scalars.last, last == " " || last == "\0" { scalars = scalars.dropLast() }
        switch vr {
        case .PN, .LT, .ST, .UT: break
        default:
            while let first = scalars.first, first == " " { scalars = scalars.dropFirst() }
        }
        return String(scalars)
    }
}
