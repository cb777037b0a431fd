import Foundation
import NIOCore

extension DICOMwebClient {
    /// One QIDO-RS request (PS3.18 §10.6): `GET {base}/{path}?{parameters}` accepting
    /// `application/dicom+json`. 204 or an empty body is no match. Parameters are
    /// percent-encoded here; repeated names (`includefield`) are kept.
    public func search(_ path: String, parameters: [(name: String, value: String)]) async throws(DICOMwebError)
        -> [DICOMModelDataSet]
    {
        let url = url(path + Self.queryString(parameters))
        let response = try await execute(request(url, accept: "application/dicom+json"))
        let status = Int(response.status.code)
        let body = try await collect(response, url: url)
        switch status {
        case 204:
            return []
        case 200:
            do {
                return try DICOMJSONModel.parse(Data(body.readableBytesView))
            } catch {
                throw DICOMwebError(kind: .permanent, code: .invalidResponse, url: url, status: status,
                                    message: "unreadable QIDO-RS response: \(error.message)")
            }
        default:
            throw DICOMwebError.forStatus(status, url: url, detail: STOWResponse.bodySnippet(body))
        }
    }

    /// "?a=b&c=d" with RFC 3986 unreserved characters kept (and `*`, `,` which QIDO-RS uses);
    /// empty when there is no parameter.
    static func queryString(_ parameters: [(name: String, value: String)]) -> String {
        guard !parameters.isEmpty else { return "" }
        var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)..<Unicode.Scalar(128)))
        allowed.insert(charactersIn: "-._~*,")
        func encode(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text }
        return "?" + parameters.map { "\(encode($0.name))=\(encode($0.value))" }.joined(separator: "&")
    }
}
