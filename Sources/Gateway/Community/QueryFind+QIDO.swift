import Foundation

extension FindQuery {
    /// The QIDO-RS search for this C-FIND (PS3.18 §10.6). The hub may match more loosely than
    /// PS3.4 (or ignore a parameter): its results are checked again by `matches(_:site:)`.
    ///
    /// - Parameter excludeOwnIssuer: the site's IssuerOfPatientID when `exclude_own_site`;
    ///   QIDO-RS cannot exclude, so it only makes sure results carry (0010,0021) to filter on.
    public func qidoRequest(excludeOwnIssuer: String?) -> QIDORequest {
        let (study, series) = pathUIDs
        let path = switch (level, study, series) {
        case (.patient, _, _), (.study, _, _): "studies"
        case (.series, let study?, _): "studies/\(study)/series"
        case (.series, nil, _): "series"
        case (.image, let study?, let series?): "studies/\(study)/series/\(series)/instances"
        case (.image, let study?, nil): "studies/\(study)/instances"
        case (.image, nil, _): "instances"
        }
        let pathTags = self.pathTags

        var parameters: [(name: String, value: String)] = []
        var sent = Set<UInt32>()
        for key in matchingKeys where !pathTags.contains(key.tag) && !isComputed(key.tag) {
            if key.isSequence {
                // Only the INS is worth asking the hub for (nested attribute matching,
                // PS3.18 §8.3.4.1); other sequence keys are matched locally.
                if let ins = Self.insPatientID(key) {
                    parameters.append((name: Self.insParameterName, value: ins.id))
                    parameters.append((name: Self.insIssuerParameterName, value: ins.issuer))
                }
            } else if let value = Self.qidoValue(key) {
                parameters.append((name: QueryAttribute.hex(key.tag), value: value))
                sent.insert(key.tag)
            }
        }

        // Matching attributes come back anyway; the others must be asked for.
        var fields = Set(requestedKeys.map(\.tag)).subtracting(sent).filter { tag in
            !isComputed(tag) || tag == QueryTag.institutionName
        }
        fields.insert(QueryTag.institutionName)  // the hub's value when the site is unknown
        if level <= .study {
            // Site columns, the report flag and the counts of PATIENT level grouping.
            fields.formUnion([QueryTag.issuerOfPatientID, QueryTag.modalitiesInStudy,
                              QueryTag.numberOfStudyRelatedSeries, QueryTag.numberOfStudyRelatedInstances])
        } else if excludeOwnIssuer != nil || requestedKeys.contains(where: { isComputed($0.tag) }) {
            fields.insert(QueryTag.issuerOfPatientID)  // to exclude the own site, or find the site
        }
        fields.subtract(sent)
        for tag in fields.sorted() {
            parameters.append((name: "includefield", value: QueryAttribute.hex(tag)))
        }
        return QIDORequest(path: path, parameters: parameters)
    }

    /// Characters every hub reads the same in a query value (unreserved, and QIDO-RS's `*`).
    static let hubSafe: Set<Character> = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~*")

    /// `00101002.00100020`: PatientID inside Other Patient IDs Sequence (PS3.18 §8.3.4.1).
    static let insParameterName = QueryAttribute.hex(QueryTag.otherPatientIDsSequence) + "."
        + QueryAttribute.hex(QueryTag.patientID)

    static let insIssuerParameterName = QueryAttribute.hex(QueryTag.otherPatientIDsSequence) + "."
        + QueryAttribute.hex(QueryTag.issuerOfPatientID)

    /// The INS of an Other Patient IDs Sequence key: the first item whose IssuerOfPatientID is
    /// an INS OID and that has a single PatientID.
    static func insPatientID(_ key: QueryAttribute) -> (id: String, issuer: String)? {
        guard key.tag == QueryTag.otherPatientIDsSequence else { return nil }
        for item in key.items {
            guard let issuer = item.first(where: { $0.tag == QueryTag.issuerOfPatientID })?.trimmedValues.first,
                  QueryTag.insIssuers.contains(issuer),
                  let ids = item.first(where: { $0.tag == QueryTag.patientID })?.trimmedValues, ids.count == 1,
                  !QueryMatching.hasWildcard(ids[0]) else { continue }
            return (ids[0], issuer)
        }
        return nil
    }

    /// A key's values as QIDO-RS writes them: as in DICOM (`*`, `?`, `A-B`), a list joined
    /// with `,` (QIDO-RS's separator for UID lists, C-FIND's `\`). Nil when the key cannot be
    /// put to the hub faithfully; it is then matched locally only.
    static func qidoValue(_ key: QueryAttribute) -> String? {
        var values = key.trimmedValues
        if key.vr == "PN" {
            let names = values.map(qidoPersonName)
            // One value the hub cannot be asked would narrow a list (OR) wrongly: send none.
            guard !names.contains(nil) else { return nil }
            values = names.compactMap { $0 }
        } else {
            // Hubs differ on `?` and on percent-encoded characters (Orthanc matches `%20`, `%5E`
            // literally and misses `IMA2?0*`): what follows the first such character is left to
            // the local check, the hub gets the prefix, open-ended.
            let wildcards = !["DA", "TM", "DT", "UI", "IS", "DS", "US", "UL", "SS", "SL", "FL", "FD"].contains(key.vr)
            var cut = false
            values = values.map { value in
                guard let mark = value.firstIndex(where: { !hubSafe.contains($0) }) else { return value }
                cut = true
                return String(value[..<mark]) + "*"
            }
            guard !cut || wildcards, !values.contains("*") else { return nil }  // no prefix: not worth a filter
        }
        return values.isEmpty ? nil : values.joined(separator: ",")
    }

    /// What of a name the hub can be trusted to filter on. Hubs match names on their stored
    /// text, accents included (Orthanc does: `DURAND^HELENE` does not find `DURAND^Hélène`),
    /// so only the family name's first letters that never carry an accent are sent, as a
    /// prefix (`DURAND^HELENE` → `D*`); the exact rule is applied locally. A single word may
    /// be any component (`HELENE`): nothing is sent. Nil: the hub is not asked to filter.
    static func qidoPersonName(_ name: String) -> String? {
        let alphabetic = name.split(separator: "=", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let components = alphabetic.split(separator: "^", omittingEmptySubsequences: false)
        guard components.count > 1 || QueryMatching.hasWildcard(alphabetic) else { return nil }
        var prefix = ""
        for character in QueryAttribute.trimmed(components.first ?? "").uppercased() {
            guard character.isASCII, character.isLetter, !accentable.contains(character) else { break }
            prefix.append(character)
        }
        return prefix.isEmpty ? nil : prefix + "*"
    }

    /// Latin capitals that take diacritics in the region's names (French, and the Polish,
    /// Spanish, Portuguese… of patients from elsewhere).
    static let accentable: Set<Character> = Set("ACEILNORSUYZ")
}
