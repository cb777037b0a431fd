/// A data element tag: (group, element), PS3.5 §7.1.
///
/// Ordered as PS3.5 §7.1 requires data elements to be ordered: by group, then element.
public struct Tag: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    /// `group << 16 | element`.
    public let rawValue: UInt32

    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    public init(_ group: UInt16, _ element: UInt16) {
        self.rawValue = UInt32(group) << 16 | UInt32(element)
    }

    public var group: UInt16 { UInt16(truncatingIfNeeded: rawValue >> 16) }
    public var element: UInt16 { UInt16(truncatingIfNeeded: rawValue) }

    /// Odd groups hold private data elements, PS3.5 §7.8.
    public var isPrivate: Bool { group & 1 == 1 }

    /// Group 0002, always explicit VR little endian (PS3.10 §7.1).
    public var isFileMetaInformation: Bool { group == 0x0002 }

    /// Item, item delimitation and sequence delimitation tags (group FFFE, PS3.5 §7.5).
    public var isDelimiter: Bool { group == 0xFFFE }

    /// "(0010,0010)".
    public var description: String {
        "(" + Tag.hex(group) + "," + Tag.hex(element) + ")"
    }

    /// "00100010": how the DICOM JSON and XML models (PS3.18 §F.2.1.1, PS3.19 §A.1) and
    /// QIDO-RS query parameters (PS3.18 §8.3.4.1) name an attribute.
    public var hexString: String {
        Tag.hex(group) + Tag.hex(element)
    }

    public static func < (lhs: Tag, rhs: Tag) -> Bool { lhs.rawValue < rhs.rawValue }

    static func hex(_ value: UInt16) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: 4 - digits.count) + digits
    }
}
