import DICOMCore
import Foundation

extension FindQuery {
    /// The QIDO-RS search for this C-FIND (PS3.18 §10.6). The hub may match more loosely than
    /// PS3.4 (or ignore a parameter): its results are checked again by `matches(_:computed:)`.
    ///
    /// - Parameters:
    ///   - computedKeys: keys the caller answers itself: neither sent nor asked for.
    ///   - includeFields: attributes the caller needs besides the requested keys (`includefield`).
    ///   - otherPatientIDIssuers: assigning authorities whose patient ID, in an Other Patient IDs
    ///     Sequence (0010,1002) key, is put to the hub (nested attribute matching); other sequence
    ///     keys are matched locally only.
    public func qidoRequest(computedKeys: Set<Tag> = [], includeFields: Set<Tag> = [],
                            otherPatientIDIssuers: Set<String> = []) -> QIDORequest {
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
        let isComputed = { (tag: Tag) in computedKeys.contains(tag) || self.isComputedHere(tag) }

        var parameters: [(name: String, value: String)] = []
        var sent = Set<Tag>()
        for key in matchingKeys where !pathTags.contains(key.tag) && !isComputed(key.tag) {
            if key.isSequence {
                // Only a patient ID of a known authority is worth asking the hub for (nested
                // attribute matching, PS3.18 §8.3.4.1); other sequence keys are matched locally.
                if let other = Self.otherPatientID(key, issuers: otherPatientIDIssuers) {
                    parameters.append((name: Self.otherPatientIDParameterName, value: other.id))
                    parameters.append((name: Self.otherIssuerParameterName, value: other.issuer))
                }
            } else if let value = Self.qidoValue(key) {
                parameters.append((name: key.tag.hexString, value: value))
                sent.insert(key.tag)
            }
        }

        // Matching attributes come back anyway; the others must be asked for.
        var fields = Set(requestedKeys.map(\.tag)).subtracting(sent).filter { !isComputed($0) }
        fields.formUnion(includeFields)
        if level == .patient {
            // What `patients(from:)` groups by (IDs are qualified by their issuer) and counts.
            fields.formUnion([.issuerOfPatientID, .numberOfStudyRelatedSeries, .numberOfStudyRelatedInstances])
        }
        fields.subtract(sent)
        for tag in fields.sorted() {
            parameters.append((name: "includefield", value: tag.hexString))
        }
        return QIDORequest(path: path, parameters: parameters)
    }

    /// Characters every hub reads the same in a query value (unreserved, and QIDO-RS's `*`).
    static let hubSafe: Set<Character> = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~*")

    /// `00101002.00100020`: PatientID inside Other Patient IDs Sequence (PS3.18 §8.3.4.1).
    static let otherPatientIDParameterName = Tag.otherPatientIDsSequence.hexString + "." + Tag.patientID.hexString

    /// `00101002.00100021`: its IssuerOfPatientID.
    static let otherIssuerParameterName = Tag.otherPatientIDsSequence.hexString + "."
        + Tag.issuerOfPatientID.hexString

    /// The patient ID of an Other Patient IDs Sequence key to put to the hub: the first item
    /// whose IssuerOfPatientID is one of `issuers` and that has a single PatientID.
    static func otherPatientID(_ key: QueryAttribute, issuers: Set<String>) -> (id: String, issuer: String)? {
        guard key.tag == .otherPatientIDsSequence else { return nil }
        for item in key.items {
            guard let issuer = item.first(where: { $0.tag == .issuerOfPatientID })?.trimmedValues.first,
                  issuers.contains(issuer),
                  let ids = item.first(where: { $0.tag == .patientID })?.trimmedValues, ids.count == 1,
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
