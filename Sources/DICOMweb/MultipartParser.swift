import Foundation
import NIOCore

/// A streaming reader of `multipart/related` bodies (RFC 2046 §5.1, RFC 2387), as WADO-RS
/// sends them (PS3.18 §8.7.3.3). Pure: bytes in, events out; no I/O.
///
/// Memory is bounded whatever the part sizes: body bytes are passed on as they come, holding
/// back only the few bytes that could be the start of the next delimiter (`CRLF--boundary`);
/// header blocks larger than `maximumHeaderBytes` are refused.
public struct MultipartParser: Sendable {
    public enum Event: Sendable, Hashable {
        /// A part begins; header names in lower case.
        case partStart(headers: [String: String])
        /// Bytes of the current part's body, in order.
        case body(ByteBuffer)
        /// The current part's body is complete.
        case partEnd
    }

    public struct Error: Swift.Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String
    }

    enum State: Sendable {
        case preamble
        case afterDelimiter
        case headers
        case body
        case epilogue
    }

    public let boundary: String
    public let maximumHeaderBytes: Int
    let delimiter: [UInt8]  // CRLF "--" boundary
    var state: State = .preamble
    var pending: ByteBuffer

    public init(boundary: String, maximumHeaderBytes: Int = 16 * 1024) {
        self.boundary = boundary
        self.maximumHeaderBytes = maximumHeaderBytes
        self.delimiter = Array("\r\n--\(boundary)".utf8)
        // A virtual CRLF so the first delimiter, at the very start, looks like the others.
        self.pending = ByteBuffer(string: "\r\n")
    }

    /// The boundary parameter of a `Content-Type` header value (quoted or not).
    public static func boundary(fromContentType contentType: String) -> String? {
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingSpaces().lowercased() == "boundary" else { continue }
            var value = pair[1].trimmingSpaces()
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return value.isEmpty ? nil : value
        }
        return nil
    }

    /// True once the close delimiter (`--boundary--`) was read.
    public var isComplete: Bool { if case .epilogue = state { true } else { false } }

    /// Feeds bytes; returns what they completed.
    public mutating func feed(_ bytes: ByteBuffer) throws(MultipartParser.Error) -> [Event] {
        if case .epilogue = state { return [] }
        if pending.readableBytes == 0 {
            pending = bytes  // no copy: most chunks start with nothing pending
        } else {
            var bytes = bytes
            pending.writeBuffer(&bytes)
        }
        var events: [Event] = []
        while true {
            switch state {
            case .preamble:
                guard let at = find(delimiter) else {
                    // Keep only what could start a delimiter.
                    let keep = min(pending.readableBytes, delimiter.count - 1)
                    pending.moveReaderIndex(forwardBy: pending.readableBytes - keep)
                    pending.discardReadBytes()
                    return events
                }
                pending.moveReaderIndex(forwardBy: at + delimiter.count)
                state = .afterDelimiter
            case .afterDelimiter:
                // "--" closes; else optional transport padding then CRLF.
                guard pending.readableBytes >= 2 else { return events }
                let view = pending.readableBytesView
                if view.starts(with: [UInt8(ascii: "-"), UInt8(ascii: "-")]) {
                    state = .epilogue
                    pending.clear()
                    return events
                }
                guard let crlf = find([0x0D, 0x0A]) else {
                    if pending.readableBytes > 256 { throw Error(description: "multipart: no CRLF after a delimiter") }
                    return events
                }
                let padding = view.prefix(crlf)
                guard padding.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) else {
                    throw Error(description: "multipart: garbage after a delimiter")
                }
                pending.moveReaderIndex(forwardBy: crlf + 2)
                state = .headers
            case .headers:
                let headers: [String: String]
                if pending.readableBytesView.starts(with: [0x0D, 0x0A]) {
                    pending.moveReaderIndex(forwardBy: 2)
                    headers = [:]
                } else {
                    guard let end = find([0x0D, 0x0A, 0x0D, 0x0A]) else {
                        if pending.readableBytes > maximumHeaderBytes {
                            throw Error(description: "multipart: part headers longer than \(maximumHeaderBytes) bytes")
                        }
                        return events
                    }
                    let text = pending.readString(length: end) ?? ""
                    pending.moveReaderIndex(forwardBy: 4)
                    headers = MultipartParser.parseHeaders(text)
                }
                events.append(.partStart(headers: headers))
                state = .body
            case .body:
                if let at = find(delimiter) {
                    if at > 0, let slice = pending.readSlice(length: at) { events.append(.body(slice)) }
                    pending.moveReaderIndex(forwardBy: delimiter.count)
                    events.append(.partEnd)
                    state = .afterDelimiter
                    continue
                }
                let safe = pending.readableBytes - (delimiter.count - 1)
                if safe > 0, let slice = pending.readSlice(length: safe) {
                    events.append(.body(slice))
                }
                pending.discardReadBytes()
                return events
            case .epilogue:
                return events
            }
        }
    }

    /// The end of the input: throws unless the close delimiter was seen.
    public func finish() throws(MultipartParser.Error) {
        guard isComplete else { throw Error(description: "multipart: body ended before the close delimiter") }
    }

    /// Offset of `needle` in the readable bytes of `pending` (memchr and memcmp: bodies are
    /// megabytes, a byte-by-byte generic search showed in profiles).
    func find(_ needle: [UInt8]) -> Int? {
        guard let first = needle.first, pending.readableBytes >= needle.count else { return nil }
        return pending.withUnsafeReadableBytes { haystack -> Int? in
            guard let base = haystack.baseAddress else { return nil }
            return needle.withUnsafeBytes { pattern -> Int? in
                let last = haystack.count - needle.count  // the last offset a match can start at
                var offset = 0
                while offset <= last {
                    guard let hit = memchr(base + offset, Int32(first), last - offset + 1) else { return nil }
                    let at = UnsafeRawPointer(hit) - base
                    if memcmp(base + at, pattern.baseAddress!, needle.count) == 0 { return at }
                    offset = at + 1
                }
                return nil
            }
        }
    }

    static func parseHeaders(_ text: String) -> [String: String] {
        var headers: [String: String] = [:]
        for line in text.split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].trimmingSpaces().lowercased()] = line[line.index(after: colon)...].trimmingSpaces()
        }
        return headers
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
