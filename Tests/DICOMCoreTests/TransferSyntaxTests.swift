import Testing
@testable import DICOMCore

@Suite struct TransferSyntaxTests {
    @Test func statics() {
        let implicit = TransferSyntax.implicitVRLittleEndian
        #expect(!implicit.isExplicitVR && implicit.isLittleEndian && !implicit.isDeflated && !implicit.isEncapsulated)
        let explicit = TransferSyntax.explicitVRLittleEndian
        #expect(explicit.isExplicitVR && explicit.isLittleEndian && !explicit.isDeflated && !explicit.isEncapsulated)
        let big = TransferSyntax.explicitVRBigEndian
        #expect(big.isExplicitVR && !big.isLittleEndian && !big.isDeflated && big.isRetired)
        let deflated = TransferSyntax.deflatedExplicitVRLittleEndian
        #expect(deflated.isExplicitVR && deflated.isLittleEndian && deflated.isDeflated && !deflated.isEncapsulated)
        #expect(implicit.name == "Implicit VR Little Endian")
    }

    /// (uid, explicit, little, deflated, encapsulated)
    @Test(arguments: [
        ("1.2.840.10008.1.2.1.98", true, true, false, true),   // encapsulated uncompressed
        ("1.2.840.10008.1.2.4.50", true, true, false, true),   // JPEG baseline
        ("1.2.840.10008.1.2.4.70", true, true, false, true),   // JPEG lossless SV1
        ("1.2.840.10008.1.2.4.80", true, true, false, true),   // JPEG-LS
        ("1.2.840.10008.1.2.4.90", true, true, false, true),   // JPEG 2000
        ("1.2.840.10008.1.2.4.201", true, true, false, true),  // HTJ2K
        ("1.2.840.10008.1.2.4.94", true, true, false, false),  // JPIP referenced
        ("1.2.840.10008.1.2.4.95", true, true, true, false),   // JPIP referenced deflate
        ("1.2.840.10008.1.2.4.205", true, true, true, false),  // JPIP HTJ2K referenced deflate
        ("1.2.840.10008.1.2.4.100", true, true, false, true),  // MPEG2
        ("1.2.840.10008.1.2.4.102", true, true, false, true),  // MPEG-4
        ("1.2.840.10008.1.2.4.107", true, true, false, true),  // HEVC
        ("1.2.840.10008.1.2.5", true, true, false, true),      // RLE
        ("1.2.840.10008.1.2.7.1", true, true, false, false),   // SMPTE ST 2110
        ("1.2.840.10008.1.20", false, true, false, false),     // Papyrus 3 implicit
        ("1.2.840.10008.1.2.8.1", true, true, false, true),    // Deflated Image Frame Compression
    ])
    func flags(uid: String, explicit: Bool, little: Bool, deflated: Bool, encapsulated: Bool) throws {
        let syntax = try #require(TransferSyntax(uid: uid))
        #expect(syntax.isExplicitVR == explicit)
        #expect(syntax.isLittleEndian == little)
        #expect(syntax.isDeflated == deflated)
        #expect(syntax.isEncapsulated == encapsulated)
    }

    @Test func everyRegisteredSyntax() {
        for uid in UIDRegistry.transferSyntaxUIDs {
            let syntax = TransferSyntax(uid: uid)
            if uid.hasPrefix("1.2.840.10008.1.2.6.") {
                #expect(syntax == nil, "\(uid) is not a binary encoding")
            } else {
                #expect(syntax != nil, "\(uid)")
                // Every transfer syntax except Implicit VR LE (and Papyrus) is explicit; only one is big endian.
                #expect(syntax?.isLittleEndian == (uid != "1.2.840.10008.1.2.2"))
            }
        }
    }

    @Test func rejectsUnknownAndTrimsPadding() {
        #expect(TransferSyntax(uid: "1.2.3") == nil)
        #expect(TransferSyntax(uid: "1.2.840.10008.5.1.4.1.1.2") == nil)  // a SOP class
        #expect(TransferSyntax(uid: "1.2.840.10008.1.2\0") == .implicitVRLittleEndian)
    }
}
