import Foundation
import NIOCore
import Testing
@testable import DICOMCore

/// Implicit ↔ Explicit VR Little Endian re-encoding (C-MOVE/C-GET to a peer that accepted
/// only the other): every value and item survives, byte for byte.
@Suite struct DataSetTranscoderTests {
    let explicitLE = TransferSyntax.explicitVRLittleEndian
    let implicitLE = TransferSyntax.implicitVRLittleEndian

    /// A data set with text, numbers, a nested defined-length sequence, a private element,
    /// a group length and pixel data.
    func dataSet(_ syntax: TransferSyntax, definedLengthItems: Bool) -> ByteBuffer {
        var item = DataSetWriter(transferSyntax: syntax)
        item.write(Tag(0x0008, 0x1150), .UI, string: "1.2.840.10008.5.1.4.1.1.2")
        item.write(Tag(0x0008, 0x1155), .UI, string: "1.2.3.4.5")
        var writer = DataSetWriter(transferSyntax: syntax)
        writer.write(Tag(0x0008, 0x0000), uint32: 1234)  // group length: dropped
        writer.write(Tag(0x0008, 0x0016), .UI, string: "1.2.840.10008.5.1.4.1.1.2")
        writer.write(Tag(0x0008, 0x0018), .UI, string: "1.2.3.4.6")
        if definedLengthItems {
            let length = UInt32(item.buffer.readableBytes)
            writer.writeHeader(Tag(0x0008, 0x1140), .SQ, length: length + 8)
            writer.writeDelimiter(.item, length: length)
            writer.writeRaw(item.buffer)
        } else {
            writer.beginSequence(Tag(0x0008, 0x1140))
            writer.beginItem()
            writer.writeRaw(item.buffer)
            writer.endItem()
            writer.endSequence()
        }
        writer.write(Tag(0x0009, 0x1001), .LO, string: "private")
        writer.write(Tag(0x0010, 0x0010), .PN, string: "DURAND^HELENE")
        writer.write(Tag(0x0028, 0x0010), uint16: 4)
        writer.write(Tag(0x0028, 0x0011), uint16: 4)
        writer.write(.pixelData, .OW, [UInt8](0..<32))
        return writer.buffer
    }

    func file(_ dataSet: ByteBuffer, _ syntax: TransferSyntax) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("transcode-\(UUID()).dcm").path
        var bytes = Part10.fileMetaInformation(mediaStorageSOPClassUID: "1.2.840.10008.5.1.4.1.1.2",
                                               mediaStorageSOPInstanceUID: "1.2.3.4.6",
                                               transferSyntaxUID: syntax.uid, sourceApplicationEntityTitle: nil)
        var copy = dataSet
        bytes.writeBuffer(&copy)
        try Data(bytes.readableBytesView).write(to: URL(fileURLWithPath: path))
        return path
    }

    func read(_ path: String) throws -> (String?, [ParsedElement]) {
        var source = try FileByteSource(path: path)
        let meta = try Part10.readFileMetaInformation(from: &source)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path)).dropFirst(meta.dataSetOffset)
        return (meta.transferSyntaxUID, try DataSetParser.parse(ByteBuffer(bytes: bytes), transferSyntax: meta.transferSyntax!))
    }

    /// Elements without the group length, VRs as the dictionary knows them.
    func comparable(_ elements: [ParsedElement]) -> [String] {
        elements.filter { $0.tag.element != 0 }.map { element in
            "\(element.tag) \(Array(element.value.readableBytesView)) [\(element.items.map { comparable($0) })]"
        }
    }

    @Test(arguments: [false, true])
    func explicitToImplicitAndBack(definedLengthItems: Bool) throws {
        let original = try file(dataSet(explicitLE, definedLengthItems: definedLengthItems), explicitLE)
        let implicit = original + ".ile"
        let back = original + ".ele"
        defer { for path in [original, implicit, back] { unlink(path) } }
        try DataSetTranscoder.transcode(original, to: implicitLE.uid, destination: implicit)
        try DataSetTranscoder.transcode(implicit, to: explicitLE.uid, destination: back)
        let (syntax0, elements0) = try read(original)
        let (syntax1, elements1) = try read(implicit)
        let (syntax2, elements2) = try read(back)
        #expect(syntax0 == explicitLE.uid)
        #expect(syntax1 == implicitLE.uid)
        #expect(syntax2 == explicitLE.uid)
        #expect(comparable(elements1) == comparable(elements0))
        #expect(comparable(elements2) == comparable(elements0))
        #expect(!elements1.contains { $0.tag == Tag(0x0008, 0x0000) })
        #expect(elements2.first { $0.tag == .pixelData }?.vr == .OW)
        #expect(elements2.first { $0.tag == Tag(0x0009, 0x1001) }?.vr == .UN)  // unknown private: UN
    }

    @Test func refusesWhatItCannotReencode() throws {
        #expect(!DataSetTranscoder.canTranscode(from: "1.2.840.10008.1.2.4.50", to: explicitLE.uid))
        #expect(!DataSetTranscoder.canTranscode(from: explicitLE.uid, to: explicitLE.uid))
        let original = try file(dataSet(explicitLE, definedLengthItems: false), explicitLE)
        defer { unlink(original) }
        #expect(throws: DataSetError.self) {
            try DataSetTranscoder.transcode(original, to: "1.2.840.10008.1.2.4.50", destination: original + ".x")
        }
        #expect(!FileManager.default.fileExists(atPath: original + ".x"))
    }
}
