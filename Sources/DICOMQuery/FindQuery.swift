import DICOMCore

/// A C-FIND identifier (PS3.4 C.4.1.1.3), read once: its level, the keys to return and the keys
/// to match. Pure: a QIDO-RS service is asked with `qidoRequest(computedKeys:includeFields:otherPatientIDIssuers:)`,
/// each of its results is checked with `matches(_:computed:)` and answered with `response(for:computed:)`.
///
/// Computed keys are those the answering application gives itself rather than the QIDO-RS
/// service (a directory's institution name, a private block): they are never sent as
/// parameters, and are matched and returned from the `computed` attributes of each result.
public struct FindQuery: Sendable, Equatable {
    public let model: QueryModel
    public let level: QueryLevel
    /// Every key of the identifier but Specific Character Set (0008,0005) and Query/Retrieve
    /// Level (0008,0052), in tag order: what each response carries.
    public let requestedKeys: [QueryAttribute]
    /// The requested keys that are not universal (C.2.2.2.3): non-empty values, or a sequence
    /// whose item has such a key.
    public let matchingKeys: [QueryAttribute]
    /// When set, a requested Retrieve AE Title (0008,0054) says this (the answering AE title)
    /// rather than the hub's: the requestor is to C-MOVE from the answering application.
    public var retrieveAETitle: String?

    /// Reads an identifier. Hierarchical rules (PS3.4 C.4.1.2.1): the level must be one of the
    /// model's, and the unique keys of the levels above it must be given (no relational queries);
    /// other keys of other levels are accepted and matched as given.
    public init(identifier: [QueryAttribute], model: QueryModel) throws(QueryError) {
        self.model = model
        level = try QueryLevel.read(from: identifier, model: model)
        var seen = Set<Tag>()
        requestedKeys = identifier
            .filter { attribute in
                attribute.tag != .specificCharacterSet && attribute.tag != .queryRetrieveLevel
                    && attribute.tag.element != 0  // group lengths are not keys
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

    /// The requested key of `tag`, if any.
    public func requestedKey(_ tag: Tag) -> QueryAttribute? { requestedKeys.first { $0.tag == tag } }
    func matchingKey(_ tag: Tag) -> QueryAttribute? { matchingKeys.first { $0.tag == tag } }

    /// The value of a key that names a single entity: one UID, no wildcard.
    func singleUID(_ tag: Tag) -> String? {
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
            return (singleUID(.studyInstanceUID), nil)
        case .image:
            guard let study = singleUID(.studyInstanceUID) else { return (nil, nil) }
            return (study, singleUID(.seriesInstanceUID))
        }
    }

    var pathTags: Set<Tag> {
        let (study, series) = pathUIDs
        return Set([study.map { _ in Tag.studyInstanceUID }, series.map { _ in Tag.seriesInstanceUID }]
            .compactMap { $0 })
    }

    /// PATIENT level counts, which `patients(from:)` computes from the studies.
    static let patientCounts: Set<Tag> = [
        .numberOfPatientRelatedStudies, .numberOfPatientRelatedSeries, .numberOfPatientRelatedInstances,
    ]

    /// Keys computed here rather than returned by the hub: never sent as QIDO-RS parameters.
    func isComputedHere(_ tag: Tag) -> Bool {
        level == .patient && Self.patientCounts.contains(tag)
    }
}
