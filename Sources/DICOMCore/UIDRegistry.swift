/// One row of the UID registry, PS3.6 Annex A.
public struct UIDEntry: Hashable, Sendable {
    public let uid: String
    public let name: String
    /// "SOP Class", "Transfer Syntax", "Well-known SOP Instance", …
    public let type: String
    public let keyword: String
    public let retired: Bool
}

/// The registry of DICOM unique identifiers, PS3.6 Annex A (generated, see `scripts/gen-dictionary.py`).
/// Named SOP classes (`verificationSOPClassUID`, the Query/Retrieve classes…) are generated too.
public enum UIDRegistry {
    public static func entry(for uid: String) -> UIDEntry? {
        entries[uid]
    }

    /// True for every Storage SOP Class of PS3.4 Annex B.
    public static func isStorageSOPClass(_ uid: String) -> Bool {
        storageSOPClassUIDs.contains(uid)
    }

    private static let entries: [String: UIDEntry] = {
        var entries: [String: UIDEntry] = [:]
        for line in generatedTable.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 5 else { continue }
            let entry = UIDEntry(uid: String(fields[0]), name: String(fields[1]), type: String(fields[2]),
                                 keyword: String(fields[3]), retired: fields[4] == "1")
            entries[entry.uid] = entry
        }
        return entries
    }()
}
