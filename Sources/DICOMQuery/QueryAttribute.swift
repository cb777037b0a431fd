import DICOMCore
import Foundation

/// One attribute of a C-FIND/C-MOVE/C-GET identifier or of a result, its values decoded to text.
public struct QueryAttribute: Sendable, Equatable {
    public var tag: Tag
    public var vr: String             // "PN", "DA", "UI", "SQ", "US", …
    /// Decoded text, multi-values split on "\"; [] = zero length. Numbers (US/UL/IS) as decimal text.
    /// PN as "Family^Given^…" (alphabetic group; "=ideographic=phonetic" kept if present).
    public var values: [String]
    public var items: [[QueryAttribute]]   // SQ items, else []

    public init(tag: Tag, vr: String, values: [String] = [], items: [[QueryAttribute]] = []) {
        self.tag = tag
        self.vr = vr
        self.values = values
        self.items = items
    }
}

/// A result from a QIDO-RS service: its attributes by tag, values as text like `QueryAttribute`'s.
public typealias QIDOAttributes = [Tag: QueryAttribute]

extension QueryAttribute {
    public var isSequence: Bool { vr == "SQ" || !items.isEmpty }

    /// The values without DICOM padding (spaces; the NUL that pads UIDs), empty ones left out.
    public var trimmedValues: [String] {
        values.map(QueryAttribute.trimmed).filter { !$0.isEmpty }
    }

    /// A value without DICOM padding: spaces either side, the NUL that pads UIDs.
    public static func trimmed<S: StringProtocol>(_ text: S) -> String {
        text.trimmingCharacters(in: paddingCharacters)
    }

    private static let paddingCharacters = CharacterSet.whitespaces.union(CharacterSet(charactersIn: "\0"))
}
