import DICOMCore

/// Query/Retrieve Level (0008,0052), PS3.4 C.6.
public enum QueryLevel: String, Sendable, CaseIterable, Comparable {
    case patient = "PATIENT"
    case study = "STUDY"
    case series = "SERIES"
    case image = "IMAGE"

    /// Depth in the PATIENT > STUDY > SERIES > IMAGE hierarchy: `.patient < .study`.
    var depth: Int {
        switch self {
        case .patient: 0
        case .study: 1
        case .series: 2
        case .image: 3
        }
    }

    public static func < (lhs: QueryLevel, rhs: QueryLevel) -> Bool { lhs.depth < rhs.depth }

    /// The level's Unique Key (PS3.4 C.6.1.1 / C.6.2.1).
    public var uniqueKeyTag: Tag {
        switch self {
        case .patient: .patientID
        case .study: .studyInstanceUID
        case .series: .seriesInstanceUID
        case .image: .sopInstanceUID
        }
    }

    /// "Study Instance UID", as PS3.6 names it.
    var uniqueKeyName: String { QueryError.name(of: uniqueKeyTag) }

    /// Reads (0008,0052) of an identifier: missing, multi-valued, unknown, or a level the
    /// information model does not have (Study Root has no PATIENT level) is an error.
    static func read(from identifier: [QueryAttribute], model: QueryModel) throws(QueryError) -> QueryLevel {
        let tag = Tag.queryRetrieveLevel
        guard let attribute = identifier.first(where: { $0.tag == tag }),
              let text = attribute.trimmedValues.first else {
            throw .missing(tag)
        }
        // CS is upper case; lower case is read too, as the check is loose.
        guard attribute.trimmedValues.count == 1, let level = QueryLevel(rawValue: text.uppercased()) else {
            throw QueryError("Query/Retrieve Level \"\(text.prefix(16))\" is invalid", tag: tag)
        }
        guard model.levels.contains(level) else {
            throw QueryError("\(level.rawValue) level is not in the \(model.name) model", tag: tag)
        }
        return level
    }
}
