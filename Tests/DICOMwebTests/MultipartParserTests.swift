import NIOCore
import Testing
@testable import DICOMweb

@Suite struct MultipartParserTests {
    static let message = Array((
        "preamble to ignore\r\n"
        + "--abc \r\n"
        + "Content-Type: application/dicom\r\n"
        + "Content-Length: 22\r\n\r\n"
        + "first\r\n--ab part\r\n--abx"
        + "\r\n--abc\r\n"
        + "\r\n"
        + "second"
        + "\r\n--abc--\r\n"
        + "epilogue").utf8)

    /// Feeds `bytes` in pieces of the given sizes (cycled); returns parts (headers, body).
    static func parse(_ bytes: [UInt8], pieces: [Int], boundary: String = "abc") throws
        -> (parts: [([String: String], [UInt8])], largestBody: Int)
    {
        var parser = MultipartParser(boundary: boundary)
        var parts: [([String: String], [UInt8])] = []
        var offset = 0, piece = 0, largest = 0, open = false
        while offset < bytes.count {
            let size = min(pieces[piece % pieces.count], bytes.count - offset)
            piece += 1
            for event in try parser.feed(ByteBuffer(bytes: bytes[offset..<(offset + size)])) {
                switch event {
                case .partStart(let headers):
                    #expect(!open)
                    open = true
                    parts.append((headers, []))
                case .body(let chunk):
                    #expect(open)
                    largest = max(largest, chunk.readableBytes)
                    parts[parts.count - 1].1 += chunk.readableBytesView
                case .partEnd:
                    #expect(open)
                    open = false
                }
            }
            offset += size
        }
        try parser.finish()
        return (parts, largest)
    }

    @Test(arguments: [[Int.max], [1], [2], [3, 7], [5, 1, 11], [64]])
    func splitsAnywhere(pieces: [Int]) throws {
        let (parts, _) = try Self.parse(Self.message, pieces: pieces)
        #expect(parts.count == 2)
        #expect(parts[0].0 == ["content-type": "application/dicom", "content-length": "22"])
        #expect(parts[0].1 == Array("first\r\n--ab part\r\n--abx".utf8))
        #expect(parts[1].0 == [:])
        #expect(parts[1].1 == Array("second".utf8))
    }

    @Test func largeBodyIsPassedOnInBoundedPieces() throws {
        let payload = (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let message = Array("--b\r\nContent-Type: application/dicom\r\n\r\n".utf8) + payload + Array("\r\n--b--".utf8)
        let (parts, largest) = try Self.parse(message, pieces: [8192], boundary: "b")
        #expect(parts.count == 1)
        #expect(parts[0].1 == payload)
        #expect(largest <= 8192 + 8)
    }

    @Test func truncatedBodyFailsAtFinish() throws {
        var parser = MultipartParser(boundary: "abc")
        _ = try parser.feed(ByteBuffer(string: "--abc\r\n\r\nhalf a part"))
        #expect(throws: MultipartParser.Error.self) { try parser.finish() }
    }

    @Test func oversizedHeadersAreRefused() {
        var parser = MultipartParser(boundary: "abc", maximumHeaderBytes: 100)
        #expect(throws: MultipartParser.Error.self) {
            _ = try parser.feed(ByteBuffer(string: "--abc\r\nX: " + String(repeating: "y", count: 200)))
        }
    }

    @Test(arguments: [
        ("multipart/related; type=\"application/dicom\"; boundary=abc", "abc"),
        ("multipart/related;boundary=\"a b;c\"", nil),
        ("multipart/related; type=application/dicom; Boundary=\"xyz\"", "xyz"),
        ("multipart/related", nil),
    ] as [(String, String?)])
    func boundaryFromContentType(header: String, boundary: String?) {
        if header.contains("a b;c") {
            // A quoted boundary containing ';' is not supported (none of the servers send one).
            #expect(MultipartParser.boundary(fromContentType: header) != "a b;c")
        } else {
            #expect(MultipartParser.boundary(fromContentType: header) == boundary)
        }
    }
}
