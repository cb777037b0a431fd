import Crypto
import DICOMCore
import DICOMweb
import Foundation
import Spool

/// An instance as it leaves for a destination: its spooled bytes (a range of a journal
/// segment), with IssuerOfPatientID (0010,0021) filled in when the site wants it and the data
/// set lacks it. The spool is not changed; the element is spliced into the request body.
/// Deterministic, so every retry sends the same bytes.
struct OutgoingInstance {
    var part: STOWRequestBody.Part
    /// SHA-256 of the bytes sent (the received file's own hash when nothing is changed).
    var sentSHA256: String
    /// Why the issuer was not filled although it was missing, for the log.
    var notFilled: String?

    /// `issuer` nil: send the file unchanged.
    init(_ instance: ChunkInstance, root: String, issuer: String?) throws {
        let stored = instance.location
        let path = root + "/" + stored.relativePath
        let start = Int64(stored.offset)
        let size = Int64(stored.length)
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw SpoolError.io("cannot read", path: path, errno: errno)
        }
        guard Int64(info.st_size) >= start + size else {
            throw SpoolError(description: "\(path) is shorter than the instance it should hold")
        }
        guard let issuer, instance.lacksIssuerOfPatientID else {
            part = .init(path: path, offset: start, size: size)
            sentSHA256 = instance.sha256
            return
        }
        guard let syntax = TransferSyntax(uid: instance.transferSyntaxUID), !syntax.isDeflated else {
            part = .init(path: path, offset: start, size: size)
            sentSHA256 = instance.sha256
            notFilled = "deflated data set sent unchanged"
            return
        }
        var source = try FileByteSource(path: path, offset: stored.offset + stored.dataSetOffset)
        let location = try DataSetReader.locate(.issuerOfPatientID, in: &source, transferSyntax: syntax,
                                                length: stored.length - stored.dataSetOffset)
        var writer = DataSetWriter(transferSyntax: syntax)
        writer.write(.issuerOfPatientID, .LO, string: issuer)
        let splice = STOWRequestBody.Part.Splice(offset: Int64(stored.dataSetOffset + location.offset),
                                                 removing: Int64(location.length),
                                                 inserting: Array(writer.buffer.readableBytesView))
        part = .init(path: path, offset: start, size: size, splice: splice)
        sentSHA256 = try Self.hash(path: path, offset: start, size: size, splice: splice)
    }

    /// SHA-256 of the part as sent with `splice` (offsets relative to `offset`).
    static func hash(path: String, offset: Int64 = 0, size: Int64, splice: STOWRequestBody.Part.Splice) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SpoolError.io("cannot open", path: path, errno: errno) }
        defer { close(fd) }
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        func feed(from start: Int64, to end: Int64) throws {
            var position = start
            while position < end {
                let wanted = Int(min(Int64(buffer.count), end - position))
                let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, wanted, off_t(offset + position)) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw SpoolError.io("cannot read", path: path, errno: n < 0 ? errno : EIO) }
                hasher.update(data: buffer[0..<n])
                position += Int64(n)
            }
        }
        try feed(from: 0, to: splice.offset)
        hasher.update(data: splice.inserting)
        try feed(from: splice.offset + splice.removing, to: size)
        return hasher.finalize().hexString
    }
}
