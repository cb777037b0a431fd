import Foundation

/// One attribute of a C-FIND/C-MOVE identifier or of a result, its values decoded to text.
public struct QueryAttribute: Sendable, Equatable {
    public var tag: UInt32            // group << 16 | element
    public var vr: String             // "PN", "DA", "UI", "SQ", "US", …
    /// Decoded text, multi-values split on "\"; [] = zero length. Numbers (US/UL/IS) as decimal text.
    /// PN as "Family^Given^…" (alphabetic group; "=ideographic=phonetic" kept if present).
    public var values: [String]
    public var items: [[QueryAttribute]]   // SQ items, else []

    public init(tag: UInt32, vr: String, values: [String] = [], items: [[QueryAttribute]] = []) {
        self.tag = tag
        self.vr = vr
        self.values = values
        self.items = items
    }
}

/// A result from the hub: QIDO-RS JSON attributes by tag, values as text like above.
public typealias QIDOAttributes = [UInt32: QueryAttribute]

/// An entry of `[[site_directory]]`: who produced a study, found by its IssuerOfPatientID.
public struct SiteDirectoryEntry: Sendable, Equatable {
    public var id: Int
    public var emitter: String
    public var name: String
    public var issuerOfPatientID: String

    public init(id: Int, emitter: String, name: String, issuerOfPatientID: String) {
        self.id = id
        self.emitter = emitter
        self.name = name
        self.issuerOfPatientID = issuerOfPatientID
    }
}

extension QueryAttribute {
    public var isSequence: Bool { vr == "SQ" || !items.isEmpty }

    /// The values without DICOM padding (spaces; the NUL that pads UIDs), empty ones left out.
    public var trimmedValues: [String] {
        values.map(QueryAttribute.trimmed).filter { !$0.isEmpty }
    }

    /// `00100010`: how QIDO-RS parameters and DICOM JSON name an attribute (PS3.18 §8.3.4.1).
    public static func hex(_ tag: UInt32) -> String {
        let digits = String(tag, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// `(0010,0010)`, for messages.
    static func display(_ tag: UInt32) -> String {
        let digits = hex(tag)
        return "(\(digits.prefix(4)),\(digits.suffix(4)))"
    }

    static func trimmed<S: StringProtocol>(_ text: S) -> String {
        text.trimmingCharacters(in: paddingCharacters)
    }

    private static let paddingCharacters = CharacterSet.whitespaces.union(CharacterSet(charactersIn: "\0"))
}
