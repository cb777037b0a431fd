import Foundation
import NIOCore
import Testing
@testable import DICOMCore

@Suite struct FileByteSourceTests {
    static func temporaryFile(_ bytes: ByteBuffer) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("dicomcore-\(UUID().uuidString).bin")
        try Data(bytes.readableBytesView).write(to: url)
        return url
    }

    @Test func readsSkipsAndSeeks() throws {
        let bytes = ByteBuffer(bytes: (0..<300_000).map { UInt8(truncatingIfNeeded: $0 % 251) })
        let url = try Self.temporaryFile(bytes)
        defer { try? FileManager.default.removeItem(at: url) }
        var source = try FileByteSource(path: url.path, offset: 10, bufferSize: 4096)
        #expect(source.fileSize == 300_000)
        var first = try source.read(3)
        #expect(first.readBytes(length: 3) == [10, 11, 12])
        try source.skip(100_000)  // beyond the buffer: a seek
        #expect(source.position == 100_003)
        var next = try source.read(2)
        #expect(next.readBytes(length: 2) == [UInt8(100_013 % 251), UInt8(100_014 % 251)])
        let big = try source.read(50_000)  // larger than the buffer
        #expect(big.readableBytes == 50_000)
        #expect(big.getInteger(at: big.readerIndex, as: UInt8.self) == UInt8(100_015 % 251))
        #expect(source.position == 150_005)
        #expect(throws: DataSetError.self) { try source.skip(200_000) }
        try source.skip(300_000 - 10 - 150_005)
        let atEnd = source.isAtEnd()
        #expect(atEnd)
        #expect(throws: DataSetError.self) { try source.read(1) }
    }

    @Test func walksADataSetFromAFile() throws {
        var file = Part10.fileMetaInformation(mediaStorageSOPClassUID: Fixtures.ctImageStorage,
                                              mediaStorageSOPInstanceUID: Fixtures.sopInstanceUID,
                                              transferSyntaxUID: TransferSyntax.explicitVRLittleEndian.uid,
                                              sourceApplicationEntityTitle: "MODALITY")
        file.writeImmutableBuffer(Fixtures.dataSet(encapsulated: true, pixelBytes: 1_000_000))
        let url = try Self.temporaryFile(file)
        defer { try? FileManager.default.removeItem(at: url) }

        var source = try FileByteSource(path: url.path)
        let meta = try Part10.readFileMetaInformation(from: &source)
        let syntax = try #require(meta.transferSyntax)
        let attributes = try InstanceAttributes.read(from: &source, transferSyntax: syntax,
                                                     length: source.fileSize - meta.dataSetOffset)
        #expect(attributes == Fixtures.expectedAttributes())
        let atEnd = source.isAtEnd()
        #expect(atEnd)

        // The same file cut short: the walk notices.
        let cut = try Self.temporaryFile(file.getSlice(at: 0, length: file.readableBytes - 1)!)
        defer { try? FileManager.default.removeItem(at: cut) }
        var short = try FileByteSource(path: cut.path)
        _ = try Part10.readFileMetaInformation(from: &short)
        #expect {
            try InstanceAttributes.read(from: &short, transferSyntax: syntax, length: nil)
        } throws: { ($0 as? DataSetError)?.code == .truncated }
    }

    @Test func missingFile() {
        #expect(throws: DataSetError.self) { try FileByteSource(path: "/nonexistent/file.dcm") }
    }
}

extension FileByteSourceTests {
    /// A 1 GiB Pixel Data in a sparse file: the walk seeks over it, reading a few KiB.
    @Test func gigabytePixelDataIsSkippedNotRead() throws {
        var w = DataSetWriter()
        w.write(.sopInstanceUID, .UI, string: Fixtures.sopInstanceUID)
        w.write(.numberOfFrames, .IS, string: "4096")
        let pixelLength = 1 << 30
        w.writeHeader(.pixelData, .OW, length: UInt32(pixelLength))
        let url = try Self.temporaryFile(w.buffer)
        defer { try? FileManager.default.removeItem(at: url) }
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: UInt64(w.buffer.readableBytes + pixelLength))
        try handle.close()

        var source = try FileByteSource(path: url.path)
        let attributes = try InstanceAttributes.read(from: &source, transferSyntax: .explicitVRLittleEndian,
                                                     length: source.fileSize)
        #expect(attributes.numberOfFrames == "4096")
        #expect(source.position == w.buffer.readableBytes + pixelLength)
    }
}
