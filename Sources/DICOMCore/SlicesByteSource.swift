import NIOCore

/// A `DICOMByteSource` over buffers received one after the other (the slices of a data set
/// held in memory until it is journaled): reads within one slice are slices of it, not copies.
public struct SlicesByteSource: DICOMByteSource, Sendable {
    private var slices: [ByteBuffer]
    private var index = 0
    public private(set) var position = 0

    /// Starts `skipping` bytes into the concatenation of `slices`.
    public init(_ slices: [ByteBuffer], skipping: Int = 0) throws(DataSetError) {
        self.slices = slices
        try skip(skipping)
        position = 0
    }

    private mutating func current() -> Int {
        while index < slices.count, slices[index].readableBytes == 0 { index += 1 }
        return index < slices.count ? slices[index].readableBytes : 0
    }

    public mutating func read(_ count: Int) throws(DataSetError) -> ByteBuffer {
        guard count >= 0 else { throw DataSetError(.invalidLength, offset: position, "negative read") }
        if count <= current(), count > 0 {
            position += count
            return slices[index].readSlice(length: count)!
        }
        var result = ByteBuffer()
        result.reserveCapacity(count)
        var needed = count
        while needed > 0 {
            let available = current()
            guard available > 0 else {
                throw .truncated(at: position, "needed \(needed) more bytes at the end of the data set")
            }
            var part = slices[index].readSlice(length: min(needed, available))!
            result.writeBuffer(&part)
            needed -= min(needed, available)
        }
        position += count
        return result
    }

    public mutating func skip(_ count: Int) throws(DataSetError) {
        guard count >= 0 else { throw DataSetError(.invalidLength, offset: position, "negative skip") }
        var needed = count
        while needed > 0 {
            let available = current()
            guard available > 0 else {
                throw .truncated(at: position, "cannot skip \(needed) more bytes at the end of the data set")
            }
            let step = min(needed, available)
            slices[index].moveReaderIndex(forwardBy: step)
            needed -= step
            position += step
        }
    }

    public mutating func readAvailable(upTo maxCount: Int) throws(DataSetError) -> ByteBuffer {
        let available = current()
        guard available > 0, maxCount > 0 else { return ByteBuffer() }
        let count = min(maxCount, available)
        position += count
        return slices[index].readSlice(length: count)!
    }

    public mutating func isAtEnd() -> Bool { current() == 0 }
}
