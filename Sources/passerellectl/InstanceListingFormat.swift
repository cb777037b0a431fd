import Foundation
import Spool

/// How `spool list` prints instances: a JSON array for scripts, a table for people.
enum InstanceListingFormat {
    /// The revision state: "current" or "superseded" (an older revision kept beside it).
    static func state(_ listing: InstanceListing) -> String {
        listing.isSuperseded ? "superseded" : "current"
    }

    static func json(_ listings: [InstanceListing], deliveries: [Int64: [String: DeliveryInfo]],
                     root: String) throws -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let objects: [[String: Any]] = listings.map { listing in
            let perDestination = (deliveries[listing.instanceID] ?? [:]).mapValues { delivery -> [String: Any] in
                [
                    "state": delivery.state.rawValue,
                    "attempts": delivery.attempts,
                    "next_at": delivery.nextAt.map(formatter.string(from:)) as Any? ?? NSNull(),
                    "reason": delivery.reason as Any? ?? NSNull(),
                    "sent_sha256": delivery.sentSha256 as Any? ?? NSNull(),
                ]
            }
            return [
                "destinations": perDestination,
                "study_instance_uid": listing.studyInstanceUID,
                "series_instance_uid": listing.seriesInstanceUID,
                "sop_instance_uid": listing.sopInstanceUID,
                "sop_class_uid": listing.sopClassUID,
                "transfer_syntax_uid": listing.transferSyntaxUID,
                "patient_id": listing.patientID,
                "issuer_of_patient_id": listing.issuerOfPatientID,
                "patient_name": listing.patientName as Any? ?? NSNull(),
                "path": "\(root)/\(listing.location.relativePath)",
                "offset": listing.location.offset,
                "size": listing.size,
                // null until computed, moments after the reception (docs/journal.md)
                "sha256": listing.sha256.isEmpty ? NSNull() : listing.sha256 as Any,
                "state": state(listing),
                "revision": listing.revision,
                "calling_ae_title": listing.callingAETitle,
                "received_at": formatter.string(from: listing.receivedAt),
            ]
        }
        let data = try JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    static func table(_ listings: [InstanceListing], deliveries: [Int64: [String: DeliveryInfo]],
                      root: String) -> String {
        var output = ""
        for listing in listings {
            let upload = (deliveries[listing.instanceID] ?? [:]).sorted { $0.key < $1.key }.map { name, delivery in
                "\(name): \(delivery.state.rawValue)" + (delivery.reason.map { " (\($0))" } ?? "")
            }
            output += """
                \(listing.sopInstanceUID)  [\(state(listing))]\(upload.isEmpty ? "" : "  " + upload.joined(separator: ", "))
                  study \(listing.studyInstanceUID)  series \(listing.seriesInstanceUID)
                  patient \(listing.patientID) (\(listing.issuerOfPatientID.isEmpty ? "no issuer" : listing.issuerOfPatientID))  \(listing.patientName ?? "")
                  \(root)/\(listing.location.relativePath) at \(listing.location.offset)  \(listing.size) bytes  sha256 \(listing.sha256.isEmpty ? "pending" : listing.sha256)

                """
        }
        output += "\(listings.count) instance(s)\n"
        return output
    }
}
