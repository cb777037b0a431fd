import DICOMCore
import Foundation
import NIOCore
import NIOPosix

@testable import DICOMNetwork

/// Peers, ports, temporary directories and test files for the requestor tests.
enum ClientTestSupport {
    static let secondaryCaptureImageStorage = "1.2.840.10008.5.1.4.1.1.7"
    static let storescp = "/usr/bin/storescp"

    /// The package root (…/Tests/DICOMNetworkTests/Client/ClientTestSupport.swift → …).
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static var passerelled: String { repositoryRoot.appendingPathComponent(".build/debug/passerelled").path }
    static var passerellectl: String { repositoryRoot.appendingPathComponent(".build/debug/passerellectl").path }

    static var hasStoreSCP: Bool { FileManager.default.isExecutableFile(atPath: storescp) }
    static var hasPasserelled: Bool {
        FileManager.default.isExecutableFile(atPath: passerelled)
            && FileManager.default.isExecutableFile(atPath: passerellectl)
    }

    static func temporaryDirectory(_ name: String = "client") throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("passerelle-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A port nobody listens on right now (bound then released).
    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }

    /// Waits until a TCP connection to the port succeeds.
    static func waitForPort(_ port: Int, timeout: Duration = .seconds(15)) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            do {
                let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connectTimeout(.milliseconds(500))
                    .connect(host: "127.0.0.1", port: port).get()
                try? await channel.close()
                return
            } catch {
                guard ContinuousClock.now < deadline else {
                    throw TestFailure("nothing listens on 127.0.0.1:\(port) after \(timeout)")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    struct TestFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// A Part-10 file (Explicit VR Little Endian unless told) with a data set of about
    /// `pixelBytes` + 500 bytes. Returns its path and its data set bytes.
    static func writePart10File(
        in directory: URL, sopInstanceUID: String, transferSyntax: TransferSyntax = .explicitVRLittleEndian,
        pixelBytes: Int = 300_000, studyInstanceUID: String = "2.25.1000", seriesInstanceUID: String? = nil
    ) throws -> (path: String, dataSet: [UInt8]) {
        var w = DataSetWriter(transferSyntax: transferSyntax)
        w.write(.specificCharacterSet, .CS, string: "ISO_IR 100")
        w.write(.sopClassUID, .UI, string: secondaryCaptureImageStorage)
        w.write(.sopInstanceUID, .UI, string: sopInstanceUID)
        w.write(.studyDate, .DA, string: "20240131")
        w.write(.accessionNumber, .SH, string: "ACC42")
        w.write(.modality, .CS, string: "OT")
        w.write(.patientName, .PN, string: "TEST^CLIENT")
        w.write(.patientID, .LO, string: "IPP-CLIENT")
        w.write(.studyInstanceUID, .UI, string: studyInstanceUID)
        w.write(.seriesInstanceUID, .UI, string: seriesInstanceUID ?? studyInstanceUID + ".1")
        w.write(.samplesPerPixel, uint16: 1)
        w.write(.photometricInterpretation, .CS, string: "MONOCHROME2")
        let rows = max(1, pixelBytes / 2 / 500)
        w.write(.rows, uint16: UInt16(rows))
        w.write(.columns, uint16: 500)
        w.write(.bitsAllocated, uint16: 16)
        w.write(.bitsStored, uint16: 12)
        w.write(.highBit, uint16: 11)
        w.write(.pixelRepresentation, uint16: 0)
        let count = rows * 500 * 2
        let pattern = (0..<min(count, 65536)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        var pixels: [UInt8] = []
        pixels.reserveCapacity(count)
        while pixels.count < count { pixels += pattern.prefix(count - pixels.count) }
        w.write(.pixelData, .OW, pixels)
        let dataSet = Array(w.buffer.readableBytesView)

        var file = Part10.fileMetaInformation(
            mediaStorageSOPClassUID: secondaryCaptureImageStorage, mediaStorageSOPInstanceUID: sopInstanceUID,
            transferSyntaxUID: transferSyntax.uid, sourceApplicationEntityTitle: "CLIENTTEST")
        file.writeBytes(dataSet)
        let url = directory.appendingPathComponent("\(sopInstanceUID).dcm")
        try Data(file.readableBytesView).write(to: url)
        return (url.path, dataSet)
    }

    /// The data set bytes of a Part-10 file (after its meta information).
    /// The data set of the Part-10 bytes at `offset` (`length` of them) in `path`.
    static func dataSet(ofFile path: String, offset: Int = 0, length: Int? = nil) throws -> [UInt8] {
        var source = try FileByteSource(path: path, offset: offset)
        let meta = try Part10.readFileMetaInformation(from: &source)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let end = length.map { offset + $0 } ?? bytes.count
        return Array(bytes[(offset + meta.dataSetOffset)..<end])
    }
}

/// A peer process started by a test; `stop()` (call it in a `defer`) terminates it.
final class PeerProcess: @unchecked Sendable {
    let process = Process()
    let log: URL

    init(executable: String, arguments: [String], environment: [String: String] = [:], log: URL) throws {
        self.log = log
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { _, new in new }
        process.environment = env
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// SIGTERM, then SIGKILL after `grace`; bounded.
    func stop(grace: Duration = .seconds(5)) {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = ContinuousClock.now + grace
        while process.isRunning, ContinuousClock.now < deadline {
            usleep(20_000)
        }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
}

/// Runs a command to completion (bounded) and returns its status and standard output.
func runCommand(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(30)) throws
    -> (status: Int32, output: String)
{
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    try process.run()
    // Read before waiting: a full pipe would block the child.
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    let deadline = ContinuousClock.now + timeout
    while process.isRunning, ContinuousClock.now < deadline { usleep(20_000) }
    if process.isRunning {
        process.terminate()
        process.waitUntilExit()
    }
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
