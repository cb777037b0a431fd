import NIOCore
import Testing
@testable import DICOMCore

@Suite struct DataSetWriterTests {
    @Test func explicitLittleEndianLayout() {
        var w = DataSetWriter()
        w.write(.patientID, .LO, string: "ABC")
        w.writeHeader(.pixelData, .OB, length: 2)
        #expect(Array(w.buffer.readableBytesView) == [
            0x10, 0x00, 0x20, 0x00, 0x4C, 0x4F, 0x04, 0x00, 0x41, 0x42, 0x43, 0x20,
            0xE0, 0x7F, 0x10, 0x00, 0x4F, 0x42, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
        ])
    }

    @Test func implicitAndBigEndianLayouts() {
        var implicit = DataSetWriter(explicitVR: false)
        implicit.write(.sopClassUID, .UI, string: "1.2.3")
        #expect(Array(implicit.buffer.readableBytesView) == [
            0x08, 0x00, 0x16, 0x00, 0x06, 0x00, 0x00, 0x00, 0x31, 0x2E, 0x32, 0x2E, 0x33, 0x00,
        ])
        var big = DataSetWriter(explicitVR: true, littleEndian: false)
        big.write(.rows, uint16: 512)
        #expect(Array(big.buffer.readableBytesView) == [0x00, 0x28, 0x00, 0x10, 0x55, 0x53, 0x00, 0x02, 0x02, 0x00])
    }

    @Test func delimiters() {
        var w = DataSetWriter()
        w.beginItem()
        w.endItem()
        w.endSequence()
        #expect(Array(w.buffer.readableBytesView) == [
            0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF,
            0xFE, 0xFF, 0x0D, 0xE0, 0x00, 0x00, 0x00, 0x00,
            0xFE, 0xFF, 0xDD, 0xE0, 0x00, 0x00, 0x00, 0x00,
        ])
    }
}

extension DataSetWriterTests {
    @Test(arguments: [TransferSyntax.implicitVRLittleEndian, .explicitVRLittleEndian, .explicitVRBigEndian])
    func encodesElementListsReadableByTheWalker(syntax: TransferSyntax) throws {
        let data = DataSetWriter.encode([
            DataElement(.specificCharacterSet, .CS, string: "ISO_IR 192"),
            DataElement(.sopInstanceUID, .UI, string: "1.2.3"),
            DataElement(.patientName, .PN, string: "Hélène^Martin"),
            DataElement(.seriesDescription, .LO, Array(repeating: 0x41, count: 70_000)),  // cut in explicit VR
        ], transferSyntax: syntax)
        var source = BufferByteSource(data)
        let values = try DataSetReader.readValues([.patientName, .sopInstanceUID], from: &source,
                                                  transferSyntax: syntax, length: data.readableBytes)
        #expect(values[.sopInstanceUID].map { Array($0.readableBytesView) } == Array("1.2.3\0".utf8))
        var again = BufferByteSource(data)
        let attributes = try InstanceAttributes.read(from: &again, transferSyntax: syntax, length: nil)
        #expect(attributes.patientName == "Hélène^Martin")
    }

    @Test func overlongShortValuesAreCut() {
        var w = DataSetWriter()
        w.write(.patientID, .LO, [UInt8](repeating: 0x41, count: 70_000))
        #expect(w.buffer.readableBytes == 8 + 0xFFFE)
    }
}
