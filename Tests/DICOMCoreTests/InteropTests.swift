import Foundation
import Testing
@testable import DICOMCore

/// Files written by pydicom and re-encoded by DCMTK's dcmconv (both installed by
/// scripts/install-test-deps: a missing tool fails these tests rather than skipping them).
@Suite
struct InteropTests {
    @Test func theReferenceToolsAreInstalled() {
        #expect(InteropTools.available, "dcmconv and python3 with pydicom are needed: run scripts/install-test-deps")
    }

    static let python = InteropTools.python
    static let dcmconv = InteropTools.dcmconv
    static func run(_ executable: String, _ arguments: [String]) -> Bool {
        InteropTools.run(executable, arguments)
    }

}

enum InteropTools {
    static let python = "/usr/bin/env"
    static let dcmconv = "/usr/bin/dcmconv"
    static var available: Bool {
        FileManager.default.isExecutableFile(atPath: dcmconv) && run(python, ["python3", "-c", "import pydicom"])
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus == 0
        } catch {
            return false
        }
    }
}

extension InteropTests {
    static let script = """
    import sys
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.6"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID = "1.2.3.4.5"
    ds.PatientName = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    ds.PatientID = "P1"
    item = Dataset()
    item.PatientID = "OTHER"
    ds.OtherPatientIDsSequence = Sequence([item])
    ds.Modality = "CT"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames = "2"
    ds.Rows = 16
    ds.Columns = 16
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(range(256)) * 4
    ds.save_as(sys.argv[1], enforce_file_format=True)
    """

}

extension InteropTests {
    /// (DCMTK tool, option): re-encodings of the pydicom file, including encapsulated pixel data.
    @Test(arguments: [
        ("", ""), ("dcmconv", "+ti"), ("dcmconv", "+te"), ("dcmconv", "+tb"), ("dcmconv", "+td"),
        ("dcmcjpeg", "+e1"), ("dcmcrle", "-ot"), ("dcmcjpls", "+el"),
    ])
    func readsFilesFromOtherToolkits(tool: String, option: String) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("interop-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let original = directory.appendingPathComponent("pydicom.dcm").path
        try #require(Self.run(Self.python, ["python3", "-c", Self.script, original]))
        var path = original
        if !tool.isEmpty {
            path = directory.appendingPathComponent("converted.dcm").path
            try #require(Self.run("/usr/bin/" + tool, [option, original, path]))
        }
        var source = try FileByteSource(path: path)
        let meta = try Part10.readFileMetaInformation(from: &source)
        let syntax = try #require(meta.transferSyntax)
        let length = syntax.isDeflated ? nil : source.fileSize - meta.dataSetOffset
        let attributes = try InstanceAttributes.read(from: &source, transferSyntax: syntax, length: length)
        #expect(attributes.patientName == "Yamada^Tarou=山田^太郎=やまだ^たろう")
        #expect(attributes.patientID == "P1")
        #expect(attributes.sopInstanceUID == "1.2.3.4.5.6")
        #expect(attributes.specificCharacterSet == ["", "ISO 2022 IR 87"])
        #expect(attributes.modality == "CT")
        #expect(attributes.numberOfFrames == "2")
        #expect(syntax.isEncapsulated == ["dcmcjpeg", "dcmcrle", "dcmcjpls"].contains(tool))
        let atEnd = source.isAtEnd()
        #expect(atEnd)
    }
}
