import AsyncHTTPClient
import Foundation
import NIOCore

/// Removing a study from an origin server: `DELETE {base}/studies/{uid}` as cloud DICOM stores
/// and dcm4chee-arc accept it, or Orthanc's REST API, which deletes outside DICOMweb.
extension DICOMwebClient {
    /// Whether QIDO-RS still finds the study (how a withdrawal is confirmed). Any answer to a
    /// search by its UID counts, even one that omits the UID: gone means nothing found.
    public func studyExists(_ studyInstanceUID: String) async throws(DICOMwebError) -> Bool {
        !(try await search("studies", parameters: [("StudyInstanceUID", studyInstanceUID)]).isEmpty)
    }

    /// Whether QIDO-RS still finds one instance of a study.
    public func instanceExists(study: String, sopInstanceUID: String) async throws(DICOMwebError) -> Bool {
        !(try await search("studies/\(Self.pathSegment(study))/instances",
                           parameters: [("SOPInstanceUID", sopInstanceUID)])
            .filter { $0.string("00080018") ?? sopInstanceUID == sopInstanceUID }.isEmpty)
    }

    /// `DELETE {base}/studies/{uid}/series/{uid}/instances/{uid}`; 404 is gone already.
    public func deleteInstance(study: String, series: String, sopInstanceUID: String) async throws(DICOMwebError) {
        try await delete(url("studies/\(Self.pathSegment(study))/series/\(Self.pathSegment(series))/instances/"
                             + Self.pathSegment(sopInstanceUID)))
    }

    /// Orthanc: the instance looked up by its UID (`POST /tools/lookup`), then
    /// `DELETE {orthanc}/instances/{id}`. Returns false when Orthanc has no such instance.
    @discardableResult
    public func deleteOrthancInstance(_ sopInstanceUID: String, orthancURL: URL) async throws(DICOMwebError) -> Bool {
        let root = Self.root(orthancURL)
        let ids = try await orthancLookup(sopInstanceUID, type: "Instance", root: root)
        for id in ids {
            try await delete(root + "/instances/" + Self.pathSegment(id))
        }
        return !ids.isEmpty
    }

    /// `DELETE {base}/studies/{uid}`. A study the server does not have (404) is gone already.
    public func deleteStudy(_ studyInstanceUID: String) async throws(DICOMwebError) {
        try await delete(url("studies/\(Self.pathSegment(studyInstanceUID))"))
    }

    /// Orthanc: `POST {orthanc}/tools/lookup` finds the study's Orthanc ID, then
    /// `DELETE {orthanc}/studies/{id}`. Returns false when Orthanc has no such study.
    /// `exceptPatientID`: the copy held under that patient ID is kept (Orthanc keys a study by
    /// its patient ID too: after a change of identifier it holds one copy per ID).
    @discardableResult
    public func deleteOrthancStudy(_ studyInstanceUID: String, orthancURL: URL,
                                   exceptPatientID: String? = nil) async throws(DICOMwebError) -> Bool {
        let root = Self.root(orthancURL)
        var deleted = false
        for id in try await orthancLookup(studyInstanceUID, type: "Study", root: root) {
            let url = root + "/studies/" + Self.pathSegment(id)
            if let exceptPatientID {
                let response = try await execute(request(url, accept: "application/json"))
                let body = try await collect(response, url: url)
                let study = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
                let patient = (study?["PatientMainDicomTags"] as? [String: Any])?["PatientID"] as? String
                if response.status.code == 200, patient == exceptPatientID { continue }
            }
            try await delete(url)
            deleted = true
        }
        return deleted
    }

    private static func root(_ url: URL) -> String {
        var root = url.absoluteString
        while root.hasSuffix("/") { root.removeLast() }
        return root
    }

    /// The Orthanc IDs of the resources of this type (`Study`, `Instance`) with this UID (`POST /tools/lookup`).
    private func orthancLookup(_ uid: String, type: String, root: String) async throws(DICOMwebError) -> [String] {
        let lookupURL = root + "/tools/lookup"
        var lookup = request(lookupURL, accept: "application/json")
        lookup.method = .POST
        lookup.body = .bytes(ByteBuffer(string: uid))
        let response = try await execute(lookup)
        let body = try await collect(response, url: lookupURL)
        guard response.status.code == 200 else {
            throw DICOMwebError.forStatus(Int(response.status.code), url: lookupURL,
                                          detail: STOWResponse.bodySnippet(body))
        }
        guard let matches = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [[String: Any]] else {
            throw DICOMwebError(kind: .permanent, code: .invalidResponse, url: lookupURL, status: 200,
                                message: "unreadable Orthanc lookup response")
        }
        return matches.filter { $0["Type"] as? String == type }.compactMap { $0["ID"] as? String }
    }

    private func delete(_ url: String) async throws(DICOMwebError) {
        var delete = request(url, accept: "application/json")
        delete.method = .DELETE
        let response = try await execute(delete)
        let body = try await collect(response, url: url)
        switch Int(response.status.code) {
        case 200...299, 404: return
        case let status: throw DICOMwebError.forStatus(status, url: url, detail: STOWResponse.bodySnippet(body))
        }
    }

    /// A UID or an Orthanc ID as one path segment (both are safe characters; encoded anyway).
    static func pathSegment(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)..<Unicode.Scalar(128)))
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
