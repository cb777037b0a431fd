import Foundation
import HL7

/// What an ORU^R01 says about a report (IHE Radiology's report as observations of its
/// order): the patient, the study it belongs to, its status, who wrote and verified it, and
/// its text or PDF. Reading the message is policy (which field means what here), so it lives
/// in the Gateway; the HL7 target only parses.
struct ObservationReport: Equatable {
    struct PatientIdentifier: Equatable {
        var id: String
        /// CX-4: the assigning authority's namespace ID, or its universal ID.
        var issuers: [String]
    }

    enum Content: Equatable {
        /// Lines of TX/FT/ST observations, in order (FT line breaks included).
        case text([String])
        case pdf([UInt8])
    }

    var patientIdentifiers: [PatientIdentifier]
    /// ZDS-1 (IHE Radiology): the study's UID, when the RIS knows it.
    var studyInstanceUID: String?
    /// OBR-3 (filler order number) or OBR-18, per `[hl7] accession_number`.
    var accessionNumber: String
    var fillerOrderNumber: String
    /// OBR-4.2 (or .1): what was done, the document's title.
    var title: String
    /// OBR-25: F final, C corrected, P preliminary, X cancelled, …
    var resultStatus: String
    /// OBR-7 / OBR-22: when observed, when the result was reported (HL7 TS).
    var observationDateTime: String
    var reportedDateTime: String
    /// OBR-32 (principal result interpreter), as DICOM PN `FAMILY^GIVEN`.
    var interpreter: String?
    /// OBX-16 (responsible observer) of the first observation that names one, as DICOM PN.
    var verifier: String?
    var content: Content

    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    /// `accessionField` is 3 (OBR-3) or 18 (OBR-18).
    init(_ message: HL7Message, accessionField: Int) throws(Problem) {
        guard let pid = message.segment(named: "PID"), let obr = message.segment(named: "OBR") else {
            throw Problem(description: "ORU^R01 without PID or OBR")
        }
        let identifiers = pid.field(3)
        patientIdentifiers = (0..<identifiers.repetitionCount).compactMap { repetition in
            let id = identifiers.value(repetition: repetition)
            guard !id.isEmpty else { return nil }
            let issuers = [identifiers.value(repetition: repetition, component: 4),
                           identifiers.value(repetition: repetition, component: 4, subcomponent: 2)].filter { !$0.isEmpty }
            return PatientIdentifier(id: id, issuers: issuers)
        }
        guard !patientIdentifiers.isEmpty else { throw Problem(description: "PID-3 names no patient identifier") }
        let zds = message.segment(named: "ZDS")?.field(1).value()
        studyInstanceUID = zds.flatMap { $0.isEmpty ? nil : $0 }
        fillerOrderNumber = obr.field(3).value()
        accessionNumber = obr.field(accessionField).value()
        guard studyInstanceUID != nil || !accessionNumber.isEmpty else {
            throw Problem(description: "neither ZDS-1 (Study Instance UID) nor OBR-\(accessionField) (accession number) names the study")
        }
        let service = obr.field(4)
        title = [service.value(component: 2), service.value(component: 1)].first { !$0.isEmpty } ?? "Report"
        resultStatus = obr.field(25).value().uppercased()
        observationDateTime = obr.field(7).value()
        reportedDateTime = obr.field(22).value()
        // OBR-32 is NDL: its first component is CNN, whose subcomponents are ID & family & given.
        interpreter = Self.personName(family: obr.field(32).value(component: 1, subcomponent: 2),
                                      given: obr.field(32).value(component: 1, subcomponent: 3))
        var lines: [String] = []
        var pdf: [UInt8]?
        var verifier: String?
        for obx in message.segments(named: "OBX") {
            if verifier == nil {
                verifier = Self.personName(family: obx.field(16).value(component: 2), given: obx.field(16).value(component: 3))
            }
            let value = obx.field(5)
            switch obx.field(2).value().uppercased() {
            case "TX", "FT", "ST":
                for repetition in 0..<value.repetitionCount {
                    lines += value.value(repetition: repetition).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                }
            case "ED":
                // ED: source application ^ type of data ^ data subtype ^ encoding ^ data.
                guard value.value(component: 4).uppercased() == "BASE64",
                      let data = Data(base64Encoded: value.value(component: 5), options: .ignoreUnknownCharacters),
                      data.starts(with: Array("%PDF".utf8)) else {
                    throw Problem(description: "OBX-5 of type ED is not a base64 PDF")
                }
                pdf = Array(data)
            default:
                continue
            }
        }
        self.verifier = verifier
        if let pdf {
            content = .pdf(pdf)
        } else {
            guard !lines.isEmpty else { throw Problem(description: "no OBX of type TX, FT, ST or ED holds the report") }
            content = .text(lines)
        }
    }

    /// DICOM PN from HL7 name components (nil when there is no family name).
    static func personName(family: String, given: String) -> String? {
        guard !family.isEmpty else { return nil }
        return given.isEmpty ? family : "\(family)^\(given)"
    }

    /// PS3.3 C.17.2: COMPLETE for final and corrected reports.
    var isComplete: Bool { ["F", "C"].contains(resultStatus) }
}
