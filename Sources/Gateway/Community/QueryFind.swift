/// A C-FIND identifier (PS3.4 C.4.1.1.3), read once: its level, the keys to return and the keys
/// to match. Pure: the hub is asked with `qidoRequest(excludeOwnIssuer:)`, each of its results
/// is checked with `matches(_:site:)` and answered with `response(for:site:)`.
public struct FindQuery: Sendable, Equatable {
    public let model: QueryModel
    public let level: QueryLevel
    /// Every key of the identifier but Specific Character Set (0008,0005) and Query/Retrieve
    /// Level (0008,0052), in tag order: what each response carries.
    public let requestedKeys: [QueryAttribute]
    /// The requested keys that are not universal (C.2.2.2.3): non-empty values, or a sequence
    /// whose item has such a key.
    public let matchingKeys: [QueryAttribute]
    /// When set, a requested Retrieve AE Title (0008,0054) says this (the community's AE title)
    /// rather than the hub's: the requestor is to C-MOVE from us.
    public var retrieveAETitle: String?

    /// Reads an identifier. Hierarchical rules (PS3.4 C.4.1.2.1): the level must be one of the
    /// model's, and the unique keys of the levels above it must be given (no relational queries);
    /// other keys of other levels are accepted and matched as given.
    public init(identifier: [QueryAttribute], model: QueryModel) throws(QueryError) {
        self.model = model
        level = try QueryLevel.read(from: identifier, model: model)
        var seen = Set<UInt32>()
        requestedKeys = identifier
            .filter { attribute in
                attribute.tag != QueryTag.specificCharacterSet && attribute.tag != QueryTag.queryRetrieveLevel
                    && attribute.tag & 0xFFFF != 0  // group lengths are not keys
                    && seen.insert(attribute.tag).inserted
            }
            .sorted { $0.tag < $1.tag }
        matchingKeys = requestedKeys.filter { !QueryMatching.isUniversal($0) }
        for upper in QueryLevel.allCases where upper < level && model.levels.contains(upper) {
            let tag = upper.uniqueKeyTag
            guard let values = matchingKeys.first(where: { $0.tag == tag })?.trimmedValues, !values.isEmpty,
                  !values.contains(where: QueryMatching.hasWildcard) else {
                throw QueryError("\(upper.uniqueKeyName) is required at \(level.rawValue) level", tag: tag)
            }
        }
    }

    func requestedKey(_ tag: UInt32) -> QueryAttribute? { requestedKeys.first { $0.tag == tag } }
    func matchingKey(_ tag: UInt32) -> QueryAttribute? { matchingKeys.first { $0.tag == tag } }

    /// The value of a key that names a single entity: one UID, no wildcard.
    func singleUID(_ tag: UInt32) -> String? {
        guard let values = matchingKey(tag)?.trimmedValues, values.count == 1,
              !QueryMatching.hasWildcard(values[0]) else { return nil }
        return values[0]
    }

    /// Study and series UIDs the QIDO-RS path names (PS3.18 §10.6.1): the hub filters on them,
    /// and its results need not repeat them.
    var pathUIDs: (study: String?, series: String?) {
        switch level {
        case .patient, .study:
            return (nil, nil)
        case .series:
            return (singleUID(QueryTag.studyInstanceUID), nil)
        case .image:
            guard let study = singleUID(QueryTag.studyInstanceUID) else { return (nil, nil) }
            return (study, singleUID(QueryTag.seriesInstanceUID))
        }
    }

    var pathTags: Set<UInt32> {
        let (study, series) = pathUIDs
        return Set([study.map { _ in QueryTag.studyInstanceUID }, series.map { _ in QueryTag.seriesInstanceUID }]
            .compactMap { $0 })
    }

    /// (0009,10xx) are Passerelle's unless the identifier names another private creator.
    var ownsPrivateBlock: Bool {
        guard let creator = requestedKey(QueryTag.privateCreator)?.trimmedValues.first else { return true }
        return creator == QueryTag.privateCreatorValue
    }

    /// Keys Passerelle computes rather than the hub returns (docs/community.md): never sent as
    /// QIDO-RS parameters, matched against the computed value.
    func isComputed(_ tag: UInt32) -> Bool {
        switch tag {
        case QueryTag.privateCreator,
             _ where QueryTag.isInPrivateBlock(tag):
            return true  // ours, or another creator's in a group the hub has no business with
        case QueryTag.institutionName:
            return true  // the site directory's name, which may differ from the hub's value
        case QueryTag.numberOfPatientRelatedStudies, QueryTag.numberOfPatientRelatedSeries,
             QueryTag.numberOfPatientRelatedInstances:
            return level == .patient  // counted by `patients(from:)`
        default:
            return false
        }
    }
}
