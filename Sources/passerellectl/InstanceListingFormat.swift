import Foundation
import Spool

/// How `spool list` prints instances: a JSON array for scripts, a table for people.
enum InstanceListingFormat {
    /// No destination exists yet, so a current instance waits in the spool: "queued".
    static func state(_ listing: InstanceListing) -> String {
        listing.isSuperseded ? "superseded" : "queued"
    }

    static func json(_ listings: [InstanceListing], root: String) throws -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let objects: [[String: Any]] = listings.map { listing in
            [
                "study_instance_uid": listing.studyInstanceUID,
                "series_instance_uid": listing.seriesInstanceUID,
                "sop_instance_uid": listing.sopInstanceUID,
                "sop_class_uid": listing.sopClassUID,
                "transfer_syntax_uid": listing.transferSyntaxUID,
                "patient_id": listing.patientID,
                "issuer_of_patient_id": listing.issuerOfPatientID,
                "patient_name": listing.patientName as Any? ?? NSNull(),
                "path": "\(root)/\(listing.filePath)",
                "size": listing.size,
                "sha256": listing.sha256,
                "state": state(listing),
                "revision": listing.revision,
                "calling_ae_title": listing.callingAETitle,
                "received_at": formatter.string(from: listing.receivedAt),
            ]
        }
        let data = try JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    static func table(_ listings: [InstanceListing], root: String) -> String {
        var output = ""
        for listing in listings {
            output += """
                \(listing.sopInstanceUID)  [\(state(listing))]
                  study \(listing.studyInstanceUID)  series \(listing.seriesInstanceUID)
                  patient \(listing.patientID) (\(listing.issuerOfPatientID.isEmpty ? "no issuer" : listing.issuerOfPatientID))  \(listing.patientName ?? "")
                  \(root)/\(listing.filePath)  \(listing.size) bytes  sha256 \(listing.sha256)

                """
        }
        output += "\(listings.count) instance(s)\n"
        return output
    }
}
