import CompressNIO
import NIOCore

/// A `DICOMByteSource` that raw-inflates another one (Deflated Explicit VR Little Endian, PS3.5 §A.5).
///
/// Decompresses 64 KiB at a time; skipping decompresses and discards, so memory stays bounded
/// whatever the inflated size (a "zip bomb" costs time, not memory).
public struct InflatingByteSource<Base: DICOMByteSource>: DICOMByteSource {
    public private(set) var base: Base
    private let decompressor: ZlibDecompressor
    private var input = ByteBuffer()
    private var output = ByteBuffer()
    /// Compressed bytes still allowed from `base` (nil: until `base` ends).
    private var compressedLeft: Int?
    private var streamEnded = false
    private var consumed = 0

    private static var chunkSize: Int { 64 * 1024 }

    /// - Parameter compressedLength: bytes of deflate data in `base`, when known (e.g. the rest of a file).
    public init(wrapping base: Base, compressedLength: Int? = nil) throws(DataSetError) {
        self.base = base
        self.compressedLeft = compressedLength
        do {
            self.decompressor = try ZlibDecompressor(algorithm: .deflate)
        } catch {
            throw DataSetError(.inflateFailed, offset: 0, "cannot start inflate: \(error)")
        }
    }

    /// Decompressed bytes consumed.
    public var position: Int { consumed }

    /// True once the deflate stream reported its end.
    public var isStreamComplete: Bool { streamEnded }

    public mutating func isAtEnd() throws(DataSetError) -> Bool {
        if output.readableBytes > 0 { return false }
        try fill()
        return output.readableBytes == 0
    }

    public mutating func read(_ count: Int) throws(DataSetError) -> ByteBuffer {
        guard count >= 0 else { throw DataSetError(.invalidLength, offset: consumed, "negative read") }
        if count <= output.readableBytes, let slice = output.readSlice(length: count) {
            consumed += count
            return slice
        }
        var result = ByteBuffer()
        result.reserveCapacity(count)
        while result.readableBytes < count {
            if output.readableBytes == 0 {
                try fill()
                if output.readableBytes == 0 {
                    throw .truncated(at: consumed, "deflated data ended \(count - result.readableBytes) bytes short")
                }
            }
            let take = Swift.min(count - result.readableBytes, output.readableBytes)
            if var slice = output.readSlice(length: take) {
                result.writeBuffer(&slice)
                consumed += take
            }
        }
        return result
    }

    public mutating func skip(_ count: Int) throws(DataSetError) {
        guard count >= 0 else { throw DataSetError(.invalidLength, offset: consumed, "negative skip") }
        var left = count
        while left > 0 {
            if output.readableBytes == 0 {
                try fill()
                if output.readableBytes == 0 {
                    throw .truncated(at: consumed, "deflated data ended \(left) bytes short")
                }
            }
            let take = Swift.min(left, output.readableBytes)
            output.moveReaderIndex(forwardBy: take)
            consumed += take
            left -= take
        }
    }

    public mutating func readAvailable(upTo maxCount: Int) throws(DataSetError) -> ByteBuffer {
        if output.readableBytes == 0 { try fill() }
        let take = Swift.min(Swift.max(0, maxCount), output.readableBytes)
        consumed += take
        return output.readSlice(length: take) ?? ByteBuffer()
    }

    /// Input is exhausted: was the final block seen? A finished zlib stream takes no more input
    /// (it answers Z_STREAM_END, consuming nothing); an unfinished one consumes or rejects a probe byte.
    private func isFinished() throws(DataSetError) -> Bool {
        var probe = ByteBuffer(bytes: [0])
        var scratch = ByteBuffer()
        scratch.reserveCapacity(64)
        do {
            try decompressor.inflate(from: &probe, to: &scratch)
        } catch {
            return false
        }
        return probe.readableBytes == 1 && scratch.readableBytes == 0
    }

    /// Produces the next chunk of output; leaves `output` empty only at the end of the stream.
    private mutating func fill() throws(DataSetError) {
        output.clear()
        while output.readableBytes == 0 && !streamEnded {
            if input.readableBytes == 0 {
                let allowed = Swift.min(Self.chunkSize, compressedLeft ?? Int.max)
                input = allowed > 0 ? try base.readAvailable(upTo: allowed) : ByteBuffer()
                if let left = compressedLeft { compressedLeft = left - input.readableBytes }
                if input.readableBytes == 0 {
                    guard try isFinished() else {
                        throw .truncated(at: consumed, "deflate stream ended without its final block")
                    }
                    streamEnded = true
                    return
                }
            }
            output.reserveCapacity(Self.chunkSize)
            let before = input.readableBytes
            do {
                try decompressor.inflate(from: &input, to: &output)
                // Returned without error: either all input was used, or Z_STREAM_END was reached.
                if input.readableBytes > 0 || (input.readableBytes == before && output.readableBytes == 0) {
                    streamEnded = true
                }
            } catch let error as CompressNIOError where error == .bufferOverflow || error == .inputBufferOverflow {
                continue
            } catch {
                throw DataSetError(.inflateFailed, offset: consumed, "inflate failed: \(error)")
            }
        }
    }
}
