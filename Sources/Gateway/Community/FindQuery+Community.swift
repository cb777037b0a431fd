import DICOMCore
import DICOMQuery

/// A C-FIND on a community search folder (docs/community.md): the keys Passerelle computes
/// (InstitutionName from the site directory, its private block with the site columns and the
/// report flag), the INS, and the site's own results.
extension FindQuery {

    /// The QIDO-RS search for this C-FIND on a community: computed keys are left out, the INS is
    /// put to the hub, and what the site columns, the report flag and PATIENT level grouping
    /// need is asked for.
    ///
    /// - Parameter excludeOwnIssuer: the site's IssuerOfPatientID when `exclude_own_site`;
    ///   QIDO-RS cannot exclude, so it only makes sure results carry (0010,0021) to filter on.
    public func qidoRequest(excludeOwnIssuer: String?) -> QIDORequest {
        let computed = Set(requestedKeys.map(\.tag).filter(Self.isComputed))
        var fields: Set<Tag> = [.institutionName]  // the hub's value when the site is unknown
        if level <= .study {
            // Site columns, the report flag and the counts of PATIENT level grouping.
            fields.formUnion([.issuerOfPatientID, .modalitiesInStudy, .numberOfStudyRelatedSeries,
                              .numberOfStudyRelatedInstances])
        } else if excludeOwnIssuer != nil || !computed.isEmpty {
            fields.insert(.issuerOfPatientID)  // to exclude the own site, or find the site
        }
        return qidoRequest(computedKeys: computed, includeFields: fields, otherPatientIDIssuers: INS.assigningAuthorities)
    }

    /// Keys Passerelle computes rather than the hub returns: never sent as QIDO-RS parameters,
    /// matched against the computed value.
    static func isComputed(_ tag: Tag) -> Bool {
        // Ours, or another creator's in a group the hub has no business with; InstitutionName
        // is the site directory's name, which may differ from the hub's value.
        tag == PrivateBlock.creator || PrivateBlock.contains(tag) || tag == .institutionName
    }

    /// Whether a hub result meets every matching key, the computed ones against the values
    /// `response(for:site:)` would give (see `matches(_:computed:)`).
    public func matches(_ result: QIDOAttributes, site: SiteDirectoryEntry?) -> Bool {
        matches(result, computed: computedAttributes(for: result, site: site))
    }

    /// The identifier of a pending C-FIND response with the computed keys (see
    /// `response(for:computed:)`). (0009,0010) comes with any (0009,10xx) key, as a private
    /// element needs its creator.
    public func response(for result: QIDOAttributes, site: SiteDirectoryEntry?) -> [QueryAttribute] {
        response(for: result, computed: computedAttributes(for: result, site: site))
    }

    /// The values Passerelle gives computed keys for a result: the site directory's name as
    /// InstitutionName when the site is known; the private block unless the identifier names
    /// another creator (then its keys are the hub's, which has none).
    func computedAttributes(for result: QIDOAttributes, site: SiteDirectoryEntry?) -> QIDOAttributes {
        var computed: QIDOAttributes = [:]
        func set(_ tag: Tag, _ vr: String, _ values: [String]) {
            computed[tag] = QueryAttribute(tag: tag, vr: vr, values: values)
        }
        if let site { set(.institutionName, "LO", [site.name]) }
        if ownsPrivateBlock {
            set(PrivateBlock.creator, "LO", [PrivateBlock.creatorName])
            set(PrivateBlock.producingSiteID, "IS", site.map { [String($0.id)] } ?? [])
            set(PrivateBlock.producingSiteEmitter, "LO", site.map { [$0.emitter] } ?? [])
            set(PrivateBlock.reportPresent, "CS", [Self.hasReport(result) ? "YES" : "NO"])
        }
        return computed
    }

    /// (0009,10xx) are Passerelle's unless the identifier names another private creator.
    var ownsPrivateBlock: Bool {
        guard let creator = requestedKey(PrivateBlock.creator)?.trimmedValues.first else { return true }
        return creator == PrivateBlock.creatorName
    }

    /// A structured report or an encapsulated document (the PDF report) is in the study:
    /// ModalitiesInStudy (0008,0061), or a series' Modality (0008,0060) when that is all there is.
    static func hasReport(_ result: QIDOAttributes) -> Bool {
        let modalities = result[.modalitiesInStudy] ?? result[.modality]
        return modalities?.trimmedValues.contains { ["SR", "DOC"].contains($0.uppercased()) } ?? false
    }

    // MARK: Sites

    /// The producing site of a result: the directory entry of its IssuerOfPatientID (0010,0021).
    public static func site(for result: QIDOAttributes, in directory: [SiteDirectoryEntry]) -> SiteDirectoryEntry? {
        guard let issuer = result[.issuerOfPatientID]?.trimmedValues.first else { return nil }
        return directory.first { QueryAttribute.trimmed($0.issuerOfPatientID) == issuer }
    }

    /// A result of the site itself (`exclude_own_site`): its IssuerOfPatientID is the site's.
    public static func isOwnSite(_ result: QIDOAttributes, ownIssuer: String) -> Bool {
        let own = QueryAttribute.trimmed(ownIssuer)
        guard !own.isEmpty, let issuer = result[.issuerOfPatientID]?.trimmedValues.first else { return false }
        return issuer == own
    }

    // MARK: INS

    /// Whether the identifier searches by INS (an Other Patient IDs Sequence key).
    public var searchesByINS: Bool { matchingKeys.contains { $0.tag == .otherPatientIDsSequence } }

    /// Whether other keys than the INS narrow the search (then a hub that cannot search by INS
    /// still gives a meaningful answer, flagged FF01).
    public var hasKeysBesidesINS: Bool { matchingKeys.contains { $0.tag != .otherPatientIDsSequence } }

    /// An INS search whose result does not carry the sequence: the hub could not vouch for it.
    public func insUnverified(_ result: QIDOAttributes) -> Bool {
        searchesByINS && result[.otherPatientIDsSequence] == nil
    }
}
