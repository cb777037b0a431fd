import Crypto
import DICOMCore
import DICOMweb
import Foundation
import Spool

/// An instance as it leaves for a destination: the spooled file, with IssuerOfPatientID
/// (0010,0021) filled in when the site wants it and the data set lacks it. The file is not
/// changed; the element is spliced into the request body. Deterministic, so every retry sends
/// the same bytes.
struct OutgoingInstance {
    var part: STOWRequestBody.Part
    /// SHA-256 of the bytes sent (the received file's own hash when nothing is changed).
    var sentSHA256: String
    /// Why the issuer was not filled although it was missing, for the log.
    var notFilled: String?

    /// `issuer` nil: send the file unchanged.
    init(_ instance: ChunkInstance, root: String, issuer: String?) throws {
        let path = root + "/" + instance.filePath
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw SpoolError.io("cannot read", path: path, errno: errno)
        }
        let size = Int64(info.st_size)
        guard let issuer, instance.lacksIssuerOfPatientID else {
            part = .init(path: path, size: size)
            sentSHA256 = instance.sha256
            return
        }
        guard let syntax = TransferSyntax(uid: instance.transferSyntaxUID), !syntax.isDeflated else {
            part = .init(path: path, size: size)
            sentSHA256 = instance.sha256
            notFilled = "deflated data set sent unchanged"
            return
        }
        var source = try FileByteSource(path: path, offset: instance.dataSetOffset)
        let location = try DataSetReader.locate(.issuerOfPatientID, in: &source, transferSyntax: syntax,
                                                length: Int(size) - instance.dataSetOffset)
        var writer = DataSetWriter(transferSyntax: syntax)
        writer.write(.issuerOfPatientID, .LO, string: issuer)
        let splice = STOWRequestBody.Part.Splice(offset: Int64(instance.dataSetOffset + location.offset),
                                                 removing: Int64(location.length),
                                                 inserting: Array(writer.buffer.readableBytesView))
        part = .init(path: path, size: size, splice: splice)
        sentSHA256 = try Self.hash(path: path, size: size, splice: splice)
    }

    /// SHA-256 of the file as sent with `splice`.
    static func hash(path: String, size: Int64, splice: STOWRequestBody.Part.Splice) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SpoolError.io("cannot open", path: path, errno: errno) }
        defer { close(fd) }
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        func feed(from start: Int64, to end: Int64) throws {
            var position = start
            while position < end {
                let wanted = Int(min(Int64(buffer.count), end - position))
                let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, wanted, off_t(position)) }
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
