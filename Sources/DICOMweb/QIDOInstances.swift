import DICOMCore
import Foundation
import NIOCore
import NIOFoundationCompat

/// QIDO-RS "search for instances of a study" (PS3.18 §10.6): reading one page of results and
/// deciding whether to ask for the next one. Pure; `DICOMwebClient.instances(inStudy:)` does the I/O.
public struct QIDOInstancesQuery: Sendable, Hashable {
    public let studyInstanceUID: String
    /// `limit` of each page (PS3.18 §8.3.4.4).
    public let pageSize: Int
    /// Pages beyond this are not requested: a server that ignores `offset` cannot loop us.
    public let maximumPages: Int

    /// SOP Instance UID (0008,0018) → SOP Class UID (0008,0016) found so far.
    public private(set) var instances: [String: String] = [:]
    public private(set) var offset = 0
    public private(set) var isComplete = false

    public init(studyInstanceUID: String, pageSize: Int = 1000, maximumPages: Int = 10_000) {
        precondition(pageSize > 0 && maximumPages > 0)
        self.studyInstanceUID = studyInstanceUID
        self.pageSize = pageSize
        self.maximumPages = maximumPages
    }

    /// Path and query of the next page, relative to the base URL (`studies/{uid}/instances?…`).
    public var nextPath: String {
        "studies/\(studyInstanceUID)/instances?limit=\(pageSize)&offset=\(offset)"
    }

    /// Takes one page's answer. 204 (or an empty body/array) ends the search. A page shorter
    /// than `pageSize`, or one with no new instance (a server that ignores `offset`), ends it too.
    public mutating func pageReceived(status: Int, contentType: String?, body: ByteBuffer,
                                      url: String?) throws(DICOMwebError) {
        switch status {
        case 204:
            isComplete = true
            return
        case 200:
            break
        default:
            throw DICOMwebError.forStatus(status, url: url, detail: STOWResponse.bodySnippet(body))
        }
        let page = try QIDOInstancesQuery.parse(body, url: url)
        let before = instances.count
        for (uid, sopClass) in page { instances[uid] = sopClass }
        offset += page.count
        if page.count < pageSize || instances.count == before || offset / pageSize >= maximumPages {
            isComplete = true
        }
    }

    /// SOP Instance UID → SOP Class UID pairs of a QIDO-RS JSON body (PS3.18 §F.2), in order.
    /// Results without a SOP Instance UID are skipped; a missing SOP class gives "".
    public static func parse(_ body: ByteBuffer, url: String? = nil) throws(DICOMwebError) -> [(String, String)] {
        let dataSets: [DICOMModelDataSet]
        do {
            dataSets = try DICOMJSONModel.parse(Data(body.readableBytesView))
        } catch {
            throw DICOMwebError(kind: .permanent, code: .invalidResponse, url: url, status: 200,
                                message: "unreadable QIDO-RS response: \(error.message)")
        }
        return dataSets.compactMap { dataSet in
            guard let uid = dataSet.string(.sopInstanceUID), !uid.isEmpty else { return nil }
            return (uid, dataSet.string(.sopClassUID) ?? "")
        }
    }
}
