import DICOMCore
import Foundation
import NIOCore

/// C-FIND/C-MOVE/C-GET identifiers between their encoding and `QueryAttribute` text values,
/// with the Specific Character Set (0008,0005) honoured both ways (docs/community.md).
public enum IdentifierCodec {
    /// Decodes an identifier; returns its attributes (without (0008,0005)) and character set.
    public static func decode(_ buffer: ByteBuffer, transferSyntax uid: String) throws(DataSetError)
        -> (attributes: [QueryAttribute], characterSet: SpecificCharacterSet)
    {
        let transferSyntax = TransferSyntax(uid: uid) ?? .implicitVRLittleEndian
        let elements = try DataSetParser.parse(buffer, transferSyntax: transferSyntax)
        var characterSet = SpecificCharacterSet.default
        if let element = elements.first(where: { $0.tag == .specificCharacterSet }) {
            characterSet = SpecificCharacterSet(rawValue: String(decoding: element.value.readableBytesView, as: UTF8.self)
                .trimmingCharacters(in: CharacterSet(charactersIn: " \0")))
        }
        let attributes = elements.filter { $0.tag != .specificCharacterSet }
            .map { attribute($0, characterSet: characterSet, littleEndian: transferSyntax.isLittleEndian) }
        return (attributes, characterSet)
    }

    private static func attribute(_ element: ParsedElement, characterSet: SpecificCharacterSet,
                                  littleEndian: Bool) -> QueryAttribute {
        let vr = element.vr
        if vr == .SQ {
            return QueryAttribute(tag: element.tag, vr: "SQ", items: element.items.map { item in
                item.map { attribute($0, characterSet: characterSet, littleEndian: littleEndian) }
            })
        }
        var bytes = element.value
        var values: [String] = []
        let endianness: Endianness = littleEndian ? .little : .big
        switch vr {
        case .US: while let v = bytes.readInteger(endianness: endianness, as: UInt16.self) { values.append(String(v)) }
        case .SS: while let v = bytes.readInteger(endianness: endianness, as: Int16.self) { values.append(String(v)) }
        case .UL: while let v = bytes.readInteger(endianness: endianness, as: UInt32.self) { values.append(String(v)) }
        case .SL: while let v = bytes.readInteger(endianness: endianness, as: Int32.self) { values.append(String(v)) }
        case .OB, .OW, .OF, .OD, .OL, .OV, .UN, .FL, .FD, .AT, .SV, .UV:
            break  // not matchable: kept as a return key without values
        default:
            let text = characterSet.decode(bytes.readableBytesView, vr: vr)
            let single = vr == .LT || vr == .ST || vr == .UT
            let parts = single ? [text] : text.split(separator: "\\", omittingEmptySubsequences: false).map(String.init)
            values = parts.map { trim($0, leading: !single) }
            if values.count == 1, values[0].isEmpty { values = [] }
        }
        return QueryAttribute(tag: element.tag, vr: vr.rawValue, values: values)
    }

    private static func trim(_ text: String, leading: Bool) -> String {
        var scalars = Substring(text)
        while let last = scalars.last, last == " " || last == "\0" { scalars = scalars.dropLast() }
        if leading { while let first = scalars.first, first == " " { scalars = scalars.dropFirst() } }
        return String(scalars)
    }

    // MARK: Encoding

    /// The character set of an answer: the request's when every value fits in it, else UTF-8;
    /// none when all is ASCII and the request named none.
    static func characterSet(for attributes: [QueryAttribute], requested: SpecificCharacterSet) -> String? {
        let texts = allText(attributes)
        let term = requested.values.first ?? ""
        if texts.allSatisfy({ $0.allSatisfy(\.isASCII) }) {
            return term.isEmpty ? nil : requested.values.joined(separator: "\\")
        }
        if !requested.usesCodeExtensions, let encoding = encodings[term],
           texts.allSatisfy({ $0.data(using: encoding) != nil }) {
            return term
        }
        return "ISO_IR 192"
    }

    private static let encodings: [String: String.Encoding] = [
        "ISO_IR 100": .isoLatin1, "ISO_IR 101": .isoLatin2, "ISO_IR 192": .utf8,
    ]

    private static func allText(_ attributes: [QueryAttribute]) -> [String] {
        attributes.flatMap { attribute in
            attribute.values + attribute.items.flatMap { allText($0) }
        }
    }

    /// Encodes an answer in `transferSyntax` (Implicit/Explicit VR LE, Explicit BE), in tag order.
    public static func encode(_ attributes: [QueryAttribute], requested: SpecificCharacterSet,
                       transferSyntax uid: String) -> ByteBuffer {
        let transferSyntax = TransferSyntax(uid: uid) ?? .implicitVRLittleEndian
        var writer = DataSetWriter(transferSyntax: transferSyntax)
        var attributes = attributes.filter { $0.tag != .specificCharacterSet }
        let term = characterSet(for: attributes, requested: requested)
        if let term {
            attributes.append(QueryAttribute(tag: .specificCharacterSet, vr: "CS", values: [term]))
        }
        let encoding = term.flatMap { encodings[$0.split(separator: "\\").first.map(String.init) ?? ""] } ?? .utf8
        write(attributes, into: &writer, encoding: encoding)
        return writer.buffer
    }

    private static func write(_ attributes: [QueryAttribute], into writer: inout DataSetWriter,
                              encoding: String.Encoding) {
        for attribute in attributes.sorted(by: { $0.tag < $1.tag }) {
            let tag = attribute.tag
            let vr = VR(rawValue: attribute.vr) ?? DataDictionary.entry(for: tag)?.vr ?? .UN
            if vr == .SQ {
                writer.beginSequence(tag)
                for item in attribute.items {
                    writer.beginItem()
                    write(item, into: &writer, encoding: encoding)
                    writer.endItem()
                }
                writer.endSequence()
                continue
            }
            let endianness: Endianness = writer.isLittleEndian ? .little : .big
            var bytes = ByteBuffer()
            switch vr {
            case .US: for value in attribute.values { bytes.writeInteger(UInt16(value) ?? 0, endianness: endianness) }
            case .SS: for value in attribute.values { bytes.writeInteger(Int16(value) ?? 0, endianness: endianness) }
            case .UL: for value in attribute.values { bytes.writeInteger(UInt32(value) ?? 0, endianness: endianness) }
            case .SL: for value in attribute.values { bytes.writeInteger(Int32(value) ?? 0, endianness: endianness) }
            case .OB, .OW, .OF, .OD, .OL, .OV, .UN, .FL, .FD, .AT, .SV, .UV:
                break
            default:
                let text = attribute.values.joined(separator: "\\")
                let data = vr.usesSpecificCharacterSet ? (text.data(using: encoding) ?? Data(text.utf8)) : Data(text.utf8)
                bytes.writeBytes(data)
            }
            writer.write(tag, vr, bytes.readableBytesView)
        }
    }
}
