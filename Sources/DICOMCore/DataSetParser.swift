import NIOCore

/// An element of a small data set held whole in memory: a value, or sequence items.
public struct ParsedElement: Sendable, Hashable {
    public var tag: Tag
    /// From the header (explicit VR) or the dictionary (implicit VR; UN when unknown).
    public var vr: VR
    public var value: ByteBuffer
    /// Items of a sequence (VR SQ, or undefined-length UN read as implicit VR LE).
    public var items: [[ParsedElement]]
}

/// Reads a whole small data set (a C-FIND identifier, a command's answer) into elements,
/// sequences included. Not for instances: everything is kept in memory, within `maxLength`.
public enum DataSetParser {
    public static func parse(_ buffer: ByteBuffer, transferSyntax: TransferSyntax, maxLength: Int = 1 << 20,
                             maxDepth: Int = 8) throws(DataSetError) -> [ParsedElement] {
        guard buffer.readableBytes <= maxLength else {
            throw DataSetError(.valueTooLarge, offset: 0, "data set of \(buffer.readableBytes) bytes exceeds \(maxLength)")
        }
        var source = BufferByteSource(buffer)
        let encoding = DataSetWalker.Encoding(isExplicitVR: transferSyntax.isExplicitVR,
                                              isLittleEndian: transferSyntax.isLittleEndian)
        let parser = Parser(maxDepth: maxDepth)
        return try parser.elements(&source, encoding: encoding, end: buffer.readableBytes, inUndefinedItem: false, depth: 0)
    }

    private struct Parser {
        let maxDepth: Int
        let walker = DataSetWalker(wanted: [])

        func elements(_ source: inout BufferByteSource, encoding: DataSetWalker.Encoding, end: Int?,
                      inUndefinedItem: Bool, depth: Int) throws(DataSetError) -> [ParsedElement] {
            var result: [ParsedElement] = []
            while true {
                if let end {
                    if source.position == end { return result }
                    guard source.position < end else {
                        throw DataSetError(.invalidLength, offset: source.position, "element overruns its container")
                    }
                }
                let header = try walker.readHeader(&source, encoding: encoding)
                if header.tag == .itemDelimitationItem {
                    guard inUndefinedItem else {
                        throw DataSetError(.unexpectedDelimiter, offset: source.position, "item delimiter outside an item")
                    }
                    return result
                }
                // PS3.5 §7.5: items and delimiters belong to sequences. Kept as an attribute, one
                // was answered back with a VR, which no reader takes (found by fuzz/run identifier).
                if header.tag.isDelimiter {
                    throw DataSetError(.unexpectedDelimiter, offset: source.position, "\(header.tag) among the elements of a data set")
                }
                let vr = header.vr ?? DataDictionary.entry(for: header.tag)?.vr ?? .UN
                if vr == .SQ || (header.length == nil && vr == .UN) {
                    guard depth < maxDepth else {
                        throw DataSetError(.tooDeep, offset: source.position, "sequences nested deeper than \(maxDepth)")
                    }
                    let inner = vr == .UN ? DataSetWalker.Encoding.implicitLittle : encoding
                    let items = try sequence(&source, encoding: inner, length: header.length, depth: depth + 1)
                    result.append(ParsedElement(tag: header.tag, vr: .SQ, value: ByteBuffer(), items: items))
                    continue
                }
                guard let length = header.length else {
                    throw DataSetError(.invalidLength, offset: source.position, "undefined length on \(header.tag)")
                }
                guard length <= source.remaining else {
                    throw DataSetError.truncated(at: source.position, "\(header.tag) value overruns the data set")
                }
                result.append(ParsedElement(tag: header.tag, vr: vr, value: try source.read(length), items: []))
            }
        }

        func sequence(_ source: inout BufferByteSource, encoding: DataSetWalker.Encoding, length: Int?,
                      depth: Int) throws(DataSetError) -> [[ParsedElement]] {
            let end = length.map { source.position + $0 }
            var items: [[ParsedElement]] = []
            while true {
                if let end, source.position >= end { return items }
                let header = try walker.readHeader(&source, encoding: encoding)
                switch header.tag {
                case .sequenceDelimitationItem:
                    return items
                case .item:
                    let itemEnd = header.length.map { source.position + $0 }
                    items.append(try elements(&source, encoding: encoding, end: itemEnd,
                                              inUndefinedItem: header.length == nil, depth: depth))
                default:
                    throw DataSetError(.unexpectedDelimiter, offset: source.position, "\(header.tag) where an item was expected")
                }
            }
        }
    }
}
