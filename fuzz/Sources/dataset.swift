// Target `dataset`: the data set walker (DataSetWalker through InstanceAttributes and
// DataSetReader) and DataSetParser, in every transfer syntax, deflate included.
// Input: [selector][…]: selector bits 0-1 pick the transfer syntax, bits 2-4 the entry:
//   0 walk the rest             4 the rest is a Part-10 file: meta, then the data set in its syntax
//   1 walk it cut in slices     5 locate / span a tag (uncompressed syntaxes)
//   2 DataSetParser             6 walk with a declared length
//   3 deflate the rest first    7 walk up to the pixel data
// (modes 1 and 3 let mutations act on the structure itself, not on compressed bytes).
import DICOMCore
import NIOCore

let syntaxes: [TransferSyntax] = [.implicitVRLittleEndian, .explicitVRLittleEndian, .explicitVRBigEndian,
                                  .deflatedExplicitVRLittleEndian]

func readAttributes(_ bytes: [UInt8], _ syntax: TransferSyntax, length: Int? = nil) -> InstanceAttributes? {
    var source = BufferByteSource(bytes)
    return try? InstanceAttributes.read(from: &source, transferSyntax: syntax, length: length)
}

func fuzzOne(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    let selector = input.byte()
    let syntax = syntaxes[Int(selector & 3)]
    switch (selector >> 2) & 7 {
    case 0:
        _ = readAttributes(input.rest(), syntax)
    case 1:
        let sizes = input.take(Int(input.byte() % 8))
        let rest = input.rest()
        let whole = readAttributes(rest, syntax)
        let slices = chunks(rest[...], sizes: sizes).map { ByteBuffer(bytes: $0) }
        guard var source = try? SlicesByteSource(slices) else { return }
        let sliced = try? InstanceAttributes.read(from: &source, transferSyntax: syntax, length: nil)
        check(sliced == whole, "the walk depends on how the data set is sliced")
    case 2:
        _ = try? DataSetParser.parse(ByteBuffer(bytes: input.rest()), transferSyntax: syntax.isDeflated ? .explicitVRLittleEndian : syntax)
    case 3:
        guard let deflated = try? DataSetWriter.deflated(ByteBuffer(bytes: input.rest())) else { return }
        _ = readAttributes(Array(deflated.readableBytesView), .deflatedExplicitVRLittleEndian)
    case 4:
        var source = BufferByteSource(input.rest())
        guard let meta = try? Part10.readFileMetaInformation(from: &source) else { return }
        _ = try? InstanceAttributes.read(from: &source, transferSyntax: meta.transferSyntax ?? .explicitVRLittleEndian,
                                         length: nil)
    case 5:
        let syntax = syntax.isDeflated ? TransferSyntax.implicitVRLittleEndian : syntax
        let tag = Tag(rawValue: UInt32(input.uint16()) << 16 | UInt32(input.uint16()))
        let rest = input.rest()
        var source = BufferByteSource(rest)
        _ = try? DataSetReader.locate(tag, in: &source, transferSyntax: syntax, length: nil)
        _ = try? DataSetReader.span(tag, transferSyntax: syntax, length: rest.count, source: { BufferByteSource(rest) })
    case 6:
        let shorter = Int(input.byte() % 16)
        let rest = input.rest()
        _ = readAttributes(rest, syntax, length: rest.count - shorter)
    default:
        var source = BufferByteSource(input.rest())
        _ = try? DataSetReader.readValues([.patientID, .studyInstanceUID], items: [.otherPatientIDsSequence: [.patientID]],
                                          from: &source, transferSyntax: syntax, length: nil, stoppingAt: .pixelData)
    }
}
