import Foundation
import Testing
@testable import DICOMweb
#if canImport(Glibc)
import Glibc
#endif

/// Mutual TLS against `openssl s_server -Verify 1 -www` (certificates made by the test):
/// the handshake is what is tested; the server then answers any GET with an HTML status page,
/// which the QIDO-RS reader refuses (`.invalidResponse`), proving the request went through.
/// (Orthanc 1.10 from Debian crashes on its first HTTPS request, so it can't be the peer here.)
@Suite(.serialized)
struct DICOMwebClientTLSTests {
    static func openssl(_ arguments: [String], in directory: URL) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw OrthancError("openssl \(arguments.first ?? "") failed") }
    }

    /// A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA.
    static func makeCertificates(in directory: URL) throws {
        try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
                     "-days", "2", "-subj", "/CN=Passerelle Test CA"], in: directory)
        try "subjectAltName=IP:127.0.0.1\n".write(to: directory.appendingPathComponent("ext"), atomically: true, encoding: .utf8)
        for name in ["server", "client"] {
            try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(name).key", "-out", "\(name).csr",
                         "-subj", name == "server" ? "/CN=127.0.0.1" : "/CN=site"], in: directory)
            try openssl(["x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                         "-out", "\(name).pem", "-days", "2"] + (name == "server" ? ["-extfile", "ext"] : []),
                        in: directory)
        }
    }

    @Test func unreadablePEMIsAConfigurationError() async throws {
        let directory = try TestInstances.temporaryDirectory("badkey")
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.makeCertificates(in: directory)
        let garbage = directory.appendingPathComponent("garbage.key")
        try Data("not PEM".utf8).write(to: garbage)
        let path = { (name: String) in directory.appendingPathComponent(name).path }
        let base = URL(string: "https://dc.example/dicom-web")!
        for (certificate, key, named) in [(garbage.path, path("client.key"), "garbage.key"),
                                          (path("client.pem"), garbage.path, "garbage.key")] {
            do {
                _ = try DICOMwebClient(baseURL: base, tls: TLSSettings(certificateFile: certificate, privateKeyFile: key))
                Issue.record("expected an error")
            } catch {
                #expect(error.kind == .configuration)
                #expect(error.code == .tls)
                #expect(error.description.contains(named))
            }
        }
        // The good pair loads (a PEM key named .key, as in the configuration reference).
        let client = try DICOMwebClient(baseURL: base, tls: TLSSettings(caFile: path("ca.pem"),
                                                                        certificateFile: path("client.pem"),
                                                                        privateKeyFile: path("client.key")))
        try await client.shutdown()
    }

    @Test func mutualTLS() async throws {
        let directory = try TestInstances.temporaryDirectory("tls")
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.makeCertificates(in: directory)
        let path = { (name: String) in directory.appendingPathComponent(name).path }
        let port = try OrthancPeer.freePort()
        let pid = try OrthancPeer.spawn("/usr/bin/openssl", [
            "s_server", "-accept", "127.0.0.1:\(port)", "-cert", path("server.pem"), "-key", path("server.key"),
            "-CAfile", path("ca.pem"), "-Verify", "1", "-www", "-quiet",
        ], log: path("s_server.log"))
        defer {
            kill(pid, SIGTERM)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        try await Task.sleep(for: .milliseconds(800))
        let url = URL(string: "https://127.0.0.1:\(port)/dicom-web")!

        func attempt(_ tls: TLSSettings) async throws -> DICOMwebError? {
            let client = try DICOMwebClient(baseURL: url, tls: tls, timeouts: DICOMwebTimeouts(connect: .seconds(3), read: .seconds(5)))
            var result: DICOMwebError?
            do {
                _ = try await client.instances(inStudy: "1.2.3")
            } catch {
                result = error
            }
            try await client.shutdown()
            return result
        }

        // CA + client certificate: handshake done, then the HTML page is refused as a QIDO answer.
        let ok = try await attempt(TLSSettings(caFile: path("ca.pem"), certificateFile: path("client.pem"),
                                               privateKeyFile: path("client.key")))
        print("mutual TLS: \(ok.map(String.init(describing:)) ?? "no error")")
        #expect(ok?.code == .invalidResponse)

        // System roots only: the server's certificate is not trusted.
        let untrusted = try await attempt(TLSSettings(certificateFile: path("client.pem"), privateKeyFile: path("client.key")))
        print("untrusted server: \(untrusted.map(String.init(describing:)) ?? "no error")")
        #expect(untrusted?.kind == .configuration)
        #expect(untrusted?.code == .tls)

        // No client certificate: the server refuses us.
        let anonymous = try await attempt(TLSSettings(caFile: path("ca.pem")))
        print("no client certificate: \(anonymous.map(String.init(describing:)) ?? "no error")")
        #expect(anonymous != nil)
        #expect(anonymous?.code != .invalidResponse)
    }
}
