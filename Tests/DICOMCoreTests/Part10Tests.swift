import NIOCore
import Testing
@testable import DICOMCore

@Suite struct Part10Tests {
    @Test func roundTrip() throws {
        let buffer = Part10.fileMetaInformation(mediaStorageSOPClassUID: Fixtures.ctImageStorage,
                                                mediaStorageSOPInstanceUID: "1.2.3.4.5",
                                                transferSyntaxUID: "1.2.840.10008.1.2.1",
                                                sourceApplicationEntityTitle: "CT01")
        #expect(buffer.readableBytes % 2 == 0)
        #expect(buffer.getBytes(at: 0, length: 128) == [UInt8](repeating: 0, count: 128))
        #expect(buffer.getString(at: 128, length: 4) == "DICM")
        var source = BufferByteSource(buffer)
        let meta = try Part10.readFileMetaInformation(from: &source)
        #expect(meta.fileMetaInformationVersion == [0x00, 0x01])
        #expect(meta.mediaStorageSOPClassUID == Fixtures.ctImageStorage)
        #expect(meta.mediaStorageSOPInstanceUID == "1.2.3.4.5")
        #expect(meta.transferSyntaxUID == "1.2.840.10008.1.2.1")
        #expect(meta.transferSyntax == .explicitVRLittleEndian)
        #expect(meta.implementationClassUID == Implementation.classUID)
        #expect(meta.implementationVersionName == Implementation.versionName)
        #expect(meta.sourceApplicationEntityTitle == "CT01")
        #expect(meta.dataSetOffset == buffer.readableBytes)
        #expect(source.remaining == 0)
    }

    @Test func paddingOfOddValues() throws {
        // "1.2.3.4.5" is 9 bytes: padded with NUL; "CT1" with a space.
        let buffer = Part10.fileMetaInformation(mediaStorageSOPClassUID: "1.2.3", mediaStorageSOPInstanceUID: "1.2.3.4.5",
                                                transferSyntaxUID: "1.2.840.10008.1.2", sourceApplicationEntityTitle: "CT1")
        let bytes = Array(buffer.readableBytesView)
        #expect(bytes.contains(subsequence: Array("1.2.3.4.5\0".utf8)))
        #expect(bytes.contains(subsequence: Array("CT1 ".utf8)))
    }

    @Test func rejectsBadFiles() {
        var noPrefix = BufferByteSource([UInt8](repeating: 0, count: 200))
        #expect {
            try Part10.readFileMetaInformation(from: &noPrefix)
        } throws: { ($0 as? DataSetError)?.code == .invalidFileMetaInformation }
        var short = BufferByteSource([UInt8](repeating: 0, count: 20))
        #expect {
            try Part10.readFileMetaInformation(from: &short)
        } throws: { ($0 as? DataSetError)?.code == .truncated }
        let good = Part10.fileMetaInformation(mediaStorageSOPClassUID: "1.2", mediaStorageSOPInstanceUID: "1.3",
                                              transferSyntaxUID: "1.2.840.10008.1.2", sourceApplicationEntityTitle: nil)
        for cut in 0..<good.readableBytes {
            var source = BufferByteSource(good.getSlice(at: 0, length: cut)!)
            #expect(throws: DataSetError.self) { try Part10.readFileMetaInformation(from: &source) }
        }
    }
}

extension Array where Element: Equatable {
    func contains(subsequence: [Element]) -> Bool {
        guard subsequence.count <= count else { return false }
        return (0...(count - subsequence.count)).contains { Array(self[$0..<($0 + subsequence.count)]) == subsequence }
    }
}
