import Foundation
import NIOCore
import Testing
@testable import DICOMweb

@Suite struct STOWRequestBodyTests {
    static func makeFiles(_ sizes: [Int]) throws -> (directory: URL, paths: [String], contents: [[UInt8]]) {
        let directory = try TestInstances.temporaryDirectory("body")
        var paths: [String] = [], contents: [[UInt8]] = []
        for (index, size) in sizes.enumerated() {
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }
            let url = directory.appendingPathComponent("f\(index).dcm")
            try Data(bytes).write(to: url)
            paths.append(url.path)
            contents.append(bytes)
        }
        return (directory, paths, contents)
    }

    static func collect(_ body: STOWRequestBody) async throws -> (bytes: [UInt8], largestChunk: Int, chunks: Int) {
        var bytes: [UInt8] = [], largest = 0, count = 0
        for try await chunk in body {
            bytes += chunk.readableBytesView
            largest = max(largest, chunk.readableBytes)
            count += 1
        }
        return (bytes, largest, count)
    }

    @Test(arguments: [1, 7, 1024, 256 * 1024])
    func layoutAndLength(chunkSize: Int) async throws {
        let (directory, paths, contents) = try Self.makeFiles([0, 1, 5000, 70_001])
        defer { try? FileManager.default.removeItem(at: directory) }
        let body = try STOWRequestBody(files: paths, boundary: "b0undary", chunkSize: chunkSize)
        #expect(body.contentType == "multipart/related; type=\"application/dicom\"; boundary=b0undary")
        var expected: [UInt8] = []
        for (index, content) in contents.enumerated() {
            if index > 0 { expected += Array("\r\n".utf8) }
            expected += Array("--b0undary\r\nContent-Type: application/dicom\r\n\r\n".utf8)
            expected += content
        }
        expected += Array("\r\n--b0undary--\r\n".utf8)
        let (bytes, largest, _) = try await Self.collect(body)
        #expect(bytes == expected)
        #expect(body.contentLength == Int64(expected.count))
        // Memory: no chunk larger than the chunk size (or than a part header).
        #expect(largest <= max(chunkSize, 64))
    }

    @Test func emptyBodyIsJustTheCloseDelimiter() async throws {
        let body = STOWRequestBody(parts: [], boundary: "x")
        let (bytes, _, _) = try await Self.collect(body)
        #expect(String(decoding: bytes, as: UTF8.self) == "--x--\r\n")
        #expect(body.contentLength == Int64(bytes.count))
    }

    @Test func randomBoundaryIs32HexDigits() {
        let a = STOWRequestBody.randomBoundary(), b = STOWRequestBody.randomBoundary()
        #expect(a.utf8.count == 32)
        #expect(a.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(a != b)
    }

    @Test func missingFileIsALocalFileError() {
        #expect(throws: DICOMwebError.self) {
            try STOWRequestBody(files: ["/nonexistent/passerelle/x.dcm"])
        }
        do {
            _ = try STOWRequestBody(files: ["/nonexistent/passerelle/x.dcm"])
        } catch {
            #expect(error.code == .localFile)
            #expect(error.kind == .permanent)
        }
    }

    @Test func fileThatShrankFailsTheStream() async throws {
        let (directory, paths, _) = try Self.makeFiles([10_000])
        defer { try? FileManager.default.removeItem(at: directory) }
        let body = try STOWRequestBody(files: paths, chunkSize: 4096)
        try Data(repeating: 1, count: 100).write(to: URL(fileURLWithPath: paths[0]))
        await #expect(throws: DICOMwebError.self) { _ = try await Self.collect(body) }
    }

    /// A 64 MiB file streams in 256 KiB chunks: memory does not follow the file size.
    @Test func largeFileStreamsInBoundedChunks() async throws {
        let directory = try TestInstances.temporaryDirectory("large")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("large.dcm").path
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: 64 << 20)
        try handle.close()
        let body = try STOWRequestBody(files: [path])
        var total: Int64 = 0, largest = 0
        for try await chunk in body {
            total += Int64(chunk.readableBytes)
            largest = max(largest, chunk.readableBytes)
        }
        #expect(total == body.contentLength)
        #expect(largest == STOWRequestBody.defaultChunkSize)
    }
}
