import Crypto
import Testing
@testable import Spool

enum SHA256Hex {
    static func of(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).hexString }
}

@Suite struct JournalRecordTests {
    let header = JournalRecordHeader(type: .dicomInstance, payloadLength: 123_456,
                                     checksum: .crc32c(CRC32C.checksum(Array("payload".utf8))),
                                     fields: [JournalFields.sopInstanceUID: "1.2.3", JournalFields.dataSetOffset: "332",
                                              JournalFields.callingAETitle: "IRM-É"])

    @Test func aHeaderRoundTrips() throws {
        let bytes = try header.encoded()
        #expect(JournalRecordHeader.prefix(bytes) == .header(length: bytes.count))
        #expect(try JournalRecordHeader.decode(bytes) == header)
    }

    /// The first journals checked payloads with a SHA-256 (format version 1): still read.
    @Test func aVersionOneHeaderWithItsSHA256RoundTrips() throws {
        var old = header
        old.checksum = .sha256(SHA256Hex.of(Array("payload".utf8)))
        let bytes = try old.encoded()
        #expect(bytes[4] == 1)
        #expect(try JournalRecordHeader.decode(bytes) == old)
        #expect(try JournalRecordHeader.decode(header.encoded()).checksum.sha256 == nil)
        #expect(try header.encoded()[4] == 2)
        #expect(try header.encoded().count == bytes.count)
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
        // Continued over pieces, and over lengths that cross the 8- and 64-byte steps.
        #expect(CRC32C.update(CRC32C.checksum(Array("1234".utf8)), Array("56789".utf8)) == 0xE306_9283)
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        for split in [0, 1, 7, 63, 64, 65, 500, 999, 1000] {
            #expect(CRC32C.update(CRC32C.checksum(bytes[..<split]), bytes[split...]) == CRC32C.checksum(bytes))
            #expect(CRC32C.checksum(bytes[..<split]) == Self.bitwiseCRC32C(bytes[..<split]))
        }
    }

    /// The definition, one bit at a time: what the SSE4.2 path must agree with.
    static func bitwiseCRC32C(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        }
        return ~crc
    }
}
