import NIOCore
import Testing
@testable import DICOMCore

@Suite struct InstanceAttributesTests {
    static let encodings: [(TransferSyntax, Bool)] = [
        (.implicitVRLittleEndian, false),
        (.explicitVRLittleEndian, false),
        (.explicitVRLittleEndian, true),
        (.explicitVRBigEndian, false),
    ]

    @Test(arguments: 0..<4)
    func readsEveryUncompressedEncoding(index: Int) throws {
        let (syntax, encapsulated) = Self.encodings[index]
        let data = Fixtures.dataSet(explicitVR: syntax.isExplicitVR, littleEndian: syntax.isLittleEndian,
                                    encapsulated: encapsulated)
        var source = BufferByteSource(data)
        let attributes = try InstanceAttributes.read(from: &source, transferSyntax: syntax, length: nil)
        #expect(attributes == Fixtures.expectedAttributes())
        #expect(source.remaining == 0)

        var bounded = BufferByteSource(data)
        let same = try InstanceAttributes.read(from: &bounded, transferSyntax: syntax, length: data.readableBytes)
        #expect(same == attributes)
    }

    @Test func stopsExactlyAtTheGivenLength() throws {
        var data = Fixtures.dataSet()
        let length = data.readableBytes
        data.writeString("TRAILING BYTES OF SOMETHING ELSE")
        var source = BufferByteSource(data)
        _ = try InstanceAttributes.read(from: &source, transferSyntax: .explicitVRLittleEndian, length: length)
        #expect(source.position == length)
    }

    @Test func lengthInsideAnElementIsAnError() {
        let data = Fixtures.dataSet()
        var source = BufferByteSource(data)
        #expect(throws: DataSetError.self) {
            try InstanceAttributes.read(from: &source, transferSyntax: .explicitVRLittleEndian,
                                        length: data.readableBytes - 3)
        }
    }

    @Test func trailingPaddingIsAllowed() throws {
        var w = DataSetWriter()
        w.writeRaw(Fixtures.dataSet())
        w.write(.dataSetTrailingPadding, .OB, [UInt8](repeating: 0, count: 100))
        var source = BufferByteSource(w.buffer)
        let attributes = try InstanceAttributes.read(from: &source, transferSyntax: .explicitVRLittleEndian,
                                                     length: w.buffer.readableBytes)
        #expect(attributes.patientID == "IPP123")
    }

    @Test func deflated() throws {
        let plain = Fixtures.dataSet(pixelBytes: 300_000)
        let compressed = try DataSetWriter.deflated(plain)
        #expect(compressed.readableBytes < plain.readableBytes / 10)
        var source = BufferByteSource(compressed)
        let attributes = try InstanceAttributes.read(from: &source, transferSyntax: .deflatedExplicitVRLittleEndian,
                                                     length: nil)
        #expect(attributes == Fixtures.expectedAttributes())

        var bounded = BufferByteSource(compressed)
        _ = try InstanceAttributes.read(from: &bounded, transferSyntax: .deflatedExplicitVRLittleEndian,
                                        length: compressed.readableBytes)
        #expect(bounded.position == compressed.readableBytes)
    }

    @Test func truncatedDeflateStreamIsDetected() throws {
        let compressed = try DataSetWriter.deflated(Fixtures.dataSet(pixelBytes: 100_000))
        for cut in [1, 10, compressed.readableBytes / 2, compressed.readableBytes - 2] {
            var source = BufferByteSource(compressed.getSlice(at: 0, length: cut)!)
            #expect(throws: DataSetError.self) {
                try InstanceAttributes.read(from: &source, transferSyntax: .deflatedExplicitVRLittleEndian, length: nil)
            }
        }
    }

    @Test func valueLongerThanTheDataIsTruncated() {
        var w = DataSetWriter()
        w.write(.sopClassUID, .UI, string: Fixtures.ctImageStorage)
        w.writeHeader(.pixelData, .OW, length: 0x7FFF_0000)
        w.writeRaw(ByteBuffer(bytes: [1, 2, 3, 4]))
        for length in [nil, w.buffer.readableBytes] as [Int?] {
            var source = BufferByteSource(w.buffer)
            #expect {
                try InstanceAttributes.read(from: &source, transferSyntax: .explicitVRLittleEndian, length: length)
            } throws: { ($0 as? DataSetError)?.code == .truncated }
        }
        // Undefined length everywhere (FFFFFFFF) on a non-sequence VR.
        var bad = DataSetWriter()
        bad.writeHeader(.patientName, .UT, length: 0xFFFF_FFFF)
        var source = BufferByteSource(bad.buffer)
        #expect(throws: DataSetError.self) {
            try InstanceAttributes.read(from: &source, transferSyntax: .explicitVRLittleEndian, length: nil)
        }
    }

    /// The INS travels in the Other Patient IDs Sequence, its OID either as the issuer or in the
    /// Issuer of Patient ID Qualifiers Sequence; items of defined and undefined length.
    @Test(arguments: 0..<4)
    func otherPatientIDsAreRead(index: Int) throws {
        let (syntax, _) = Self.encodings[index]
        var item1 = DataSetWriter(transferSyntax: syntax)
        item1.write(.patientID, .LO, string: "1234567890123")
        item1.write(.issuerOfPatientID, .LO, string: "1.2.250.1.213.1.4.10")
        var w = DataSetWriter(transferSyntax: syntax)
        w.write(.patientID, .LO, string: "IPP1")
        w.beginSequence(.otherPatientIDsSequence)
        w.beginItem(length: UInt32(item1.buffer.readableBytes))
        w.writeRaw(item1.buffer)
        w.beginItem()
        w.write(.patientID, .LO, string: "281047512345678")
        w.beginSequence(.issuerOfPatientIDQualifiersSequence)
        w.beginItem()
        w.write(.universalEntityID, .UT, string: "1.2.250.1.213.1.4.8")
        w.endItem()
        w.endSequence()
        w.endItem()
        w.endSequence()
        w.write(.studyDescription, .LO, string: "AFTER")
        var source = BufferByteSource(w.buffer)
        let attributes = try InstanceAttributes.read(from: &source, transferSyntax: syntax, length: nil)
        #expect(attributes.patientID == "IPP1")
        #expect(attributes.studyDescription == "AFTER")
        #expect(attributes.otherPatientIDs == [
            .init(patientID: "1234567890123", issuerOfPatientID: "1.2.250.1.213.1.4.10"),
            .init(patientID: "281047512345678", universalEntityID: "1.2.250.1.213.1.4.8"),
        ])
    }

    @Test func definedLengthOtherPatientIDsSequence() throws {
        var item = DataSetWriter()
        item.write(.patientID, .LO, string: "INS1")
        var items = DataSetWriter()
        items.beginItem(length: UInt32(item.buffer.readableBytes))
        items.writeRaw(item.buffer)
        var w = DataSetWriter()
        w.writeHeader(.otherPatientIDsSequence, .SQ, length: UInt32(items.buffer.readableBytes))
        w.writeRaw(items.buffer)
        w.write(.studyDescription, .LO, string: "AFTER")
        var source = BufferByteSource(w.buffer)
        let attributes = try InstanceAttributes.read(from: &source, transferSyntax: .explicitVRLittleEndian, length: nil)
        #expect(attributes.otherPatientIDs == [.init(patientID: "INS1")])
        #expect(attributes.studyDescription == "AFTER")

        // An item longer than its sequence is not read past it: the sequence's content is
        // skipped by its length, as before items were read, and the instance is not refused.
        var junk = DataSetWriter()
        junk.writeDelimiter(.item, length: 100)
        junk.writeRaw(ByteBuffer(bytes: [UInt8](repeating: 0x41, count: 8)))
        var bad = DataSetWriter()
        bad.writeHeader(.otherPatientIDsSequence, .SQ, length: UInt32(junk.buffer.readableBytes))
        bad.writeRaw(junk.buffer)
        bad.write(.studyDescription, .LO, string: "AFTER")
        var badSource = BufferByteSource(bad.buffer)
        let skipped = try InstanceAttributes.read(from: &badSource, transferSyntax: .explicitVRLittleEndian, length: nil)
        #expect(skipped.otherPatientIDs.isEmpty)
        #expect(skipped.studyDescription == "AFTER")
    }

    /// Memory stays bounded: items past the first 64 are walked, not kept.
    @Test func manyOtherPatientIDsKeepMemoryBounded() throws {
        var w = DataSetWriter()
        w.beginSequence(.otherPatientIDsSequence)
        for n in 0..<10_000 {
            w.beginItem()
            w.write(.patientID, .LO, string: "ID\(n)")
            w.endItem()
        }
        w.endSequence()
        w.write(.studyDescription, .LO, string: "AFTER")
        var source = BufferByteSource(w.buffer)
        let attributes = try InstanceAttributes.read(from: &source, transferSyntax: .explicitVRLittleEndian, length: nil)
        #expect(attributes.otherPatientIDs.count == 64)
        #expect(attributes.otherPatientIDs.last?.patientID == "ID63")
        #expect(attributes.studyDescription == "AFTER")
    }

    @Test func truncatedSequenceIsDetected() {
        var w = DataSetWriter()
        w.beginSequence(.otherPatientIDsSequence)
        w.beginItem()
        w.write(.patientID, .LO, string: "X")
        // no item delimiter, no sequence delimiter
        var source = BufferByteSource(w.buffer)
        #expect {
            try InstanceAttributes.read(from: &source, transferSyntax: .explicitVRLittleEndian, length: nil)
        } throws: { ($0 as? DataSetError)?.code == .truncated }
    }

    @Test func wantedValueTooLarge() {
        var w = DataSetWriter()
        w.write(.studyDescription, .UT, [UInt8](repeating: 0x41, count: 70_000))
        var source = BufferByteSource(w.buffer)
        #expect {
            try InstanceAttributes.read(from: &source, transferSyntax: .explicitVRLittleEndian, length: nil)
        } throws: { ($0 as? DataSetError)?.code == .valueTooLarge }
    }

    @Test func nestingIsBounded() {
        var w = DataSetWriter()
        for _ in 0..<40 {
            w.beginSequence(.otherPatientIDsSequence)
            w.beginItem()
        }
        var source = BufferByteSource(w.buffer)
        #expect {
            try InstanceAttributes.read(from: &source, transferSyntax: .explicitVRLittleEndian, length: nil)
        } throws: { ($0 as? DataSetError)?.code == .tooDeep }
    }

    @Test func strayDelimitersAndBadVRs() {
        var w = DataSetWriter()
        w.endItem()
        var source = BufferByteSource(w.buffer)
        #expect {
            try InstanceAttributes.read(from: &source, transferSyntax: .explicitVRLittleEndian, length: nil)
        } throws: { ($0 as? DataSetError)?.code == .unexpectedDelimiter }

        var bytes = BufferByteSource([0x10, 0x00, 0x10, 0x00, 0x7A, 0x7A, 0x02, 0x00, 0x41, 0x41] as [UInt8])
        #expect {
            try InstanceAttributes.read(from: &bytes, transferSyntax: .explicitVRLittleEndian, length: nil)
        } throws: { ($0 as? DataSetError)?.code == .invalidVR }
    }

    @Test func emptyDataSet() throws {
        var source = BufferByteSource(ByteBuffer())
        #expect(try InstanceAttributes.read(from: &source, transferSyntax: .implicitVRLittleEndian, length: nil)
                == InstanceAttributes())
    }

    /// Every prefix, and random corruptions, of valid data sets must throw or succeed, never trap.
    @Test(arguments: 0..<4)
    func prefixesAndCorruptionsNeverCrash(index: Int) {
        let (syntax, encapsulated) = Self.encodings[index]
        let data = Fixtures.dataSet(explicitVR: syntax.isExplicitVR, littleEndian: syntax.isLittleEndian,
                                    encapsulated: encapsulated, pixelBytes: 16)
        let bytes = Array(data.readableBytesView)
        for cut in 0..<bytes.count {
            var source = BufferByteSource(bytes[0..<cut])
            if let _ = try? InstanceAttributes.read(from: &source, transferSyntax: syntax, length: nil) {
                // Only cuts on an element boundary can succeed.
                #expect(source.remaining == 0)
            }
            var bounded = BufferByteSource(bytes)
            _ = try? InstanceAttributes.read(from: &bounded, transferSyntax: syntax, length: cut)
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            var mutated = bytes
            for _ in 0..<Int.random(in: 1...8, using: &generator) {
                mutated[Int.random(in: 0..<mutated.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            var source = BufferByteSource(mutated)
            _ = try? InstanceAttributes.read(from: &source, transferSyntax: syntax, length: nil)
            var deflatedSource = BufferByteSource(mutated)
            _ = try? InstanceAttributes.read(from: &deflatedSource, transferSyntax: .deflatedExplicitVRLittleEndian,
                                             length: nil)
        }
        for _ in 0..<500 {
            let random = (0..<Int.random(in: 0...64, using: &generator)).map { _ in UInt8.random(in: 0...255) }
            var source = BufferByteSource(random)
            _ = try? InstanceAttributes.read(from: &source, transferSyntax: syntax, length: nil)
        }
    }
}
