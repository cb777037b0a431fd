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
/// `scripts/install-test-deps` installs Orthanc; without it these tests fail (they never skip).
final class OrthancPeer: @unchecked Sendable {
    static let executable = "/usr/sbin/Orthanc"
    static let dicomWebPlugin = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"

    static var isInstalled: Bool {
        FileManager.default.isExecutableFile(atPath: executable) && FileManager.default.fileExists(atPath: dicomWebPlugin)
    }

    let httpPort: Int
    let dicomPort: Int
    let directory: URL
    private(set) var pid: pid_t = 0
    private var exited = false

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
        pid = try OrthancPeer.spawn(OrthancPeer.executable, [configurationFile.path], log: log.path)
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
            guard isRunning else {
                throw OrthancError("Orthanc exited: \(logText.suffix(2000))")
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
        if isRunning {
            kill(pid, SIGTERM)
            let deadline = ContinuousClock.now + grace
            while isRunning, ContinuousClock.now < deadline { usleep(20_000) }
            if isRunning {
                kill(pid, SIGKILL)
                var status: Int32 = 0
                waitpid(pid, &status, 0)
                exited = true
            }
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// Reaps the child if it has exited.
    private var isRunning: Bool {
        guard pid > 0, !exited else { return false }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid || result < 0 { exited = true }
        return !exited
    }

    /// posix_spawn with an empty signal mask and default handlers: Foundation's `Process`
    /// passes on the test thread's blocked signals, and Orthanc then ignores SIGTERM.
    static func spawn(_ executable: String, _ arguments: [String], log: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard result == 0 else { throw OrthancError("posix_spawn \(executable): \(String(cString: strerror(result)))") }
        return pid
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
