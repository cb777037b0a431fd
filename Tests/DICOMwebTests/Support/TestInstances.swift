import DICOMCore
import Foundation
import NIOCore

/// Part-10 files made for the tests with DICOMCore's writer.
enum TestInstances {
    static let secondaryCaptureImageStorage = "1.2.840.10008.5.1.4.1.1.7"

    /// A temporary directory for one test.
    static func temporaryDirectory(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("dicomweb-\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A fresh UID under 2.25 (PS3.5 §B.2).
    static func uid() -> String {
        let a = UInt64.random(in: 1...UInt64.max), b = UInt64.random(in: 0...UInt64.max)
        return "2.25.\(a)\(b)".prefix(64).description
    }

    /// A small secondary-capture image (Explicit VR Little Endian) with `pixelBytes` of pixels.
    /// Returns its path and the bytes of its data set (after the file meta information).
    static func write(in directory: URL, study: String, series: String, sopInstanceUID: String = uid(),
                      sopClassUID: String = secondaryCaptureImageStorage, pixelBytes: Int = 4096)
        throws -> (path: String, sopInstanceUID: String, dataSet: [UInt8])
    {
        var w = DataSetWriter(transferSyntax: .explicitVRLittleEndian)
        w.write(.specificCharacterSet, .CS, string: "ISO_IR 100")
        w.write(.sopClassUID, .UI, string: sopClassUID)
        w.write(.sopInstanceUID, .UI, string: sopInstanceUID)
        w.write(.studyDate, .DA, string: "20240131")
        w.write(.accessionNumber, .SH, string: "ACC42")
        w.write(.modality, .CS, string: "OT")
        w.write(.patientName, .PN, string: "TEST^DICOMWEB")
        w.write(.patientID, .LO, string: "IPP-DICOMWEB")
        w.write(.studyInstanceUID, .UI, string: study)
        w.write(.seriesInstanceUID, .UI, string: series)
        w.write(.samplesPerPixel, uint16: 1)
        w.write(.photometricInterpretation, .CS, string: "MONOCHROME2")
        let columns = 64
        let rows = max(1, pixelBytes / 2 / columns)
        w.write(.rows, uint16: UInt16(rows))
        w.write(.columns, uint16: UInt16(columns))
        w.write(.bitsAllocated, uint16: 16)
        w.write(.bitsStored, uint16: 12)
        w.write(.highBit, uint16: 11)
        w.write(.pixelRepresentation, uint16: 0)
        w.write(.pixelData, .OW, (0..<(rows * columns * 2)).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let dataSet = Array(w.buffer.readableBytesView)
        var file = Part10.fileMetaInformation(mediaStorageSOPClassUID: sopClassUID,
                                              mediaStorageSOPInstanceUID: sopInstanceUID,
                                              transferSyntaxUID: TransferSyntax.explicitVRLittleEndian.uid,
                                              sourceApplicationEntityTitle: "DICOMWEBTEST")
        file.writeBytes(dataSet)
        let url = directory.appendingPathComponent("\(sopInstanceUID).dcm")
        try Data(file.readableBytesView).write(to: url)
        return (url.path, sopInstanceUID, dataSet)
    }
}
