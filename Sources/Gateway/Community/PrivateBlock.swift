import DICOMCore

/// Passerelle's private block in C-FIND responses (docs/community.md): the Private Creator
/// (0009,0010) "PASSERELLE" reserves (0009,10xx) (PS3.5 §7.8.1) for the site columns and the
/// report flag. Passerelle's own elements, hence not in the data dictionary.
enum PrivateBlock {
    static let creator = Tag(0x0009, 0x0010)
    static let creatorName = "PASSERELLE"
    static let producingSiteID = Tag(0x0009, 0x1001)
    static let producingSiteEmitter = Tag(0x0009, 0x1002)
    static let reportPresent = Tag(0x0009, 0x1003)

    /// An element of the block that (0009,0010) reserves.
    static func contains(_ tag: Tag) -> Bool { tag.rawValue & 0xFFFF_FF00 == 0x0009_1000 }
}
