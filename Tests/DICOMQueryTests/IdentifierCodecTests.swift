import DICOMCore
import NIOCore
import Testing
@testable import DICOMQuery

/// Identifiers between their encoding and text values (docs/community.md, Specific Character
/// Set both ways).
@Suite struct IdentifierCodecTests {
    let implicitLE = TransferSyntax.implicitVRLittleEndian.uid

    /// A C-FIND identifier as a PACS sends it: Latin-1 name, INS in a sequence, a US value.
    func latin1Identifier(transferSyntax: TransferSyntax) -> ByteBuffer {
        var writer = DataSetWriter(transferSyntax: transferSyntax)
        writer.write(Tag(0x0008, 0x0005), .CS, string: "ISO_IR 100")
        writer.write(Tag(0x0008, 0x0052), .CS, string: "STUDY")
        writer.write(Tag(0x0010, 0x0010), .PN, [0x44, 0x55, 0x52, 0x41, 0x4E, 0x44, 0x5E, 0x48, 0xE9, 0x6C, 0xE8, 0x6E, 0x65])
        writer.write(Tag(0x0010, 0x0020), .LO, [UInt8]())
        writer.beginSequence(Tag(0x0010, 0x1002))
        writer.beginItem()
        writer.write(Tag(0x0010, 0x0020), .LO, string: "1234567890123")
        writer.write(Tag(0x0010, 0x0021), .LO, string: "1.2.250.1.213.1.4.8")
        writer.endItem()
        writer.endSequence()
        writer.write(Tag(0x0028, 0x0010), uint16: 512)
        return writer.buffer
    }

    @Test(arguments: [TransferSyntax.implicitVRLittleEndian, .explicitVRLittleEndian, .explicitVRBigEndian])
    func decodesValuesSequencesAndTheCharacterSet(transferSyntax: TransferSyntax) throws {
        let (attributes, characterSet) = try IdentifierCodec.decode(latin1Identifier(transferSyntax: transferSyntax),
                                                                    transferSyntax: transferSyntax.uid)
        #expect(characterSet.values == ["ISO_IR 100"])
        #expect(!attributes.contains { $0.tag == Tag(0x0008, 0x0005) })
        #expect(attributes.first { $0.tag == Tag(0x0010, 0x0010) }?.values == ["DURAND^Hélène"])
        #expect(attributes.first { $0.tag == Tag(0x0010, 0x0020) }?.values == [])
        let sequence = try #require(attributes.first { $0.tag == Tag(0x0010, 0x1002) })
        #expect(sequence.vr == "SQ")
        #expect(sequence.items.count == 1)
        #expect(sequence.items[0].first { $0.tag == Tag(0x0010, 0x0021) }?.values == ["1.2.250.1.213.1.4.8"])
        #expect(attributes.first { $0.tag == Tag(0x0028, 0x0010) }?.values == ["512"])
    }

    @Test func answersInTheRequestedCharacterSetWhenEveryValueFits() throws {
        let latin1 = SpecificCharacterSet(rawValue: "ISO_IR 100")
        let name = QueryAttribute(tag: Tag(0x0010, 0x0010), vr: "PN", values: ["DURAND^Hélène"])
        let encoded = IdentifierCodec.encode([name], requested: latin1, transferSyntax: implicitLE)
        let bytes = Array(encoded.readableBytesView)
        #expect(bytes.contains(0xE9))  // é in Latin-1, not UTF-8's C3 A9
        let (decoded, characterSet) = try IdentifierCodec.decode(encoded, transferSyntax: implicitLE)
        #expect(characterSet.values == ["ISO_IR 100"])
        #expect(decoded == [name])
    }

    @Test func answersInUTF8WhenAValueDoesNotFit() throws {
        let name = QueryAttribute(tag: Tag(0x0010, 0x0010), vr: "PN", values: ["KOWALSKI^Łukasz"])
        for requested in [SpecificCharacterSet.default, SpecificCharacterSet(rawValue: "ISO_IR 100")] {
            let encoded = IdentifierCodec.encode([name], requested: requested, transferSyntax: implicitLE)
            let (decoded, characterSet) = try IdentifierCodec.decode(encoded, transferSyntax: implicitLE)
            #expect(characterSet.values == ["ISO_IR 192"])
            #expect(decoded == [name])
        }
    }

    @Test func plainASCIIAnswersNameNoCharacterSet() throws {
        let attributes = [QueryAttribute(tag: Tag(0x0008, 0x0052), vr: "CS", values: ["STUDY"]),
                          QueryAttribute(tag: Tag(0x0010, 0x0010), vr: "PN", values: ["MARTIN^JEAN"]),
                          QueryAttribute(tag: Tag(0x0020, 0x1208), vr: "IS", values: ["40"])]
        let encoded = IdentifierCodec.encode(attributes, requested: .default,
                                             transferSyntax: TransferSyntax.explicitVRLittleEndian.uid)
        let elements = try DataSetParser.parse(encoded, transferSyntax: .explicitVRLittleEndian)
        #expect(elements.map(\.tag.rawValue) == [0x0008_0052, 0x0010_0010, 0x0020_1208])
        let (decoded, _) = try IdentifierCodec.decode(encoded, transferSyntax: TransferSyntax.explicitVRLittleEndian.uid)
        #expect(decoded == attributes)
    }

    @Test func truncatedIdentifiersAreErrorsNotTraps() {
        let whole = latin1Identifier(transferSyntax: .explicitVRLittleEndian)
        for length in 1..<whole.readableBytes {
            let prefix = whole.getSlice(at: whole.readerIndex, length: length)!
            // Some prefixes end on an element boundary and are valid shorter data sets.
            _ = try? IdentifierCodec.decode(prefix, transferSyntax: TransferSyntax.explicitVRLittleEndian.uid)
        }
        var cut = whole.getSlice(at: whole.readerIndex, length: whole.readableBytes - 1)!
        cut.moveWriterIndex(to: cut.writerIndex)
        #expect(throws: DataSetError.self) {
            try IdentifierCodec.decode(cut, transferSyntax: TransferSyntax.explicitVRLittleEndian.uid)
        }
    }
}
