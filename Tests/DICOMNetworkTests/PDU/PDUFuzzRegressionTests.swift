import NIOCore
import Testing

@testable import DICOMNetwork

/// Inputs found by `fuzz/run pdu` (fuzz/README.md), kept as they crashed.
@Suite struct PDUFuzzRegressionTests {
    /// An A-ASSOCIATE-RQ whose AE titles hold bytes outside ASCII (0xFF): they were decoded as
    /// U+FFFD, whose UTF-8 form (3 bytes) no longer fits the 16-byte field, so the titles
    /// changed on re-encoding (the A-ASSOCIATE-AC echoes them). Found as "associateRQ does not
    /// survive encode → decode".
    static let nonASCIIAETitles = bytes(hex: """
        0100000001d100010000504153534552454c4c452020ffffffffffffff2c4c4954592020202020202020000000000000000000000000000000\
        000000000000000000000000000000000010000015312e322e3834302e31303030382e332e312e312e312000002e0100000030000011312e32\
        2e3834302e31303030382e312e3140000011312e322e3834302e31303030382e312e322000007e0300000030000019312e322e38b4302e3130\
        3030382e352e312e342e312e312e3240000013312e322e3834302e31303030382e312e322e3140000011312e322e3834302e31303030382e31\
        2e3240000016312e322e3834302e31303030382e312e322e312e393940000013312e322e3834302e31303030382e312e322e32200000380500\
        00003000001b312e322e3834302e31303030382e352e312e342e312e322e322e3140000011312e322e3834302e31303030382e312e32500000\
        80510000040000400052000020312e322e3832362e302e312e333638303034332e392e333831312e332e302e345500000e50594e4554444943\
        4f4d5f33303453000004000100015400001d0019312e322e3834302e31303030382e352e312e342e312e312e3201015800001502010009726164\
        696f6c6f67790006736563726574
        """)

    @Test func aeTitlesWithNonASCIIBytesSurviveReencoding() throws {
        var buffer = ByteBuffer(bytes: Self.nonASCIIAETitles)
        let decoder = PDUDecoder(maximumPDULength: 16384, maximumControlPDULength: 4096)
        let pdu = try #require(try decoder.decodePDU(buffer: &buffer))
        guard case .associateRQ(let request) = pdu else { Issue.record("not an A-ASSOCIATE-RQ: \(pdu)"); return }
        // AE titles are ASCII (PS3.5 Table 6.2-1): a byte outside it reads as "?", one byte for one.
        #expect(request.calledAETitle == "PASSERELLE  ????")
        #expect(request.callingAETitle == "???,LITY")
        var again = pdu.encoded()
        #expect(try decoder.decodePDU(buffer: &again) == pdu)
    }
}
