import NIOCore

/// Structural walk of an encoded data set (PS3.5 §7), reading only the values asked for.
///
/// Memory is bounded by `maxValueLength` and the nesting depth, never by the data set's size:
/// every other value is skipped by length, sequences and encapsulated pixel data item by item.
struct DataSetWalker {
    /// How element headers are encoded. Undefined-length UN switches to implicit LE (PS3.5 §6.2.2).
    struct Encoding: Equatable {
        var isExplicitVR: Bool
        var isLittleEndian: Bool
        static let implicitLittle = Encoding(isExplicitVR: false, isLittleEndian: true)
    }

    /// PS3.5 §7.1: element header as read. `vr` is nil for item/delimitation tags (group FFFE).
    struct Header {
        var tag: Tag
        var vr: VR?
        /// nil = undefined length (FFFFFFFF).
        var length: Int?
    }

    static let undefinedLength: UInt32 = 0xFFFF_FFFF

    /// Top-level tags whose values are returned.
    let wanted: Set<Tag>
    let maxValueLength: Int
    let maxDepth: Int
    private(set) var values: [Tag: ByteBuffer] = [:]
    /// The walk ends at the first top-level element whose tag is at least this one.
    let stopAt: Tag?
    /// Where it ended for `stopAt`: the element's offset and header, if one was reached.
    private(set) var stopped: (offset: Int, header: Header, headerLength: Int)?
    /// Top-level sequences whose items are read, and the tags read in them (at any depth inside
    /// an item, first occurrence): e.g. the Other Patient IDs Sequence and its IDs and issuers.
    let wantedItems: [Tag: Set<Tag>]
    private(set) var items: [Tag: [[Tag: ByteBuffer]]] = [:]
    /// Items read per sequence; the rest are walked, not kept (memory stays bounded).
    static let maxItems = 64
    /// The wanted sequence being walked and the index of its current item.
    private var capturing: (sequence: Tag, item: Int)?

    init(wanted: Set<Tag>, wantedItems: [Tag: Set<Tag>] = [:], maxValueLength: Int = 64 * 1024, maxDepth: Int = 32,
         stopAt: Tag? = nil) {
        self.wanted = wanted
        self.wantedItems = wantedItems
        self.maxValueLength = maxValueLength
        self.maxDepth = maxDepth
        self.stopAt = stopAt
    }

    /// Walks a top-level data set to its end: `length` bytes when given, else the end of `source`.
    mutating func walk(_ source: inout some DICOMByteSource, encoding: Encoding, length: Int?) throws(DataSetError) {
        let end: Int?
        if let length {
            guard length >= 0 else { throw DataSetError(.invalidLength, offset: source.position, "negative data set length") }
            let (sum, overflow) = source.position.addingReportingOverflow(length)
            guard !overflow else { throw DataSetError(.invalidLength, offset: source.position, "data set length overflows") }
            end = sum
        } else {
            end = nil
        }
        try walkDataSet(&source, encoding: encoding, end: end, inUndefinedItem: false, depth: 0)
    }

    // MARK: - Data sets and items

    /// Walks elements until `end` (defined length), the item delimiter (undefined-length item),
    /// or the end of the source (top level without a length).
    private mutating func walkDataSet(_ source: inout some DICOMByteSource, encoding: Encoding, end: Int?,
                                      inUndefinedItem: Bool, depth: Int) throws(DataSetError) {
        while true {
            if let end {
                if source.position == end { return }
                guard source.position < end else {
                    throw DataSetError(.invalidLength, offset: source.position, "element overruns its container")
                }
            } else if !inUndefinedItem, try source.isAtEnd() {
                return
            }
            let headerStart = source.position
            let header = try readHeader(&source, encoding: encoding)
            let headerEnd = source.position
            if depth == 0, let stopAt, header.tag >= stopAt {
                stopped = (headerStart, header, headerEnd - headerStart)
                return
            }
            if header.tag == .itemDelimitationItem {
                guard inUndefinedItem else {
                    throw DataSetError(.unexpectedDelimiter, offset: headerEnd - 8, "item delimiter outside an undefined-length item")
                }
                return
            }
            if header.tag.isDelimiter {
                throw DataSetError(.unexpectedDelimiter, offset: headerEnd - 8, "\(header.tag) inside a data set")
            }
            try walkValue(&source, header: header, encoding: encoding, end: end, depth: depth)
        }
    }

    private mutating func walkValue(_ source: inout some DICOMByteSource, header: Header, encoding: Encoding,
                                    end: Int?, depth: Int) throws(DataSetError) {
        let isSequence = (header.vr ?? DataDictionary.entry(for: header.tag)?.vr) == .SQ
        if depth == 0, isSequence, wantedItems[header.tag] != nil {
            capturing = (header.tag, -1)
            items[header.tag] = []
            defer { capturing = nil }
            if let length = header.length {
                if let end, length > end - source.position {
                    throw DataSetError.truncated(at: source.position,
                                                 "\(header.tag) length \(length) exceeds the \(end - source.position) bytes left")
                }
                // Its length is known: content that does not parse is skipped as it was before
                // items were read (the instance is not refused for it), and nothing is kept.
                let sequenceEnd = source.position + length
                do {
                    try walkSequence(&source, encoding: encoding, depth: 1, end: sequenceEnd)
                } catch {
                    items[header.tag] = nil
                    guard source.position <= sequenceEnd else { throw error }
                    try source.skip(sequenceEnd - source.position)
                }
            } else {
                try walkSequence(&source, encoding: encoding, depth: 1)
            }
            return
        }
        if capturing != nil, depth > 0, isSequence, let length = header.length {
            if let end, length > end - source.position {
                throw DataSetError.truncated(at: source.position,
                                             "\(header.tag) length \(length) exceeds the \(end - source.position) bytes left")
            }
            try walkSequence(&source, encoding: encoding, depth: depth + 1, end: source.position + length)
            return
        }
        guard let length = header.length else {
            // Implicit VR needs the dictionary, but only here: defined-length values are skipped alike.
            let vr = header.vr ?? DataDictionary.entry(for: header.tag)?.vr ?? .UN
            // Undefined length: a sequence, UN holding a sequence, or encapsulated pixel data.
            if header.tag == .pixelData && vr != .SQ && (vr != .UN || encoding.isExplicitVR) {
                try walkFragments(&source, encoding: encoding)
            } else if vr == .SQ || vr == .UN || !encoding.isExplicitVR {
                // PS3.5 §6.2.2: undefined-length UN is an implicit VR little endian sequence.
                let inner = vr == .UN ? Encoding.implicitLittle : encoding
                try walkSequence(&source, encoding: inner, depth: depth + 1)
            } else {
                throw DataSetError(.invalidLength, offset: source.position,
                                   "undefined length on \(header.tag) with VR \(vr)")
            }
            return
        }
        if let end, length > end - source.position {
            throw DataSetError.truncated(at: source.position,
                                         "\(header.tag) length \(length) exceeds the \(end - source.position) bytes left")
        }
        if let capturing, capturing.item >= 0, wantedItems[capturing.sequence]?.contains(header.tag) == true,
           items[capturing.sequence]?[capturing.item][header.tag] == nil, length <= maxValueLength {
            items[capturing.sequence]?[capturing.item][header.tag] = try source.read(length)
        } else if depth == 0 && wanted.contains(header.tag) {
            guard length <= maxValueLength else {
                throw DataSetError(.valueTooLarge, offset: source.position,
                                   "\(header.tag) value of \(length) bytes exceeds \(maxValueLength)")
            }
            values[header.tag] = try source.read(length)
        } else {
            try source.skip(length)  // defined-length sequences included: their content is not needed
        }
    }

    /// PS3.5 §7.5.2: items until the sequence delimiter.
    /// `end`: where a defined-length sequence ends (only the sequences whose items are read are
    /// walked rather than skipped).
    private mutating func walkSequence(_ source: inout some DICOMByteSource, encoding: Encoding,
                                       depth: Int, end: Int? = nil) throws(DataSetError) {
        guard depth <= maxDepth else {
            throw DataSetError(.tooDeep, offset: source.position, "sequences nested deeper than \(maxDepth)")
        }
        while true {
            if let end, source.position >= end {
                guard source.position == end else {
                    throw DataSetError(.invalidLength, offset: source.position, "item overruns its sequence")
                }
                return
            }
            let header = try readHeader(&source, encoding: encoding)
            if depth == 1, header.tag == .item, let sequence = capturing?.sequence {
                if (items[sequence]?.count ?? 0) < Self.maxItems {
                    capturing?.item += 1
                    items[sequence]?.append([:])
                } else {
                    capturing?.item = -1  // walked, not kept
                }
            }
            switch header.tag {
            case .sequenceDelimitationItem where end == nil:
                return
            case .item:
                if let length = header.length {
                    if let end, length > end - source.position {
                        throw DataSetError(.invalidLength, offset: source.position, "item overruns its sequence")
                    }
                    if capturing != nil {
                        try walkDataSet(&source, encoding: encoding, end: source.position + length,
                                        inUndefinedItem: false, depth: depth)
                    } else {
                        try source.skip(length)
                    }
                } else {
                    try walkDataSet(&source, encoding: encoding, end: nil, inUndefinedItem: true, depth: depth)
                }
            default:
                throw DataSetError(.unexpectedDelimiter, offset: source.position - 8,
                                   "\(header.tag) where an item or sequence delimiter was expected")
            }
        }
    }

    /// PS3.5 §A.4: basic offset table and fragments, each a defined-length item, then the delimiter.
    private mutating func walkFragments(_ source: inout some DICOMByteSource, encoding: Encoding) throws(DataSetError) {
        while true {
            let header = try readHeader(&source, encoding: encoding)
            switch header.tag {
            case .sequenceDelimitationItem:
                return
            case .item:
                guard let length = header.length else {
                    throw DataSetError(.invalidLength, offset: source.position, "pixel data fragment of undefined length")
                }
                try source.skip(length)
            default:
                throw DataSetError(.unexpectedDelimiter, offset: source.position - 8,
                                   "\(header.tag) among pixel data fragments")
            }
        }
    }

    // MARK: - Headers

    /// Reads an element header (PS3.5 §7.1.1–7.1.3) or an item/delimiter header (§7.5).
    ///
    /// ```
    /// explicit, short:  tag(4) VR(2) length(2)
    /// explicit, long:   tag(4) VR(2) 0000 length(4)      OB OD OF OL OV OW SQ SV UC UN UR UT UV
    /// implicit:         tag(4) length(4)
    /// item/delimiter:   FFFE,E000|E00D|E0DD length(4)
    /// ```
    func readHeader(_ source: inout some DICOMByteSource, encoding: Encoding) throws(DataSetError) -> Header {
        let endianness: Endianness = encoding.isLittleEndian ? .little : .big
        var bytes = try source.read(8)
        guard let group = bytes.readInteger(endianness: endianness, as: UInt16.self),
              let element = bytes.readInteger(endianness: endianness, as: UInt16.self)
        else { throw DataSetError.truncated(at: source.position) }
        let tag = Tag(group, element)
        if tag.isDelimiter || !encoding.isExplicitVR {
            guard let raw = bytes.readInteger(endianness: endianness, as: UInt32.self) else {
                throw DataSetError.truncated(at: source.position)
            }
            return Header(tag: tag, vr: nil, length: try Self.length(raw, at: source.position))
        }
        guard let code0 = bytes.readInteger(as: UInt8.self), let code1 = bytes.readInteger(as: UInt8.self),
              let vr = VR(code0: code0, code1: code1)
        else {
            throw DataSetError(.invalidVR, offset: source.position - 4, "unknown VR in header of \(tag)")
        }
        if vr.usesLongLength {
            var long = try source.read(4)
            guard let raw = long.readInteger(endianness: endianness, as: UInt32.self) else {
                throw DataSetError.truncated(at: source.position)
            }
            return Header(tag: tag, vr: vr, length: try Self.length(raw, at: source.position))
        }
        guard let short = bytes.readInteger(endianness: endianness, as: UInt16.self) else {
            throw DataSetError.truncated(at: source.position)
        }
        return Header(tag: tag, vr: vr, length: Int(short))
    }

    /// 0xFFFFFFFF = undefined; anything else fits an Int on 64-bit platforms, checked anyway.
    private static func length(_ raw: UInt32, at offset: Int) throws(DataSetError) -> Int? {
        if raw == undefinedLength { return nil }
        guard let value = Int(exactly: raw) else {
            throw DataSetError(.invalidLength, offset: offset, "length \(raw) does not fit")
        }
        return value
    }
}
