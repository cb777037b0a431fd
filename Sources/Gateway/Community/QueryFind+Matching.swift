extension FindQuery {
    /// Keys a result cannot lack and still match: the hub returns them whenever it has them,
    /// so their absence means the study is not what was asked for.
    static let requiredTags: Set<UInt32> = [
        QueryTag.patientName, QueryTag.patientID, QueryTag.studyInstanceUID, QueryTag.seriesInstanceUID,
        QueryTag.sopInstanceUID, QueryTag.accessionNumber, QueryTag.studyDate, QueryTag.modality,
        QueryTag.modalitiesInStudy,
    ]

    /// Whether the identifier searches by INS (an Other Patient IDs Sequence key).
    public var searchesByINS: Bool { matchingKeys.contains { $0.tag == QueryTag.otherPatientIDsSequence } }

    /// Whether other keys than the INS narrow the search (then a hub that cannot search by INS
    /// still gives a meaningful answer, flagged FF01).
    public var hasKeysBesidesINS: Bool { matchingKeys.contains { $0.tag != QueryTag.otherPatientIDsSequence } }

    /// An INS search whose result does not carry the sequence: the hub could not vouch for it.
    public func insUnverified(_ result: QIDOAttributes) -> Bool {
        searchesByINS && result[QueryTag.otherPatientIDsSequence] == nil
    }

    /// Whether a hub result meets every matching key (PS3.4 C.2.2.2), so that a hub that
    /// matches more loosely (or ignores a parameter) does not widen the answer.
    ///
    /// A key the result lacks matches (the hub may not return it), except `requiredTags`; a
    /// UID the QIDO-RS path named matches when absent too (the hub filtered on it). Computed
    /// keys ((0008,0080) with a known site, (0009,xxxx), PATIENT level counts) are matched
    /// against what `response(for:site:)` would say. At PATIENT level, call this on each study
    /// before `patients(from:)`.
    public func matches(_ result: QIDOAttributes, site: SiteDirectoryEntry? = nil) -> Bool {
        let pathTags = self.pathTags
        return matchingKeys.allSatisfy { key in
            guard let attribute = computedAttribute(key.tag, in: result, site: site) ?? result[key.tag] else {
                return !Self.requiredTags.contains(key.tag) || pathTags.contains(key.tag)
            }
            return QueryMatching.matches(key, attribute)
        }
    }
}
