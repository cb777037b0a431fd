import Crypto
import Testing
@testable import Spool

enum SHA256Hex {
    static func of(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).hexString }
}

@Suite struct JournalRecordTests {
    let header = JournalRecordHeader(type: .dicomInstance, payloadLength: 123_456,
                                     sha256: SHA256Hex.of(Array("payload".utf8)),
                                     fields: [JournalFields.sopInstanceUID: "1.2.3", JournalFields.dataSetOffset: "332",
                                              JournalFields.callingAETitle: "IRM-É"])

    @Test func aHeaderRoundTrips() throws {
        let bytes = try header.encoded()
        #expect(JournalRecordHeader.prefix(bytes) == .header(length: bytes.count))
        #expect(try JournalRecordHeader.decode(bytes) == header)
    }

    @Test func aPaddedHeaderRoundTripsAtItsReservedSize() throws {
        let bytes = try header.encoded(paddedTo: 4096)
        #expect(bytes.count == 4096)
        #expect(try JournalRecordHeader.decode(bytes) == header)
    }

    @Test func anyFlippedByteIsDetected() throws {
        let bytes = try header.encoded()
        for index in bytes.indices {
            var damaged = bytes
            damaged[index] ^= 0x10
            #expect(throws: JournalError.self) { try JournalRecordHeader.decode(damaged) }
        }
    }

    @Test func zerosAreTheEndAndForeignBytesAreInvalid() {
        #expect(JournalRecordHeader.prefix([UInt8](repeating: 0, count: 12)) == .end)
        guard case .invalid = JournalRecordHeader.prefix(Array("DICM-not-a-header".utf8)) else {
            Issue.record("foreign bytes taken for a header")
            return
        }
    }

    /// RFC 3720 B.4 test vector.
    @Test func crc32cMatchesTheStandardVector() {
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }
}
