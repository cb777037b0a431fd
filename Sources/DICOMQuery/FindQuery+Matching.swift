import DICOMCore

extension FindQuery {
    /// Keys a result cannot lack and still match: the hub returns them whenever it has them,
    /// so their absence means the study is not what was asked for.
    static let requiredTags: Set<Tag> = [
        .patientName, .patientID, .studyInstanceUID, .seriesInstanceUID, .sopInstanceUID, .accessionNumber,
        .studyDate, .modality, .modalitiesInStudy,
    ]

    /// Whether a hub result meets every matching key (PS3.4 C.2.2.2), so that a hub that
    /// matches more loosely (or ignores a parameter) does not widen the answer.
    ///
    /// A key the result lacks matches (the hub may not return it), except `requiredTags`; a
    /// UID the QIDO-RS path named matches when absent too (the hub filtered on it). Computed
    /// keys are matched against `computed` (the values `response(for:computed:)` would give);
    /// PATIENT level counts are not: at PATIENT level, call this on each study before
    /// `patients(from:)`.
    public func matches(_ result: QIDOAttributes, computed: QIDOAttributes = [:]) -> Bool {
        let pathTags = self.pathTags
        return matchingKeys.allSatisfy { key in
            guard let attribute = computedAttribute(key.tag, computed) ?? result[key.tag] else {
                return !Self.requiredTags.contains(key.tag) || pathTags.contains(key.tag)
            }
            return QueryMatching.matches(key, attribute)
        }
    }

    /// What the answering application says for `tag` rather than the hub: `retrieveAETitle`
    /// when set, else the caller's computed value; nil for the hub's keys.
    func computedAttribute(_ tag: Tag, _ computed: QIDOAttributes) -> QueryAttribute? {
        if tag == .retrieveAETitle, let retrieveAETitle {
            return QueryAttribute(tag: tag, vr: "AE", values: [retrieveAETitle])
        }
        return computed[tag]
    }
}
