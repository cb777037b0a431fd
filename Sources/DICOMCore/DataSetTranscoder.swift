import Foundation
import NIOCore

/// Re-encodes a Part-10 file between Implicit and Explicit VR Little Endian (PS3.5 §7.1), for a
/// peer that accepted only the other one. Values are copied byte for byte; only element headers
/// change. Sequences and items are written with undefined lengths (a header's size differs
/// between the two encodings, so defined lengths would be wrong) and group lengths are dropped.
/// Streamed: memory is bounded whatever the instance size.
public enum DataSetTranscoder {
    /// Whether `from` can be re-encoded into `to` here.
    public static func canTranscode(from: String, to: String) -> Bool {
        let pair = [TransferSyntax.implicitVRLittleEndian.uid, TransferSyntax.explicitVRLittleEndian.uid]
        return from != to && pair.contains(from) && pair.contains(to)
    }

    /// Writes `source` (a Part-10 file in one of the two encodings) as a Part-10 file in
    /// `transferSyntax` at `destination` (written to `destination.partial`, then renamed).
    public static func transcode(_ source: String, to transferSyntax: String, destination: String) throws(DataSetError) {
        var input = try FileByteSource(path: source)
        let meta = try Part10.readFileMetaInformation(from: &input)
        guard let from = meta.transferSyntaxUID, canTranscode(from: from, to: transferSyntax),
              let sopClass = meta.mediaStorageSOPClassUID, let sopInstance = meta.mediaStorageSOPInstanceUID else {
            throw DataSetError(.invalidFileMetaInformation, offset: 0,
                               "\(source): cannot re-encode \(meta.transferSyntaxUID ?? "?") as \(transferSyntax)")
        }
        let partial = destination + ".partial"
        let fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw DataSetError(.readFailed, offset: 0, "cannot create \(partial): \(String(cString: strerror(errno)))")
        }
        var output = Output(fd: fd, path: partial)
        do {
            output.append(Part10.fileMetaInformation(
                mediaStorageSOPClassUID: sopClass, mediaStorageSOPInstanceUID: sopInstance,
                transferSyntaxUID: transferSyntax, sourceApplicationEntityTitle: meta.sourceApplicationEntityTitle))
            let reader = DataSetWalker.Encoding(isExplicitVR: from == TransferSyntax.explicitVRLittleEndian.uid,
                                                isLittleEndian: true)
            let writerExplicit = transferSyntax == TransferSyntax.explicitVRLittleEndian.uid
            var copier = Copier(walker: DataSetWalker(wanted: []), explicitOut: writerExplicit)
            try copier.elements(&input, encoding: reader, end: nil, inUndefinedItem: false, output: &output, depth: 0)
            try output.flush()
        } catch {
            close(fd)
            unlink(partial)
            throw error
        }
        guard close(fd) == 0, rename(partial, destination) == 0 else {
            let message = String(cString: strerror(errno))
            unlink(partial)
            throw DataSetError(.readFailed, offset: 0, "cannot write \(destination): \(message)")
        }
    }

    private struct Output {
        let fd: Int32
        let path: String
        var buffer = ByteBuffer()

        mutating func append(_ bytes: ByteBuffer) {
            var bytes = bytes
            buffer.writeBuffer(&bytes)
        }

        mutating func flushIfLarge() throws(DataSetError) {
            if buffer.readableBytes >= 1 << 20 { try flush() }
        }

        mutating func flush() throws(DataSetError) {
            let failure = FileDescriptorWriting.writeAll(fd, buffer)
            buffer.clear()
            if failure != 0 {
                throw DataSetError(.readFailed, offset: 0, "cannot write \(path): \(String(cString: strerror(failure)))")
            }
        }
    }

    private struct Copier {
        let walker: DataSetWalker
        let explicitOut: Bool

        func header(_ tag: Tag, _ vr: VR, length: UInt32) -> ByteBuffer {
            var writer = DataSetWriter(explicitVR: explicitOut, littleEndian: true)
            writer.writeHeader(tag, vr, length: length)
            return writer.buffer
        }

        func delimiter(_ tag: Tag) -> ByteBuffer {
            var writer = DataSetWriter(explicitVR: explicitOut, littleEndian: true)
            writer.writeDelimiter(tag)
            return writer.buffer
        }

        /// The VR to write: the header's, else the dictionary's (its first choice when it lists
        /// several, OW for pixel data), else UN.
        static func vr(for tag: Tag, declared: VR?) -> VR {
            if let declared { return declared }
            if tag == .pixelData { return .OW }
            guard let entry = DataDictionary.entry(for: tag) else { return .UN }
            return entry.vr ?? VR(rawValue: String(entry.vrs.prefix(2))) ?? .UN
        }

        mutating func elements(_ source: inout FileByteSource, encoding: DataSetWalker.Encoding, end: Int?,
                               inUndefinedItem: Bool, output: inout Output, depth: Int) throws(DataSetError) {
            while true {
                if let end {
                    if source.position == end { return }
                    guard source.position < end else {
                        throw DataSetError(.invalidLength, offset: source.position, "element overruns its container")
                    }
                } else if !inUndefinedItem, source.isAtEnd() {
                    return
                }
                let found = try walker.readHeader(&source, encoding: encoding)
                if found.tag == .itemDelimitationItem {
                    guard inUndefinedItem else {
                        throw DataSetError(.unexpectedDelimiter, offset: source.position, "item delimiter outside an item")
                    }
                    return
                }
                let vr = Self.vr(for: found.tag, declared: found.vr)
                if vr == .SQ || (found.length == nil && vr == .UN) {
                    guard depth < 32 else { throw DataSetError(.tooDeep, offset: source.position, "sequences too deep") }
                    output.append(header(found.tag, .SQ, length: DataSetWriter.undefinedLength))
                    let inner = vr == .UN ? DataSetWalker.Encoding.implicitLittle : encoding
                    try sequence(&source, encoding: inner, length: found.length, output: &output, depth: depth + 1)
                    output.append(delimiter(.sequenceDelimitationItem))
                    continue
                }
                guard let length = found.length else {
                    throw DataSetError(.invalidLength, offset: source.position,
                                       "undefined length on \(found.tag): encapsulated data cannot be re-encoded here")
                }
                if found.tag.element == 0 { try source.skip(length); continue }  // group length: now wrong
                // A value too long for a short explicit header travels as UN (PS3.5 §6.2.2).
                let written = explicitOut && !vr.usesLongLength && length > 0xFFFE ? VR.UN : vr
                output.append(header(found.tag, written, length: UInt32(length)))
                var remaining = length
                while remaining > 0 {
                    let chunk = try source.read(min(remaining, 1 << 20))
                    remaining -= chunk.readableBytes
                    output.append(chunk)
                    try output.flushIfLarge()
                }
            }
        }

        mutating func sequence(_ source: inout FileByteSource, encoding: DataSetWalker.Encoding, length: Int?,
                               output: inout Output, depth: Int) throws(DataSetError) {
            let end = length.map { source.position + $0 }
            while true {
                if let end, source.position >= end { return }
                let found = try walker.readHeader(&source, encoding: encoding)
                switch found.tag {
                case .sequenceDelimitationItem:
                    return
                case .item:
                    output.append(delimiter(.item).withItemLength(DataSetWriter.undefinedLength))
                    try elements(&source, encoding: encoding, end: found.length.map { source.position + $0 },
                                 inUndefinedItem: found.length == nil, output: &output, depth: depth)
                    output.append(delimiter(.itemDelimitationItem))
                default:
                    throw DataSetError(.unexpectedDelimiter, offset: source.position, "\(found.tag) where an item was expected")
                }
            }
        }
    }
}

private extension ByteBuffer {
    /// An item header with another length (the last 4 bytes).
    func withItemLength(_ length: UInt32) -> ByteBuffer {
        var copy = self
        copy.setInteger(length, at: copy.writerIndex - 4, endianness: .little)
        return copy
    }
}

/// Writing a whole buffer to a file descriptor (short writes and EINTR retried).
public enum FileDescriptorWriting {
    /// 0, or the errno of the failed write.
    public static func writeAll(_ fd: Int32, _ bytes: ByteBuffer) -> Int32 {
        bytes.withUnsafeReadableBytes { pointer -> Int32 in
            var offset = 0
            while offset < pointer.count {
                let n = write(fd, pointer.baseAddress! + offset, pointer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += n
            }
            return 0
        }
    }
}
