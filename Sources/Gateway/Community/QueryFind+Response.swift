extension FindQuery {
    /// The identifier of a pending C-FIND response (PS3.4 C.4.1.1.3.2): exactly the requested
    /// keys and Query/Retrieve Level (0008,0052), in tag order, with the hub's values (empty when
    /// it did not return them) and VR (else the request's), and the computed keys. (0009,0010)
    /// comes with any (0009,10xx) key, as a private element needs its creator.
    public func response(for result: QIDOAttributes, site: SiteDirectoryEntry?) -> [QueryAttribute] {
        let pathUIDs = self.pathUIDs
        var response = [QueryAttribute(tag: QueryTag.queryRetrieveLevel, vr: "CS", values: [level.rawValue])]
        if ownsPrivateBlock, requestedKey(QueryTag.privateCreator) == nil,
           requestedKeys.contains(where: { QueryTag.isInPrivateBlock($0.tag) }),
           let creator = computedAttribute(QueryTag.privateCreator, in: result, site: site) {
            response.append(creator)
        }
        for key in requestedKeys {
            if let computed = computedAttribute(key.tag, in: result, site: site) {
                response.append(computed)
            } else if let attribute = result[key.tag] {
                response.append(Self.returned(attribute, for: key))
            } else if key.tag == QueryTag.studyInstanceUID, let uid = pathUIDs.study {
                response.append(QueryAttribute(tag: key.tag, vr: "UI", values: [uid]))
            } else if key.tag == QueryTag.seriesInstanceUID, let uid = pathUIDs.series {
                response.append(QueryAttribute(tag: key.tag, vr: "UI", values: [uid]))
            } else {
                response.append(QueryAttribute(tag: key.tag, vr: key.vr))
            }
        }
        return response.sorted { $0.tag < $1.tag }
    }

    /// A result attribute as returned for a key. A sequence key with an item returns, of each
    /// item, the item's keys (C.2.2.1.3); a zero-length sequence key returns the items whole.
    static func returned(_ attribute: QueryAttribute, for key: QueryAttribute) -> QueryAttribute {
        guard key.isSequence else {
            return QueryAttribute(tag: key.tag, vr: attribute.vr.isEmpty ? key.vr : attribute.vr,
                                  values: attribute.values)
        }
        guard let keyItem = key.items.first, !keyItem.isEmpty else {
            return QueryAttribute(tag: key.tag, vr: "SQ", items: attribute.items)
        }
        let subKeys = keyItem.sorted { $0.tag < $1.tag }
        let items = attribute.items.map { item in
            subKeys.map { subKey in
                item.first(where: { $0.tag == subKey.tag }).map { returned($0, for: subKey) }
                    ?? QueryAttribute(tag: subKey.tag, vr: subKey.vr)
            }
        }
        return QueryAttribute(tag: key.tag, vr: "SQ", items: items)
    }

    /// The value Passerelle gives a computed key (docs/community.md), nil for the hub's keys.
    func computedAttribute(_ tag: UInt32, in result: QIDOAttributes, site: SiteDirectoryEntry?) -> QueryAttribute? {
        switch tag {
        case QueryTag.institutionName:
            return site.map { QueryAttribute(tag: tag, vr: "LO", values: [$0.name]) }
        case QueryTag.retrieveAETitle:
            return retrieveAETitle.map { QueryAttribute(tag: tag, vr: "AE", values: [$0]) }
        case QueryTag.privateCreator where ownsPrivateBlock:
            return QueryAttribute(tag: tag, vr: "LO", values: [QueryTag.privateCreatorValue])
        case QueryTag.producingSiteID where ownsPrivateBlock:
            return QueryAttribute(tag: tag, vr: "IS", values: site.map { [String($0.id)] } ?? [])
        case QueryTag.producingSiteEmitter where ownsPrivateBlock:
            return QueryAttribute(tag: tag, vr: "LO", values: site.map { [$0.emitter] } ?? [])
        case QueryTag.reportPresent where ownsPrivateBlock:
            return QueryAttribute(tag: tag, vr: "CS", values: [Self.hasReport(result) ? "YES" : "NO"])
        default:
            return nil
        }
    }

    /// A structured report or an encapsulated document (the PDF report) is in the study:
    /// ModalitiesInStudy (0008,0061), or a series' Modality (0008,0060) when that is all there is.
    static func hasReport(_ result: QIDOAttributes) -> Bool {
        let modalities = result[QueryTag.modalitiesInStudy] ?? result[QueryTag.modality]
        return modalities?.trimmedValues.contains { ["SR", "DOC"].contains($0.uppercased()) } ?? false
    }

    /// The producing site of a result: the directory entry of its IssuerOfPatientID (0010,0021).
    public static func site(for result: QIDOAttributes, in directory: [SiteDirectoryEntry]) -> SiteDirectoryEntry? {
        guard let issuer = result[QueryTag.issuerOfPatientID]?.trimmedValues.first else { return nil }
        return directory.first { QueryAttribute.trimmed($0.issuerOfPatientID) == issuer }
    }

    /// A result of the site itself (`exclude_own_site`): its IssuerOfPatientID is the site's.
    public static func isOwnSite(_ result: QIDOAttributes, ownIssuer: String) -> Bool {
        let own = QueryAttribute.trimmed(ownIssuer)
        guard !own.isEmpty, let issuer = result[QueryTag.issuerOfPatientID]?.trimmedValues.first else { return false }
        return issuer == own
    }
}
