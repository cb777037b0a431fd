import DICOMCore
import NIOCore
import Testing

@testable import DICOMQuery

/// Inputs found by `fuzz/run identifier` (fuzz/README.md), kept as they crashed.
@Suite struct IdentifierFuzzRegressionTests {
    /// An explicit VR big endian identifier with an Item tag (FFFE,E000) among its top-level
    /// elements: the parser took it for an attribute, the codec answered it back with a VR
    /// (which delimiter tags never have), and that answer did not decode. Found as "an encoded
    /// answer does not decode".
    static let itemTagAtTopLevel: [UInt8] = [
        0x00, 0x08, 0x00, 0x05, 0x43, 0x53, 0x00, 0x0a, 0x49, 0x53, 0x4f, 0x5f, 0x49, 0x52, 0x20, 0x00, 0x00, 0x2e,
        0xff, 0xfe, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x26, 0x00, 0x10, 0x00, 0x20, 0x4c, 0x4f, 0x00, 0x0e, 0x33,
        0x34, 0x30, 0x30, 0x32, 0x30, 0x37, 0x35, 0x30, 0x32, 0x34, 0x36, 0x38, 0x20, 0x00, 0x10, 0x00, 0x21, 0x4c,
        0x4f, 0x00, 0x08, 0x49, 0x4e, 0x53, 0x2d, 0x4e, 0x49, 0x52, 0x20,
    ]

    @Test func itemTagAmongAttributesIsRefused() throws {
        let uid = TransferSyntax.explicitVRBigEndian.uid
        #expect(Self.itemTagAtTopLevel.count == 64)
        // Refused: accepted, the answer made of it (the item written back with a VR) did not decode.
        #expect(throws: DataSetError.self) {
            _ = try IdentifierCodec.decode(ByteBuffer(bytes: Self.itemTagAtTopLevel), transferSyntax: uid)
        }
    }
}
