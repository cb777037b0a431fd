/// The data element registry of PS3.6 §6, generated from a machine-readable copy
/// (see `scripts/gen-dictionary.py`) and parsed once at first use.
public enum DataDictionary {
    /// One row of PS3.6 Table 6-1.
    public struct Entry: Hashable, Sendable {
        public let tag: Tag
        /// The first VR listed; elements such as Pixel Data list "OB or OW".
        public let vr: VR?
        /// The VR column as written, e.g. "OB or OW", "US or SS".
        public let vrs: String
        public let vm: String
        public let keyword: String
        public let name: String
        public let retired: Bool
    }

    /// Looks up `tag`, including repeating groups (50xx, 60xx, …; PS3.5 §7.6).
    /// Group lengths (gggg,0000) are UL by PS3.5 §7.2 and answered for every group.
    public static func entry(for tag: Tag) -> Entry? {
        if let entry = tables.byTag[tag.rawValue] { return entry }
        for mask in tables.masks where tag.rawValue & mask.mask == mask.value {
            return Entry(tag: tag, vr: mask.entry.vr, vrs: mask.entry.vrs, vm: mask.entry.vm,
                         keyword: mask.entry.keyword, name: mask.entry.name, retired: mask.entry.retired)
        }
        if tag.element == 0x0000 {
            return Entry(tag: tag, vr: .UL, vrs: "UL", vm: "1", keyword: "GenericGroupLength",
                         name: "Generic Group Length", retired: true)
        }
        return nil
    }

    /// Looks up a keyword, e.g. "PatientName".
    public static func entry(forKeyword keyword: String) -> Entry? {
        tables.byKeyword[keyword].flatMap { tables.byTag[$0] }
    }

    private struct Mask: Sendable {
        let mask: UInt32
        let value: UInt32
        let entry: Entry
    }

    private struct Tables: Sendable {
        var byTag: [UInt32: Entry] = [:]
        var byKeyword: [String: UInt32] = [:]
        var masks: [Mask] = []
    }

    // A `static let` is initialised lazily and thread-safely by the runtime.
    private static let tables: Tables = {
        var tables = Tables()
        tables.byTag.reserveCapacity(5_200)
        for line in generatedTable.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 6, let raw = UInt32(fields[0], radix: 16) else { continue }
            let entry = makeEntry(tag: Tag(rawValue: raw), vrs: fields[1], vm: fields[2],
                                  keyword: fields[3], name: fields[4], retired: fields[5])
            tables.byTag[raw] = entry
            if !entry.keyword.isEmpty { tables.byKeyword[entry.keyword] = raw }
        }
        for line in generatedMasks.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 7, let mask = UInt32(fields[0], radix: 16),
                  let value = UInt32(fields[1], radix: 16) else { continue }
            let entry = makeEntry(tag: Tag(rawValue: value), vrs: fields[2], vm: fields[3],
                                  keyword: fields[4], name: fields[5], retired: fields[6])
            tables.masks.append(Mask(mask: mask, value: value, entry: entry))
        }
        return tables
    }()

    private static func makeEntry(tag: Tag, vrs: Substring, vm: Substring, keyword: Substring,
                                  name: Substring, retired: Substring) -> Entry {
        Entry(tag: tag, vr: VR(rawValue: String(vrs.prefix(2))), vrs: String(vrs), vm: String(vm),
              keyword: String(keyword), name: String(name), retired: retired == "1")
    }
}
