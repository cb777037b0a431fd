import DICOMCore
import NIOCore

/// A Part-10 file opened for sending: its meta information, and a source positioned at the
/// data set that reads with one `pread` per block (never the whole file in memory).
struct Part10DataSetFile: Sendable {
    var path: String
    var sopClassUID: String
    var sopInstanceUID: String
    var transferSyntaxUID: String
    /// Bytes from the data set's start to the end of the file.
    var dataSetLength: Int
    /// Positioned at the data set; a small internal buffer so block reads go straight to `pread`.
    var dataSet: FileByteSource

    /// Reads the file meta information (blocking: call off the event loop).
    static func open(_ path: String) throws(DICOMNetworkError) -> Part10DataSetFile {
        let meta = try readMeta(path)
        guard let sopClassUID = meta.mediaStorageSOPClassUID, !sopClassUID.isEmpty,
              let sopInstanceUID = meta.mediaStorageSOPInstanceUID, !sopInstanceUID.isEmpty,
              let transferSyntaxUID = meta.transferSyntaxUID, !transferSyntaxUID.isEmpty
        else {
            throw DICOMNetworkError(code: .invalidFile, message: "\(path): file meta information lacks "
                                   + "Media Storage SOP Class/Instance UID or Transfer Syntax UID")
        }
        let source: FileByteSource
        do {
            source = try FileByteSource(path: path, offset: meta.dataSetOffset, bufferSize: 512)
        } catch {
            throw DICOMNetworkError(code: .invalidFile, message: "\(path): \(error)")
        }
        return Part10DataSetFile(
            path: path, sopClassUID: sopClassUID, sopInstanceUID: sopInstanceUID,
            transferSyntaxUID: transferSyntaxUID, dataSetLength: source.fileSize - meta.dataSetOffset,
            dataSet: source)
    }

    static func readMeta(_ path: String) throws(DICOMNetworkError) -> FileMetaInformation {
        do {
            var source = try FileByteSource(path: path)
            return try Part10.readFileMetaInformation(from: &source)
        } catch {
            throw DICOMNetworkError(code: .invalidFile, message: "\(path): not a readable DICOM Part-10 file: \(error)")
        }
    }

    /// The next `count` data set bytes (blocking).
    mutating func read(_ count: Int) throws(DICOMNetworkError) -> ByteBuffer {
        do {
            return try dataSet.read(count)
        } catch {
            throw DICOMNetworkError(code: .invalidFile, message: "\(path): read failed: \(error)")
        }
    }

    /// "… for CT Image Storage (1.2.840.10008.5.1.4.1.1.2) in Explicit VR Little Endian".
    func noFittingContext(_ what: String) -> DICOMNetworkError {
        let sopClass = UIDRegistry.entry(for: sopClassUID).map { "\($0.name) (\(sopClassUID))" } ?? sopClassUID
        let syntax = TransferSyntax(uid: transferSyntaxUID).map(\.description) ?? transferSyntaxUID
        return DICOMNetworkError(code: .noAcceptedPresentationContext, message: "\(what) for \(sopClass) in \(syntax)")
    }
}
