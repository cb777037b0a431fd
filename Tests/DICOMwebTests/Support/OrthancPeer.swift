import AsyncHTTPClient
import DICOMweb
import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// A real Orthanc (Debian's `orthanc` + `orthanc-dicomweb`) started for one test, on free
/// 127.0.0.1 ports, with its storage in a temporary directory. Not the Debian service.
///
/// ```swift
/// try await OrthancPeer.with { orthanc in
///     try await orthanc.withClient { client in   // DICOMwebClient on orthanc.dicomWebURL
///         …
///     }
/// }   // Orthanc is stopped (SIGTERM, then SIGKILL) and its directory removed, whatever happened
/// ```
///
/// Gate suites with `.enabled(if: OrthancPeer.isInstalled, …)`; `scripts/install-test-deps`
/// installs the packages.
final class OrthancPeer: @unchecked Sendable {
    static let executable = "/usr/sbin/Orthanc"
    static let dicomWebPlugin = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"

    static var isInstalled: Bool {
        FileManager.default.isExecutableFile(atPath: executable) && FileManager.default.fileExists(atPath: dicomWebPlugin)
    }

    let httpPort: Int
    let dicomPort: Int
    let directory: URL
    let process = Process()

    /// `http://127.0.0.1:P/`
    var httpURL: URL { URL(string: "http://127.0.0.1:\(httpPort)/")! }
    /// `http://127.0.0.1:P/dicom-web/`
    var dicomWebURL: URL { URL(string: "http://127.0.0.1:\(httpPort)/dicom-web/")! }
    /// Orthanc's own output (its `--verbose` is not set).
    var log: URL { directory.appendingPathComponent("orthanc.log") }
    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// Starts Orthanc; returns when `GET /system` answers 200 (at most `startTimeout`).
    init(aeTitle: String = "HUB", startTimeout: Duration = .seconds(30)) async throws {
        httpPort = try OrthancPeer.freePort()
        dicomPort = try OrthancPeer.freePort()
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("orthanc-\(httpPort)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let configuration: [String: Any] = [
            "Name": "hub",
            "DicomAet": aeTitle,
            "HttpPort": httpPort,
            "DicomPort": dicomPort,
            "StorageDirectory": directory.appendingPathComponent("storage").path,
            "IndexDirectory": directory.appendingPathComponent("index").path,
            "RemoteAccessAllowed": false,
            "AuthenticationEnabled": false,
            "Plugins": [OrthancPeer.dicomWebPlugin],
            "DicomWeb": ["Enable": true, "Root": "/dicom-web/"],
        ]
        let configurationFile = directory.appendingPathComponent("orthanc.json")
        try JSONSerialization.data(withJSONObject: configuration, options: [.prettyPrinted])
            .write(to: configurationFile)
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.executableURL = URL(fileURLWithPath: OrthancPeer.executable)
        process.arguments = [configurationFile.path]
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        do {
            try await waitUntilReady(timeout: startTimeout)
        } catch {
            stop()
            throw error
        }
    }

    /// Runs `body` with a started Orthanc and stops it afterwards, also when `body` throws.
    static func with<T>(_ body: (OrthancPeer) async throws -> T) async throws -> T {
        let orthanc = try await OrthancPeer()
        do {
            let result = try await body(orthanc)
            orthanc.stop()
            return result
        } catch {
            orthanc.stop()
            throw error
        }
    }

    /// Runs `body` with a `DICOMwebClient` for this Orthanc's DICOMweb root and shuts the
    /// client down afterwards (before Orthanc is stopped: Orthanc waits for open connections).
    func withClient<T>(_ body: (DICOMwebClient) async throws -> T) async throws -> T {
        let client = try DICOMwebClient(baseURL: dicomWebURL)
        do {
            let result = try await body(client)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    private func waitUntilReady(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        let url = httpURL.absoluteString + "system"
        while ContinuousClock.now < deadline {
            guard process.isRunning else {
                throw OrthancError("Orthanc exited with status \(process.terminationStatus): \(logText.suffix(2000))")
            }
            var request = HTTPClientRequest(url: url)
            request.method = .GET
            // No kept-alive connection: Orthanc waits for open connections when it stops.
            request.headers.add(name: "Connection", value: "close")
            if let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(2)),
               response.status.code == 200 {
                _ = try? await response.body.collect(upTo: 1 << 20)
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw OrthancError("Orthanc did not answer GET /system within \(timeout)")
    }

    /// SIGTERM, SIGKILL after `grace`; waits for the exit (so the ports are free again); removes
    /// the temporary directory. Idempotent.
    func stop(grace: Duration = .seconds(10)) {
        if process.isRunning {
            process.terminate()
            let deadline = ContinuousClock.now + grace
            while process.isRunning, ContinuousClock.now < deadline { usleep(20_000) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// A GET on Orthanc's REST API (not DICOMweb), e.g. `"instances"`; the body as text.
    func get(_ path: String) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: httpURL.absoluteString + path)
        request.headers.add(name: "Connection", value: "close")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 64 << 20)
        return (Int(response.status.code), String(buffer: body))
    }

    /// A port that was free on 127.0.0.1 a moment ago (bound to 0, read back, closed).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw OrthancError("socket: \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw OrthancError("bind: \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw OrthancError("getsockname: \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

struct OrthancError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
