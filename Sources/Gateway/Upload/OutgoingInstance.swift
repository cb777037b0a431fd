import Crypto
import DICOMCore
import DICOMweb
import Foundation
import Spool

/// An instance as it leaves for a destination: its spooled bytes (a range of a journal
/// segment), carrying the patient's identity in force (HL7 identity updates, `IdentityEdit`)
/// and IssuerOfPatientID (0010,0021) filled in when the site wants it and the data set lacks
/// it. The spool is not changed; the elements are spliced into the request body.
/// Deterministic, so every retry sends the same bytes.
struct OutgoingInstance {
    var part: STOWRequestBody.Part
    /// SHA-256 of the bytes sent (the received file's own hash when nothing is changed).
    var sentSHA256: String
    /// Why the data set was not changed although it should have been, or what was written
    /// differently from the PAS's identity, for the log.
    var notes: [String] = []

    /// `issuer` nil: never filled; `identity` nil: no update names the patient.
    init(_ instance: ChunkInstance, root: String, issuer: String?, identity: PatientIdentity? = nil) throws {
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
        part = .init(path: path, offset: start, size: size)
        sentSHA256 = instance.sha256
        guard identity != nil || (issuer != nil && instance.lacksIssuerOfPatientID) else { return }
        guard let syntax = TransferSyntax(uid: instance.transferSyntaxUID), !syntax.isDeflated else {
            notes = ["deflated data set sent unchanged"]
            return
        }
        let edit = try IdentityEdit(identity: identity, fillIssuer: instance.lacksIssuerOfPatientID ? issuer : nil,
                                    transferSyntax: syntax, length: stored.length - stored.dataSetOffset) {
            () throws(DataSetError) in try FileByteSource(path: path, offset: stored.offset + stored.dataSetOffset)
        }
        notes = edit.notes
        guard !edit.isEmpty else { return }
        let splices = edit.splices.map {
            STOWRequestBody.Part.Splice(offset: Int64(stored.dataSetOffset) + $0.offset, removing: $0.removing,
                                        inserting: $0.inserting)
        }
        part = .init(path: path, offset: start, size: size, splices: splices)
        sentSHA256 = try Self.hash(path: path, offset: start, size: size, splices: splices)
    }

    /// SHA-256 of the part as sent with `splices` (offsets relative to `offset`).
    static func hash(path: String, offset: Int64 = 0, size: Int64, splices: [STOWRequestBody.Part.Splice]) throws -> String {
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
        var position: Int64 = 0
        for splice in splices {
            try feed(from: position, to: splice.offset)
            hasher.update(data: splice.inserting)
            position = splice.offset + splice.removing
        }
        try feed(from: position, to: size)
        return hasher.finalize().hexString
    }
}
