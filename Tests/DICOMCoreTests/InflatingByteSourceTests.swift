import NIOCore
import Testing
@testable import DICOMCore

@Suite struct InflatingByteSourceTests {
    @Test func readsAndSkipsAcrossChunks() throws {
        let plain = ByteBuffer(bytes: (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 % 7 + $0 / 4096) })
        let compressed = try DataSetWriter.deflated(plain)
        var source = try InflatingByteSource(wrapping: BufferByteSource(compressed))
        var head = try source.read(5)
        #expect(head.readBytes(length: 5) == Array(plain.getBytes(at: 0, length: 5)!))
        try source.skip(700_000)
        let middle = try source.read(100_000)
        #expect(middle == plain.getSlice(at: 700_005, length: 100_000))
        #expect(source.position == 800_005)
        try source.skip(199_995)
        let atEnd = try source.isAtEnd()
        #expect(atEnd)
        #expect(source.isStreamComplete)
        #expect(throws: DataSetError.self) { try source.read(1) }
    }

    @Test func corruptInputThrows() throws {
        var source = try InflatingByteSource(wrapping: BufferByteSource([0xFF, 0xFF, 0xFF, 0xFF] as [UInt8]))
        #expect(throws: DataSetError.self) { try source.read(10) }
    }
}
