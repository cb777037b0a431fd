import DICOMCore
import Foundation
import Testing
@testable import DICOMweb

/// Withdrawing a study from a real Orthanc 1.10: its REST API deletes, QIDO-RS confirms.
@Suite(.serialized)
struct StudyDeletionTests {
    @Test func orthancDeletesAStudyAndQIDOConfirmsIt() async throws {
        let directory = try TestInstances.temporaryDirectory("delete")
        defer { try? FileManager.default.removeItem(at: directory) }
        let study = TestInstances.uid(), kept = TestInstances.uid()
        let files = try (0..<2).map { _ in try TestInstances.write(in: directory, study: study, series: TestInstances.uid()) }
            + [try TestInstances.write(in: directory, study: kept, series: TestInstances.uid())]
        try await OrthancPeer.with { orthanc in
            try await orthanc.withClient { client in
                _ = try await client.store(files: files.map { ($0.path, $0.sopInstanceUID) })
                #expect(try await client.studyExists(study))
                #expect(try await client.studyExists(kept))

                // The Orthanc root as a withdrawal configures it: the URL without /dicom-web.
                #expect(try await client.deleteOrthancStudy(study, orthancURL: orthanc.httpURL))
                #expect(try await client.studyExists(study) == false)
                #expect(try await client.studyExists(kept))
                #expect(try await client.instances(inStudy: study).isEmpty)
                // Gone already: nothing to delete, no error.
                #expect(try await client.deleteOrthancStudy(study, orthancURL: orthanc.httpURL) == false)
            }
        }
    }

    /// Orthanc has no DICOMweb DELETE: whatever it answers, the study is still there and QIDO-RS
    /// says so — which is why a withdrawal counts only once QIDO-RS no longer finds the study.
    @Test func aServerWithoutDICOMwebDeleteKeepsTheStudyAndQIDOSaysSo() async throws {
        let directory = try TestInstances.temporaryDirectory("delete-dw")
        defer { try? FileManager.default.removeItem(at: directory) }
        let study = TestInstances.uid()
        let file = try TestInstances.write(in: directory, study: study, series: TestInstances.uid())
        try await OrthancPeer.with { orthanc in
            try await orthanc.withClient { client in
                _ = try await client.store(files: [(file.path, file.sopInstanceUID)])
                do {
                    try await client.deleteStudy(study)
                } catch {
                    #expect((error as? DICOMwebError)?.kind == .permanent, "\(error)")
                }
                #expect(try await client.studyExists(study))
            }
        }
    }

    @Test func pathSegmentsAreEncoded() {
        #expect(DICOMwebClient.pathSegment("1.2.840.10008") == "1.2.840.10008")
        #expect(DICOMwebClient.pathSegment("a/b?c") == "a%2Fb%3Fc")
    }
}
