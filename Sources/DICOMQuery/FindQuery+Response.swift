import DICOMCore

extension FindQuery {
    /// The identifier of a pending C-FIND response (PS3.4 C.4.1.1.3.2): exactly the requested
    /// keys and Query/Retrieve Level (0008,0052), in tag order, with the computed values, else
    /// the hub's (its VR, else the request's), else empty. A requested private element comes
    /// with its Private Creator (PS3.5 §7.8.1) when `computed` has it and it was not requested.
    public func response(for result: QIDOAttributes, computed: QIDOAttributes = [:]) -> [QueryAttribute] {
        let pathUIDs = self.pathUIDs
        var response = [QueryAttribute(tag: .queryRetrieveLevel, vr: "CS", values: [level.rawValue])]
        var creators = Set<Tag>()
        for key in requestedKeys where key.tag.isPrivate && key.tag.element >= 0x1000 {
            let creator = Tag(key.tag.group, key.tag.element >> 8)  // (gggg,xxyy) is reserved by (gggg,00xx)
            if requestedKey(creator) == nil, let attribute = computed[creator], creators.insert(creator).inserted {
                response.append(attribute)
            }
        }
        for key in requestedKeys {
            if let computed = computedAttribute(key.tag, computed) {
                response.append(computed)
            } else if let attribute = result[key.tag] {
                response.append(Self.returned(attribute, for: key))
            } else if key.tag == .studyInstanceUID, let uid = pathUIDs.study {
                response.append(QueryAttribute(tag: key.tag, vr: "UI", values: [uid]))
            } else if key.tag == .seriesInstanceUID, let uid = pathUIDs.series {
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
}
