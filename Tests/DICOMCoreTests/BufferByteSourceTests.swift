import NIOCore
import Testing
@testable import DICOMCore

@Suite struct BufferByteSourceTests {
    @Test func exactReadsAndSkips() throws {
        var source = BufferByteSource([1, 2, 3, 4, 5] as [UInt8])
        var two = try source.read(2)
        #expect(two.readBytes(length: 2) == [1, 2])
        try source.skip(1)
        #expect(source.position == 3)
        #expect(throws: DataSetError.self) { try source.read(3) }
        #expect(throws: DataSetError.self) { try source.skip(3) }
        #expect(throws: DataSetError.self) { try source.read(-1) }
        let rest = try source.readAvailable(upTo: 10)
        #expect(rest.readableBytes == 2)
        let atEnd = source.isAtEnd()
        #expect(atEnd)
    }
}
