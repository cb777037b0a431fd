import DICOMCore

/// A C-MOVE or C-GET identifier (PS3.4 C.4.2.1.4, C.4.3.1.3): which entities to retrieve.
/// PS3.4 C.4.2.2.1 allows unique keys only; other keys are ignored rather than refused.
public struct RetrieveQuery: Sendable, Equatable {
    public let model: QueryModel
    public let level: QueryLevel
    /// PATIENT level: every study of this patient. Also read at lower levels when given.
    public let patientID: String?
    public let issuerOfPatientID: String?
    /// Lists (UID list matching) split; the level's own list is never empty. Upper levels'
    /// UIDs are optional: instances can be listed without them.
    public let studyUIDs: [String]
    public let seriesUIDs: [String]
    public let sopInstanceUIDs: [String]

    public init(identifier: [QueryAttribute], model: QueryModel) throws(QueryError) {
        self.model = model
        level = try QueryLevel.read(from: identifier, model: model)

        func values(_ tag: Tag) throws(QueryError) -> [String] {
            let values = (identifier.first { $0.tag == tag }?.values ?? [])
                .flatMap { $0.split(separator: "\\") }
                .map(QueryAttribute.trimmed).filter { !$0.isEmpty }
            // Unique keys name entities: no wildcard, no universal matching.
            guard !values.contains(where: QueryMatching.hasWildcard) else {
                throw QueryError("\(tag) has a wildcard, not a unique key", tag: tag)
            }
            return values
        }
        let patientIDs = try values(Tag.patientID)
        studyUIDs = try values(Tag.studyInstanceUID)
        seriesUIDs = try values(Tag.seriesInstanceUID)
        sopInstanceUIDs = try values(Tag.sopInstanceUID)
        issuerOfPatientID = identifier.first { $0.tag == Tag.issuerOfPatientID }?.trimmedValues.first

        let own = switch level {
        case .patient: patientIDs
        case .study: studyUIDs
        case .series: seriesUIDs
        case .image: sopInstanceUIDs
        }
        guard !own.isEmpty else { throw .missing(level.uniqueKeyTag) }
        // A patient is one ID (PS3.4 C.4.2.2.1: a single value at PATIENT level).
        guard patientIDs.count <= 1 else {
            throw QueryError("\(QueryError.name(of: .patientID)) \(Tag.patientID) has several values", tag: .patientID)
        }
        patientID = patientIDs.first
    }
}
