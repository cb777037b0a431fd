import NIOCore

/// Reads chosen top-level values of a data set while walking all of it (PS3.5 §7).
///
/// The general form of `InstanceAttributes.read`: memory is bounded by `maxValueLength` per wanted
/// tag, whatever the size of the data set; everything else is skipped by length or item by item.
public enum DataSetReader {
    /// Returns the raw value bytes (padding included, byte order of the transfer syntax, inflated
    /// for deflated syntaxes) of each of `tags` present at the top level of the data set.
    ///
    /// - Parameters:
    ///   - length: bytes of the data set in `source` (for deflated syntaxes: compressed bytes). When
    ///     given the walk must end exactly there; when nil, at the end of `source`.
    ///   - maxValueLength: a wanted value longer than this throws `.valueTooLarge`.
    public static func readValues(_ tags: Set<Tag>, from source: inout some DICOMByteSource,
                                  transferSyntax: TransferSyntax, length: Int?,
                                  maxValueLength: Int = 64 * 1024) throws(DataSetError) -> [Tag: ByteBuffer] {
        try readValues(tags, items: [:], from: &source, transferSyntax: transferSyntax, length: length,
                       maxValueLength: maxValueLength).values
    }

    /// The same, plus values inside the items of top-level sequences: `items[sequence]` are the
    /// tags read in each item (at any depth, first occurrence), returned item by item.
    /// `stoppingAt`: the walk ends at the first top-level element whose tag is at least this
    /// one (the header of a data set, without reading its pixel data).
    public static func readValues(_ tags: Set<Tag>, items: [Tag: Set<Tag>], from source: inout some DICOMByteSource,
                                  transferSyntax: TransferSyntax, length: Int?, maxValueLength: Int = 64 * 1024,
                                  stoppingAt stop: Tag? = nil)
        throws(DataSetError) -> (values: [Tag: ByteBuffer], items: [Tag: [[Tag: ByteBuffer]]]) {
        var walker = DataSetWalker(wanted: tags, wantedItems: items, maxValueLength: maxValueLength, stopAt: stop)
        let encoding = DataSetWalker.Encoding(isExplicitVR: transferSyntax.isExplicitVR,
                                              isLittleEndian: transferSyntax.isLittleEndian)
        if transferSyntax.isDeflated {
            let start = source.position
            var inflating = try InflatingByteSource(wrapping: source, compressedLength: length)
            try walker.walk(&inflating, encoding: encoding, length: nil)
            source = inflating.base
            if let length, source.position - start != length {
                // Only padding may follow the deflate stream; the caller said how much there is.
                try source.skip(length - (source.position - start))
            }
        } else {
            try walker.walk(&source, encoding: encoding, length: length)
        }
        return (walker.values, walker.items)
    }

    /// Where a top-level element is in an uncompressed data set, or where it would be
    /// inserted to keep tag order (PS3.5 §7.1): `offset` relative to the data set's start,
    /// `length` of the element found there with this tag (header and value), 0 when absent.
    public struct Location: Sendable, Equatable {
        public var offset: Int
        public var length: Int
    }

    /// Finds `tag` at the top level of a data set that is not deflated, reading headers only.
    public static func locate(_ tag: Tag, in source: inout some DICOMByteSource, transferSyntax: TransferSyntax,
                              length: Int?) throws(DataSetError) -> Location {
        let found = try start(of: tag, in: &source, transferSyntax: transferSyntax, length: length)
        guard let elementLength = found.length else {
            throw DataSetError(.invalidLength, offset: found.offset, "\(tag) has an undefined length")
        }
        return Location(offset: found.offset, length: elementLength)
    }

    /// Where a top-level element is, like `locate`, undefined lengths included (such an
    /// element — a sequence — ends where the next top-level element starts): a second walk,
    /// from a fresh source `makeSource` positioned at the data set's start, finds that end.
    public static func span<Source: DICOMByteSource>(_ tag: Tag, transferSyntax: TransferSyntax, length: Int?,
                                                     source makeSource: () throws(DataSetError) -> Source)
        throws(DataSetError) -> Location {
        var source = try makeSource()
        let found = try start(of: tag, in: &source, transferSyntax: transferSyntax, length: length)
        if let elementLength = found.length { return Location(offset: found.offset, length: elementLength) }
        var rest = try makeSource()
        let next = try start(of: Tag(rawValue: tag.rawValue &+ 1), in: &rest, transferSyntax: transferSyntax, length: length)
        return Location(offset: found.offset, length: next.offset - found.offset)
    }

    /// The offset of `tag` (or of its insertion point) and its element's length: 0 when
    /// absent, nil when undefined.
    private static func start(of tag: Tag, in source: inout some DICOMByteSource, transferSyntax: TransferSyntax,
                              length: Int?) throws(DataSetError) -> (offset: Int, length: Int?) {
        guard !transferSyntax.isDeflated else {
            throw DataSetError(.invalidLength, offset: 0, "cannot locate elements in a deflated data set")
        }
        var walker = DataSetWalker(wanted: [], stopAt: tag)
        let encoding = DataSetWalker.Encoding(isExplicitVR: transferSyntax.isExplicitVR,
                                              isLittleEndian: transferSyntax.isLittleEndian)
        try walker.walk(&source, encoding: encoding, length: length)
        guard let stopped = walker.stopped else { return (source.position, 0) }
        guard stopped.header.tag == tag else { return (stopped.offset, 0) }
        return (stopped.offset, stopped.header.length.map { stopped.headerLength + $0 })
    }
}
