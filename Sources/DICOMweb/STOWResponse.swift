import DICOMCore
import Foundation
import NIOCore
import NIOFoundationCompat

/// What the server said about one instance of a STOW-RS request.
public enum STOWInstanceResult: Sendable, Hashable {
    /// In ReferencedSOPSequence (0008,1199); `warning` is its WarningReason (0008,1196), if any
    /// (0xB000 coercion of data elements, 0xB006 elements discarded, 0xB007 data set does not
    /// match SOP class — PS3.18 Table 10.5.3-2 / PS3.4 Annex GG).
    case stored(warning: UInt16?)
    /// In FailedSOPSequence (0008,1198) with its FailureReason (0008,1197), e.g. 0x0110
    /// processing failure, 0x0122 SOP class not supported, 0xA700 out of resources, 0xA900
    /// data set does not match SOP class, 0xC000 cannot understand (PS3.4 Annex GG).
    case failed(reason: UInt16)
    /// Sent, but in neither sequence of a 202/409 response: the outcome is unknown; send again.
    case unreported
}

/// A STOW-RS response body (PS3.18 §10.5.3): the Store Instances Response Module, in the
/// DICOM JSON model (`application/dicom+json`) or the Native DICOM Model (`application/dicom+xml`).
public struct STOWResponse: Sendable, Hashable {
    /// One item of ReferencedSOPSequence or FailedSOPSequence.
    public struct Instance: Sendable, Hashable {
        public var sopClassUID: String?  // ReferencedSOPClassUID (0008,1150)
        public var sopInstanceUID: String  // ReferencedSOPInstanceUID (0008,1155)
        public var result: STOWInstanceResult
        public init(sopClassUID: String?, sopInstanceUID: String, result: STOWInstanceResult) {
            self.sopClassUID = sopClassUID
            self.sopInstanceUID = sopInstanceUID
            self.result = result
        }
    }

    public var instances: [Instance]

    public init(instances: [Instance]) { self.instances = instances }

    /// Results by SOP Instance UID; an instance in both sequences counts as failed.
    public var results: [String: STOWInstanceResult] {
        var out: [String: STOWInstanceResult] = [:]
        for instance in instances {
            if case .failed = out[instance.sopInstanceUID] { continue }
            out[instance.sopInstanceUID] = instance.result
        }
        return out
    }

    /// Reads a body by its media type: XML when the type says `xml`, JSON otherwise (also for a
    /// missing type). Throws `.invalidResponse` (permanent) when the body can't be read.
    public static func parse(_ body: ByteBuffer, contentType: String?, url: String? = nil,
                             status: Int? = nil) throws(DICOMwebError) -> STOWResponse {
        let isXML = contentType.map { $0.lowercased().contains("xml") } ?? false
        let dataSets: [DICOMModelDataSet]
        do {
            if isXML {
                dataSets = try DICOMXMLModel.parse(Array(body.readableBytesView))
            } else {
                dataSets = try DICOMJSONModel.parse(Data(body.readableBytesView))
            }
        } catch {
            throw DICOMwebError(kind: .permanent, code: .invalidResponse, url: url, status: status,
                                message: "unreadable STOW-RS response (\(contentType ?? "no Content-Type")): \(error.message)")
        }
        var instances: [Instance] = []
        for dataSet in dataSets {
            for item in dataSet.items(.referencedSOPSequence) {
                guard let uid = item.string(.referencedSOPInstanceUID) else { continue }
                instances.append(Instance(sopClassUID: item.string(.referencedSOPClassUID), sopInstanceUID: uid,
                                          result: .stored(warning: item.uint16(.warningReason))))
            }
            for item in dataSet.items(.failedSOPSequence) {
                guard let uid = item.string(.referencedSOPInstanceUID) else { continue }
                // A failed item without FailureReason: 0x0110 "processing failure" (PS3.4 Annex GG).
                instances.append(Instance(sopClassUID: item.string(.referencedSOPClassUID), sopInstanceUID: uid,
                                          result: .failed(reason: item.uint16(.failureReason) ?? 0x0110)))
            }
        }
        return STOWResponse(instances: instances)
    }

    /// The per-instance outcome of a STOW-RS request from its final status and body
    /// (PS3.18 Table 10.5.3-1), for every UID in `requested` plus any other the server named.
    ///
    /// - 200: all stored; the body, when readable, adds warnings (and any failure it lists).
    /// - 202: some stored with warnings or some failed; instances missing from the body are
    ///   `.unreported`; an unreadable body makes them all `.unreported`.
    /// - 409: some or all failed; the body must list them (else a permanent `.invalidResponse`).
    /// - 400 with a readable body that lists instances (Orthanc 1.10 does this when a part is
    ///   not a readable DICOM file: it stores the others, lists them in ReferencedSOPSequence
    ///   and leaves FailedSOPSequence empty since it has no UID to name): listed instances as
    ///   said, unlisted ones `.failed(reason: 0xC000)` ("cannot understand"). Sending them again
    ///   would fail again.
    /// - anything else: `DICOMwebError.forStatus` (retryable, permanent or configuration).
    public static func evaluate(status: Int, contentType: String?, body: ByteBuffer, url: String?,
                                requested: [String]) throws(DICOMwebError) -> [String: STOWInstanceResult] {
        switch status {
        case 200, 202, 409:
            let response: STOWResponse
            do {
                response = try parse(body, contentType: contentType, url: url, status: status)
            } catch {
                switch status {
                case 200: response = STOWResponse(instances: [])
                case 202: response = STOWResponse(instances: [])
                default: throw error
                }
            }
            if status == 409, response.instances.isEmpty {
                throw DICOMwebError(kind: .permanent, code: .invalidResponse, url: url, status: status,
                                    message: "conflict without a list of failed instances")
            }
            var results = response.results
            let absent: STOWInstanceResult = status == 200 ? .stored(warning: nil) : .unreported
            for uid in requested where results[uid] == nil { results[uid] = absent }
            return results
        case 400:
            if let response = try? parse(body, contentType: contentType, url: url, status: status),
               !response.instances.isEmpty {
                var results = response.results
                for uid in requested where results[uid] == nil { results[uid] = .failed(reason: 0xC000) }
                return results
            }
            throw DICOMwebError.forStatus(status, url: url, detail: bodySnippet(body))
        default:
            throw DICOMwebError.forStatus(status, url: url, detail: bodySnippet(body))
        }
    }

    /// The start of a text body, for error messages.
    static func bodySnippet(_ body: ByteBuffer) -> String? {
        guard body.readableBytes > 0 else { return nil }
        let prefix = body.readableBytesView.prefix(300)
        let text = String(decoding: prefix, as: UTF8.self)
            .split(whereSeparator: \.isNewline).joined(separator: " ")
            .trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty, text.unicodeScalars.allSatisfy({ $0.value >= 0x20 || $0 == "\t" }) else { return nil }
        return body.readableBytes > 300 ? text + "…" : text
    }
}
