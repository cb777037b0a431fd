import NIOCore

/// Cuts an MLLP byte stream into frames (HL7 v2.5.1 Appendix C): bytes in, events out, no I/O.
///
/// Lenient where senders differ in practice, strict where a peer is plainly not speaking MLLP:
/// - the CR after the end block is optional, and whitespace between frames (CR, LF, space,
///   tab) is skipped, so a CR arriving with the next read changes nothing;
/// - a start block inside a frame means the sender gave up on that frame and began again:
///   the partial frame is reported as ``Event/discarded(size:)``, never as a message;
/// - any other byte between frames is ``Event/notMLLP(_:)`` (an HTTP request, a TLS hello
///   on a plain port…), after which the decoder is failed and ignores everything.
///
/// Memory is bounded: a frame longer than `maximumMessageSize` keeps only its first
/// ``headSize`` bytes (enough for an MSH segment, so a reject can still be built) and is
/// counted to its end block.
public struct MLLPFrameDecoder: Sendable {
    public enum Event: Equatable, Sendable {
        /// A complete frame's content (between the start block and the end block).
        case message([UInt8])
        /// A frame whose content exceeded the maximum: `head` is its first bytes (up to
        /// ``MLLPFrameDecoder/headSize``), `size` the full content size up to the end block.
        case oversized(head: [UInt8], size: Int)
        /// A frame interrupted by a new start block, dropped with its `size` bytes.
        case discarded(size: Int)
        /// Non-whitespace bytes outside any frame: the peer is not speaking MLLP and the
        /// connection should be closed. The string shows the first bytes, escaped.
        case notMLLP(String)
    }

    /// Bytes kept of an oversized frame.
    public static let headSize = 4096
    /// Bytes of a stray input shown in ``Event/notMLLP(_:)``.
    static let shownSize = 32

    private enum State {
        case betweenFrames
        case inFrame
        case failed
    }

    public let maximumMessageSize: Int
    private var state = State.betweenFrames
    /// The current frame's content: whole while within the maximum, its head past it.
    private var content: [UInt8] = []
    /// The current frame's size so far (the bytes dropped past the maximum included).
    private var size = 0

    public init(maximumMessageSize: Int) {
        self.maximumMessageSize = max(1, maximumMessageSize)
    }

    /// Whether a frame has started and not ended (at close: a frame that was never acknowledged).
    public var isInsideFrame: Bool {
        if case .inFrame = state { true } else { false }
    }

    /// Bytes of the current unfinished frame (0 outside a frame).
    public var pendingFrameSize: Int {
        isInsideFrame ? size : 0
    }

    /// Whether a peer was found not to speak MLLP; nothing more is decoded.
    public var hasFailed: Bool {
        if case .failed = state { true } else { false }
    }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> [Event] {
        var events: [Event] = []
        var index = bytes.startIndex
        while index < bytes.endIndex {
            switch state {
            case .failed:
                return events
            case .betweenFrames:
                let byte = bytes[index]
                if byte == MLLP.startBlock {
                    state = .inFrame
                    content = []
                    size = 0
                } else if !Self.isWhitespace(byte) {
                    state = .failed
                    content = []
                    let shown = bytes[index..<min(bytes.endIndex, index + Self.shownSize)]
                    events.append(.notMLLP(Self.printable(shown)))
                    return events
                }
                index += 1
            case .inFrame:
                let stop = bytes[index...].firstIndex { $0 == MLLP.endBlock || $0 == MLLP.startBlock } ?? bytes.endIndex
                append(UnsafeRawBufferPointer(rebasing: bytes[index..<stop]))
                index = stop
                guard index < bytes.endIndex else { break }
                if bytes[index] == MLLP.endBlock {
                    events.append(endOfFrame())
                    state = .betweenFrames
                } else {
                    // A new start block: begin again (a repeated start block loses nothing).
                    if size > 0 { events.append(.discarded(size: size)) }
                    content = []
                    size = 0
                }
                index += 1
            }
        }
        return events
    }

    public mutating func feed(_ bytes: some Collection<UInt8>) -> [Event] {
        if let events = bytes.withContiguousStorageIfAvailable({ feed(UnsafeRawBufferPointer($0)) }) {
            return events
        }
        return Array(bytes).withUnsafeBytes { feed($0) }
    }

    /// The readable bytes of `buffer` (its reader index is not moved).
    public mutating func feed(_ buffer: ByteBuffer) -> [Event] {
        buffer.withUnsafeReadableBytes { feed($0) }
    }

    private mutating func append(_ bytes: UnsafeRawBufferPointer) {
        let wasWithin = size <= maximumMessageSize
        size += bytes.count
        if size <= maximumMessageSize {
            content.append(contentsOf: bytes)
        } else {
            if wasWithin, content.count > Self.headSize {
                content.removeSubrange(Self.headSize...)
            }
            let room = Self.headSize - content.count
            if room > 0 { content.append(contentsOf: bytes.prefix(room)) }
        }
    }

    private mutating func endOfFrame() -> Event {
        defer {
            content = []
            size = 0
        }
        return size <= maximumMessageSize ? .message(content) : .oversized(head: content, size: size)
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x0D || byte == 0x0A || byte == 0x20 || byte == 0x09
    }

    /// ASCII as is, the rest as `\r`, `\n`, `\t` or `\xHH`.
    static func printable(_ bytes: some Sequence<UInt8>) -> String {
        var text = ""
        for byte in bytes {
            switch byte {
            case 0x0D: text += "\\r"
            case 0x0A: text += "\\n"
            case 0x09: text += "\\t"
            case 0x5C: text += "\\\\"
            case 0x20...0x7E: text.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                text += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return text
    }
}
