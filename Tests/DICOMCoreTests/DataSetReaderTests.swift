import NIOCore
import Testing
@testable import DICOMCore

@Suite struct DataSetReaderTests {
    @Test func readsArbitraryTopLevelValues() throws {
        let data = Fixtures.dataSet(explicitVR: true, littleEndian: false)
        var source = BufferByteSource(data)
        let values = try DataSetReader.readValues([.patientID, .modality, .rows, Tag(0x0011, 0x0010)], from: &source,
                                                  transferSyntax: .explicitVRBigEndian, length: nil)
        #expect(values[.patientID].map { String(buffer: $0) } == "IPP123")
        #expect(values[.modality].map { String(buffer: $0) } == "CT")
        #expect(values[Tag(0x0011, 0x0010)].map { String(buffer: $0) } == "PASSERELLE TEST ")
        #expect(values[.rows] == nil)
    }
}
