import Foundation

/// Attribute matching of PS3.4 C.2.2.2, applied to values decoded to text.
enum QueryMatching {
    /// VRs with range matching (C.2.2.2.5), hence no wildcard.
    static let rangeVRs: Set<String> = ["DA", "TM", "DT"]
    /// Binary numbers: neither wildcard nor range (C.2.2.2.4).
    static let binaryNumberVRs: Set<String> = ["US", "UL", "SS", "SL", "FL", "FD", "SV", "UV"]

    /// Universal matching (C.2.2.2.3): no value, `*`, an open range `-`, an empty name, or a
    /// sequence whose item (C.2.2.2.6: only one) has only universal keys. Such a key is returned,
    /// not matched.
    static func isUniversal(_ key: QueryAttribute) -> Bool {
        if key.isSequence {
            guard let item = key.items.first else { return true }
            return item.allSatisfy(isUniversal)
        }
        let values = key.trimmedValues
        return values.isEmpty || values.contains { value in
            value == "*"
                || (rangeVRs.contains(key.vr) && value == "-")
                || (key.vr == "PN" && personNameGroups(value).allSatisfy(\.isEmpty))
        }
    }

    /// Whether an attribute of a result meets a (non-universal) key. A multi-valued key matches
    /// when any of its values does (UID list matching, C.2.2.2.2); a multi-valued result
    /// attribute (ModalitiesInStudy `CT\SR`) when any of its values does. A present but empty
    /// attribute is matched as the empty string.
    static func matches(_ key: QueryAttribute, _ attribute: QueryAttribute) -> Bool {
        if key.isSequence { return sequenceMatches(key, attribute) }
        let keyValues = key.trimmedValues
        guard !keyValues.isEmpty else { return true }
        // An identifier read in Implicit VR may carry UN for keys the dictionary does not know.
        let vr = key.vr.isEmpty || key.vr == "UN" ? attribute.vr : key.vr
        let values = attribute.values.isEmpty ? [""] : attribute.values.map(QueryAttribute.trimmed)
        return keyValues.contains { pattern in values.contains { valueMatches(pattern, $0, vr: vr) } }
    }

    /// Sequence matching (C.2.2.2.6): some item of the result meets every key of the key's item.
    /// Inside an item the hub has the data, so a missing attribute does not match.
    static func sequenceMatches(_ key: QueryAttribute, _ attribute: QueryAttribute) -> Bool {
        guard let keyItem = key.items.first else { return true }
        let subKeys = keyItem.filter { !isUniversal($0) }
        guard !subKeys.isEmpty else { return true }
        return attribute.items.contains { item in
            subKeys.allSatisfy { subKey in
                item.first(where: { $0.tag == subKey.tag }).map { matches(subKey, $0) } ?? false
            }
        }
    }

    /// One key value against one result value, both trimmed.
    static func valueMatches(_ pattern: String, _ value: String, vr: String) -> Bool {
        switch vr {
        case "PN":
            return personNameMatches(pattern, value)
        case "DA":
            return rangeMatches(pattern, value, normalize: normalizedDate)
        case "TM":
            return rangeMatches(pattern, value, normalize: normalizedTime)
        case "DT":
            return dateTimeMatches(pattern, value)
        case "UI":
            return pattern == value
        case _ where binaryNumberVRs.contains(vr):
            return numbersEqual(pattern, value)
        case "IS", "DS":
            return hasWildcard(pattern) ? wildcardMatches(pattern, value) : numbersEqual(pattern, value)
        default:
            return hasWildcard(pattern) ? wildcardMatches(pattern, value) : pattern == value
        }
    }

    // MARK: Person names

    /// Names compare without case nor accents (`HELENE` = `Hélène`, `ß` = `ss`).
    static func folded(_ text: String) -> String {
        text.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
    }

    /// The component groups (alphabetic, ideographic, phonetic) of a name, folded, each component
    /// trimmed and trailing empty components dropped: `DURAND^HELENE^^` = `DURAND^HELENE`.
    static func personNameGroups(_ name: String) -> [String] {
        folded(name).split(separator: "=", omittingEmptySubsequences: false).prefix(3).map { group in
            var components = group.split(separator: "^", omittingEmptySubsequences: false)
                .map(QueryAttribute.trimmed)
            while components.last?.isEmpty == true { components.removeLast() }
            return components.joined(separator: "^")
        }
    }

    /// Each group the key gives is compared with the same group of the result; the ideographic
    /// and phonetic groups only when the result has them (most results have only the alphabetic
    /// one), the alphabetic group always.
    static func personNameMatches(_ pattern: String, _ value: String) -> Bool {
        let patterns = personNameGroups(pattern), values = personNameGroups(value)
        var compared = false
        for (index, groupPattern) in patterns.enumerated() where !groupPattern.isEmpty {
            let groupValue = index < values.count ? values[index] : ""
            if groupValue.isEmpty {
                if index == 0 { return false }
                continue
            }
            guard personNameGroupMatches(groupPattern, groupValue) else { return false }
            compared = true
        }
        return compared
    }

    private static func personNameGroupMatches(_ pattern: String, _ value: String) -> Bool {
        if !hasWildcard(pattern), !pattern.contains("^") {
            // A single word (`HELENE`, `DURAND`) is looked for among the components, as
            // radiologists type it (fuzzy semantic matching of names, PS3.4 C.2.2.2.1.1).
            return value.split(separator: "^", omittingEmptySubsequences: true).contains { $0 == pattern }
        }
        guard hasWildcard(pattern) else { return pattern == value }
        if wildcardMatches(pattern, value) { return true }
        // `DURAND^*` also finds a bare `DURAND`, whose given name component is absent.
        return pattern.hasSuffix("^*") && personNameGroupMatches(String(pattern.dropLast(2)), value)
    }

    // MARK: Wildcards (C.2.2.2.4)

    static func hasWildcard(_ text: String) -> Bool { text.contains("*") || text.contains("?") }

    /// `*` any run of characters, `?` exactly one, on whole characters.
    static func wildcardMatches(_ pattern: String, _ value: String) -> Bool {
        let pattern = Array(pattern), value = Array(value)
        var p = 0, v = 0
        var star: Int?, starValue = 0
        while v < value.count {
            if p < pattern.count, pattern[p] == "?" || (pattern[p] != "*" && pattern[p] == value[v]) {
                p += 1
                v += 1
            } else if p < pattern.count, pattern[p] == "*" {
                star = p
                starValue = v
                p += 1
            } else if let star {
                // Let the last `*` take one more character and retry.
                p = star + 1
                starValue += 1
                v = starValue
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == "*" { p += 1 }
        return p == pattern.count
    }

    // MARK: Ranges (C.2.2.2.5)

    /// `A`, `A-B`, `A-` or `-B` against a value, bounds included. Normalized forms compare as
    /// strings; a bound is padded low, an upper bound high, so `-1030` includes 10:30:59.
    static func rangeMatches(_ pattern: String, _ value: String,
                             normalize: (Substring, _ upper: Bool) -> String?) -> Bool {
        guard let value = normalize(value[...], false) else { return false }
        guard let dash = pattern.firstIndex(of: "-") else { return normalize(pattern[...], false) == value }
        return boundsContain(lower: pattern[..<dash], upper: pattern[pattern.index(after: dash)...],
                             value, normalize: normalize)
    }

    private static func boundsContain(lower: Substring, upper: Substring, _ value: String,
                                      normalize: (Substring, _ upper: Bool) -> String?) -> Bool {
        if !lower.isEmpty {
            guard let bound = normalize(lower, false), value >= bound else { return false }
        }
        if !upper.isEmpty {
            guard let bound = normalize(upper, true), value <= bound else { return false }
        }
        return true
    }

    /// DA: `YYYYMMDD` (also the ACR-NEMA `YYYY.MM.DD`).
    static func normalizedDate(_ text: Substring, upper: Bool) -> String? {
        var date = QueryAttribute.trimmed(text)
        if date.count == 10, Array(date)[4] == ".", Array(date)[7] == "." { date.removeAll { $0 == "." } }
        return date.count == 8 && date.allSatisfy(\.isASCIIDigit) ? date : nil
    }

    /// TM: `HH[MM[SS[.F{1,6}]]]` (also the ACR-NEMA `HH:MM:SS`) as `HHMMSS.FFFFFF`.
    static func normalizedTime(_ text: Substring, upper: Bool) -> String? {
        let time = QueryAttribute.trimmed(text).filter { $0 != ":" }
        let parts = time.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let whole = parts[0], fraction = parts.count > 1 ? parts[1] : ""
        guard (1...6).contains(whole.count), fraction.count <= 6,
              whole.allSatisfy(\.isASCIIDigit), fraction.allSatisfy(\.isASCIIDigit) else { return nil }
        return padded(whole, to: 6, upper: upper) + "." + padded(fraction, to: 6, upper: upper)
    }

    /// DT: `YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX]` as `YYYYMMDDHHMMSS.FFFFFF`. The UTC offset
    /// is read and left out: dates and times are compared as written at the site.
    static func normalizedDateTime(_ text: Substring, upper: Bool) -> String? {
        var rest = Substring(QueryAttribute.trimmed(text))
        if rest.count > 5, let sign = rest.index(rest.endIndex, offsetBy: -5, limitedBy: rest.startIndex),
           rest[sign] == "+" || rest[sign] == "-" {
            let offset = rest[rest.index(after: sign)...]
            guard offset.allSatisfy(\.isASCIIDigit), let hours = Int(offset.prefix(2)),
                  let minutes = Int(offset.suffix(2)), hours <= 14, minutes < 60 else { return nil }
            rest = rest[..<sign]
        }
        let parts = rest.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let whole = parts[0], fraction = parts.count > 1 ? parts[1] : ""
        guard (4...14).contains(whole.count), fraction.count <= 6,
              whole.allSatisfy(\.isASCIIDigit), fraction.allSatisfy(\.isASCIIDigit) else { return nil }
        return padded(whole, to: 14, upper: upper) + "." + padded(fraction, to: 6, upper: upper)
    }

    /// A `-` in a DT key is either the range or a negative UTC offset: a key that reads as one
    /// value is one value (`20200101120000-0500`), else it is split at the first `-` that leaves
    /// two valid (or empty) bounds (`2020-2021`).
    static func dateTimeMatches(_ pattern: String, _ value: String) -> Bool {
        guard let value = normalizedDateTime(value[...], upper: false) else { return false }
        if let single = normalizedDateTime(pattern[...], upper: false) { return single == value }
        for dash in pattern.indices where pattern[dash] == "-" {
            let lower = pattern[..<dash], upper = pattern[pattern.index(after: dash)...]
            guard lower.isEmpty || normalizedDateTime(lower, upper: false) != nil,
                  upper.isEmpty || normalizedDateTime(upper, upper: true) != nil else { continue }
            return boundsContain(lower: lower, upper: upper, value, normalize: normalizedDateTime)
        }
        return false
    }

    private static func padded(_ digits: Substring, to length: Int, upper: Bool) -> String {
        String(digits.prefix(length)) + String(repeating: upper ? "9" : "0", count: max(0, length - digits.count))
    }

    // MARK: Numbers

    /// `401` = `0401` = `401.0`; text that is not a number is compared as text.
    static func numbersEqual(_ lhs: String, _ rhs: String) -> Bool {
        if let left = Double(lhs), let right = Double(rhs) { return left == right }
        return lhs == rhs
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
