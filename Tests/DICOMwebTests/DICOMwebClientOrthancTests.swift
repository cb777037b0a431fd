import DICOMCore
import Foundation
import Testing
@testable import DICOMweb

/// `DICOMwebClient` against a real Orthanc 1.10 with its DICOMweb plugin (one Orthanc per test).
@Suite(.serialized)
struct DICOMwebClientOrthancTests {
    /// Three instances of one study, stored, listed by QIDO, stored again (idempotent).
    @Test func storeListAndStoreAgain() async throws {
        let directory = try TestInstances.temporaryDirectory("stow")
        defer { try? FileManager.default.removeItem(at: directory) }
        let study = TestInstances.uid(), series = TestInstances.uid()
        let files = try (0..<3).map { _ in try TestInstances.write(in: directory, study: study, series: series) }
        try await OrthancPeer.with { orthanc in
            try await orthanc.withClient { client in
                let request = files.map { (path: $0.path, sopInstanceUID: $0.sopInstanceUID) }
                let first = try await client.store(files: request)
                #expect(first.count == 3)
                #expect(first.values.allSatisfy { $0 == .stored(warning: nil) }, "\(first)")

                let listed = try await client.instances(inStudy: study)
                #expect(Set(listed.keys) == Set(files.map(\.sopInstanceUID)))
                #expect(listed.values.allSatisfy { $0 == TestInstances.secondaryCaptureImageStorage })

                // Paging: one instance per page.
                #expect(try await client.instances(inStudy: study, pageSize: 1) == listed)
                #expect(try await client.instances(inStudy: study, pageSize: 2) == listed)

                let again = try await client.store(files: request)
                #expect(again.count == 3)
                #expect(again.values.allSatisfy { if case .stored = $0 { true } else { false } }, "\(again)")
                #expect(try await client.instances(inStudy: study).count == 3)

                #expect(try await client.instances(inStudy: TestInstances.uid()).isEmpty)
            }
        }
    }

    /// One chunk of 64 instances (64 KiB each) in one request; prints the rate seen.
    @Test func chunkOf64Instances() async throws {
        let directory = try TestInstances.temporaryDirectory("chunk")
        defer { try? FileManager.default.removeItem(at: directory) }
        let study = TestInstances.uid(), series = TestInstances.uid()
        let files = try (0..<64).map { _ in
            try TestInstances.write(in: directory, study: study, series: series, pixelBytes: 64 * 1024)
        }
        try await OrthancPeer.with { orthanc in
            try await orthanc.withClient { client in
                let started = ContinuousClock.now
                let results = try await client.store(files: files.map { ($0.path, $0.sopInstanceUID) })
                let elapsed = ContinuousClock.now - started
                #expect(results.count == 64)
                #expect(results.values.allSatisfy { $0 == .stored(warning: nil) })
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                print("STOW-RS 64 instances x 64 KiB in one request: \(elapsed), \(Int(64 / seconds)) instances/s")
                #expect(try await client.instances(inStudy: study, pageSize: 10).count == 64)
            }
        }
    }

    /// WADO-RS gives back the data set that STOW-RS sent, byte for byte.
    @Test func retrieveGivesTheSameDataSet() async throws {
        let directory = try TestInstances.temporaryDirectory("wado")
        defer { try? FileManager.default.removeItem(at: directory) }
        let study = TestInstances.uid(), series = TestInstances.uid()
        let small = try TestInstances.write(in: directory, study: study, series: series)
        let large = try TestInstances.write(in: directory, study: study, series: series, pixelBytes: 3 << 20)
        try await OrthancPeer.with { orthanc in
            try await orthanc.withClient { client in
                let stored = try await client.store(files: [(small.path, small.sopInstanceUID), (large.path, large.sopInstanceUID)])
                #expect(stored.values.allSatisfy { $0 == .stored(warning: nil) })
                for file in [small, large] {
                    let out = directory.appendingPathComponent("retrieved-\(file.sopInstanceUID).dcm").path
                    let count = try await client.retrieveInstance(study: study, series: series,
                                                                  instance: file.sopInstanceUID, to: out)
                    #expect(count == (try FileManager.default.attributesOfItem(atPath: out)[.size] as? NSNumber)?.int64Value)
                    var source = try FileByteSource(path: out)
                    let meta = try Part10.readFileMetaInformation(from: &source)
                    #expect(meta.mediaStorageSOPInstanceUID.map(UID.trimmed) == file.sopInstanceUID)
                    let bytes = try Data(contentsOf: URL(fileURLWithPath: out))
                    #expect(Array(bytes[meta.dataSetOffset...]) == file.dataSet)
                    #expect(!FileManager.default.fileExists(atPath: out + ".partial"))
            }
            do {
                try await client.retrieveInstance(study: study, series: series, instance: TestInstances.uid(),
                                                  to: directory.appendingPathComponent("absent.dcm").path)
                Issue.record("expected an error")
            } catch let error as DICOMwebError {
                #expect(error.status == 404)
                #expect(error.kind == .permanent)
                #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("absent.dcm").path))
            }
            }
        }
    }

    /// A corrupt file among good ones fails alone.
    @Test func corruptFileFailsAlone() async throws {
        let directory = try TestInstances.temporaryDirectory("corrupt")
        defer { try? FileManager.default.removeItem(at: directory) }
        let study = TestInstances.uid(), series = TestInstances.uid()
        let good = try (0..<2).map { _ in try TestInstances.write(in: directory, study: study, series: series) }
        let badUID = TestInstances.uid()
        let badPath = directory.appendingPathComponent("bad.dcm").path
        // A Part-10 header, then garbage where the data set should be.
        var bad = Part10.fileMetaInformation(mediaStorageSOPClassUID: TestInstances.secondaryCaptureImageStorage,
                                             mediaStorageSOPInstanceUID: badUID,
                                             transferSyntaxUID: TransferSyntax.explicitVRLittleEndian.uid,
                                             sourceApplicationEntityTitle: nil)
        bad.writeBytes([0x08, 0x00, 0x16, 0x00, 0x55, 0x49, 0xFF, 0x7F] + [UInt8](repeating: 0xEE, count: 300))
        try Data(bad.readableBytesView).write(to: URL(fileURLWithPath: badPath))
        try await OrthancPeer.with { orthanc in
            try await orthanc.withClient { client in
                let request = [(path: good[0].path, sopInstanceUID: good[0].sopInstanceUID),
                               (path: badPath, sopInstanceUID: badUID),
                               (path: good[1].path, sopInstanceUID: good[1].sopInstanceUID)]
                let results = try await client.store(files: request)
                print("corrupt file results: \(results)")
                #expect(results[good[0].sopInstanceUID] == .stored(warning: nil))
                #expect(results[good[1].sopInstanceUID] == .stored(warning: nil))
                let badResult = try #require(results[badUID])
                if case .stored = badResult { Issue.record("corrupt file reported stored: \(badResult)") }
                #expect(Set(try await client.instances(inStudy: study).keys)
                        == Set(good.map(\.sopInstanceUID)))
            }
        }
    }

    /// Nothing listens: retryable.
    @Test func refusedConnectionIsRetryable() async throws {
        let port = try OrthancPeer.freePort()
        let client = try DICOMwebClient(baseURL: URL(string: "http://127.0.0.1:\(port)/dicom-web")!,
                                        timeouts: DICOMwebTimeouts(connect: .seconds(2)))
        do {
            _ = try await client.instances(inStudy: "1.2.3")
            Issue.record("expected an error")
        } catch {
            print("refused: \(error)")
            #expect(error.kind == .retryable)
            #expect(error.code == .connection)
            #expect(error.description.contains("127.0.0.1:\(port)"))
        }
        try await client.shutdown()
    }

    /// A base URL where there is no DICOMweb service: 404, permanent, for STOW and QIDO.
    @Test func wrongBaseURLIsPermanent() async throws {
        let directory = try TestInstances.temporaryDirectory("404")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = try TestInstances.write(in: directory, study: TestInstances.uid(), series: TestInstances.uid())
        try await OrthancPeer.with { orthanc in
            let client = try DICOMwebClient(baseURL: orthanc.httpURL.appendingPathComponent("no-such-root"))
            do {
                _ = try await client.store(files: [(file.path, file.sopInstanceUID)])
                Issue.record("expected an error")
            } catch let error as DICOMwebError {
                print("404: \(error)")
                #expect(error.kind == .permanent)
                #expect(error.status == 404)
                #expect(error.description.contains("/no-such-root/studies"))
            }
            await #expect(throws: DICOMwebError.self) { _ = try await client.instances(inStudy: "1.2.3") }
            try await client.shutdown()
        }
    }

    @Test func badBaseURLIsConfiguration() {
        do {
            _ = try DICOMwebClient(baseURL: URL(string: "ftp://dc/dicom-web")!)
            Issue.record("expected an error")
        } catch {
            #expect(error.kind == .configuration)
        }
        do {
            _ = try DICOMwebClient(baseURL: URL(string: "https://dc/dicom-web")!,
                                   tls: TLSSettings(caFile: "/nonexistent/ca.pem"))
            Issue.record("expected an error")
        } catch {
            #expect(error.kind == .configuration)
            #expect(error.code == .tls)
        }
    }
}
