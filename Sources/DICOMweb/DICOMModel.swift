import DICOMCore
import Foundation

/// A data set as the DICOMweb response bodies carry it: the DICOM JSON Model (PS3.18 §F.2) or
/// the Native DICOM Model in XML (PS3.19 §A.1), read into one shape. Only what the clients
/// need is kept: strings, numbers and sequence items; person names and bulk data are `.other`.
public struct DICOMModelDataSet: Sendable, Hashable {
    /// Attribute by tag as 8 upper-case hex digits ("00081199").
    public var attributes: [String: DICOMModelAttribute] = [:]

    public init() {}

    public subscript(tag: String) -> DICOMModelAttribute? { attributes[tag] }

    /// First value as text, trimmed of DICOM padding.
    public func string(_ tag: String) -> String? {
        guard let first = attributes[tag]?.values.first else { return nil }
        switch first {
        case .string(let text): return DICOMModelDataSet.trim(text)
        case .number(let number): return number.rounded() == number ? String(Int64(number)) : String(number)
        default: return nil
        }
    }

    /// First value as US (unsigned 16 bits), from a number or a decimal string.
    public func uint16(_ tag: String) -> UInt16? {
        guard let first = attributes[tag]?.values.first else { return nil }
        switch first {
        case .number(let number): return UInt16(exactly: number)
        case .string(let text): return UInt16(DICOMModelDataSet.trim(text))
        default: return nil
        }
    }

    /// Items of a sequence attribute.
    public func items(_ tag: String) -> [DICOMModelDataSet] {
        attributes[tag]?.values.compactMap { if case .item(let item) = $0 { item } else { nil } } ?? []
    }

    // The same by `Tag`, so that tags come from the generated dictionary rather than typed as text.
    public subscript(tag: Tag) -> DICOMModelAttribute? { attributes[tag.hexString] }
    public func string(_ tag: Tag) -> String? { string(tag.hexString) }
    public func uint16(_ tag: Tag) -> UInt16? { uint16(tag.hexString) }
    public func items(_ tag: Tag) -> [DICOMModelDataSet] { items(tag.hexString) }

    public static func trim(_ text: String) -> String {
        var scalars = Substring(text)
        while let last = scalars.last, last == "\0" || last == " " { scalars = scalars.dropLast() }
        while let first = scalars.first, first == " " { scalars = scalars.dropFirst() }
        return String(scalars)
    }
}

public struct DICOMModelAttribute: Sendable, Hashable {
    public var vr: String?
    public var values: [DICOMModelValue] = []
}

/// A value: text (person names as "Alphabetic=Ideographic=Phonetic", PS3.5 §6.2.1), a number,
/// a sequence item, or something not kept (bulk data).
public indirect enum DICOMModelValue: Sendable, Hashable {
    case string(String)
    case number(Double)
    case item(DICOMModelDataSet)
    case other
}

/// Why a body could not be read as a DICOM model.
struct DICOMModelError: Error, Hashable {
    var message: String
}

enum DICOMJSONModel {
    /// Data sets of a `application/dicom+json` body: an array of objects, or one object.
    static func parse(_ bytes: Data) throws(DICOMModelError) -> [DICOMModelDataSet] {
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return [] }
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: bytes, options: [.fragmentsAllowed])
        } catch {
            throw DICOMModelError(message: "invalid JSON: \(error.localizedDescription)")
        }
        if let array = root as? [Any] {
            var result: [DICOMModelDataSet] = []
            for element in array {
                guard let object = element as? [String: Any] else {
                    throw DICOMModelError(message: "JSON array element is not an object")
                }
                result.append(try dataSet(object, depth: 0))
            }
            return result
        }
        if let object = root as? [String: Any] { return [try dataSet(object, depth: 0)] }
        throw DICOMModelError(message: "JSON body is neither an object nor an array")
    }

    static func dataSet(_ object: [String: Any], depth: Int) throws(DICOMModelError) -> DICOMModelDataSet {
        guard depth < 32 else { throw DICOMModelError(message: "sequences nested too deep") }
        var result = DICOMModelDataSet()
        for (key, raw) in object {
            guard key.utf8.count == 8, key.allSatisfy(\.isHexDigit), let element = raw as? [String: Any] else {
                continue  // not an attribute (tolerated, PS3.18 §F.2.1 keys are tags)
            }
            var attribute = DICOMModelAttribute(vr: element["vr"] as? String)
            for value in element["Value"] as? [Any] ?? [] {
                attribute.values.append(try self.value(value, depth: depth))
            }
            result.attributes[key.uppercased()] = attribute
        }
        return result
    }

    static func value(_ raw: Any, depth: Int) throws(DICOMModelError) -> DICOMModelValue {
        if let text = raw as? String { return .string(text) }
        if let object = raw as? [String: Any] {
            // A sequence item is an object of attributes; a person name has "Alphabetic" etc.
            if object.keys.contains(where: { $0.utf8.count == 8 && $0.allSatisfy(\.isHexDigit) }) || object.isEmpty {
                return .item(try dataSet(object, depth: depth + 1))
            }
            if let name = personName(object) { return .string(name) }
            return .other
        }
        if raw is NSNull { return .other }
        if let number = raw as? NSNumber { return .number(number.doubleValue) }
        return .other
    }
}

extension DICOMJSONModel {
    /// PS3.18 §F.2.2: {"Alphabetic": …, "Ideographic": …, "Phonetic": …} → "A=I=P", trailing "=" dropped.
    static func personName(_ object: [String: Any]) -> String? {
        let groups = ["Alphabetic", "Ideographic", "Phonetic"].map { object[$0] as? String ?? "" }
        guard object.keys.contains(where: { ["Alphabetic", "Ideographic", "Phonetic"].contains($0) }) else { return nil }
        var joined = groups.joined(separator: "=")
        while joined.hasSuffix("=") { joined.removeLast() }
        return joined
    }
}

enum DICOMXMLModel {
    /// Data sets of an `application/dicom+xml` body: one `NativeDicomModel` root, or several
    /// (some servers wrap them); each `DicomAttribute` with `Value` / `Item` children.
    static func parse(_ bytes: [UInt8]) throws(DICOMModelError) -> [DICOMModelDataSet] {
        let root = try MiniXML.parse(bytes)
        if root.name == "NativeDicomModel" { return [try dataSet(root, depth: 0)] }
        let models = root.children.filter { $0.name == "NativeDicomModel" }
        guard !models.isEmpty else {
            throw DICOMModelError(message: "XML root <\(root.name)> is not NativeDicomModel")
        }
        var result: [DICOMModelDataSet] = []
        for model in models { result.append(try dataSet(model, depth: 0)) }
        return result
    }

    static func dataSet(_ node: MiniXML.Node, depth: Int) throws(DICOMModelError) -> DICOMModelDataSet {
        guard depth < 32 else { throw DICOMModelError(message: "sequences nested too deep") }
        var result = DICOMModelDataSet()
        for child in node.children where child.name == "DicomAttribute" {
            guard let tag = child.attributes["tag"], tag.utf8.count == 8, tag.allSatisfy(\.isHexDigit) else {
                throw DICOMModelError(message: "DicomAttribute without a valid tag")
            }
            var attribute = DICOMModelAttribute(vr: child.attributes["vr"])
            let ordered = child.children.sorted {
                (Int($0.attributes["number"] ?? "") ?? 0) < (Int($1.attributes["number"] ?? "") ?? 0)
            }
            for value in ordered {
                switch value.name {
                case "Value":
                    let text = value.text
                    if let vr = attribute.vr, ["US", "SS", "UL", "SL", "UV", "SV", "FL", "FD"].contains(vr),
                       let number = Double(DICOMModelDataSet.trim(text)) {
                        attribute.values.append(.number(number))
                    } else {
                        attribute.values.append(.string(text))
                    }
                case "Item":
                    attribute.values.append(.item(try dataSet(value, depth: depth + 1)))
                default:
                    attribute.values.append(.other)
                }
            }
            result.attributes[tag.uppercased()] = attribute
        }
        return result
    }
}
