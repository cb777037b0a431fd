import Crypto
import DICOMCore
import Foundation
import NIOCore
import Spool

/// The DICOM instance a report becomes, in its study: a Basic Text SR for text (PS3.3
/// A.35.1), an Encapsulated PDF for a PDF (A.45.1). It repeats the study's patient and
/// general study attributes from the spool, takes a series of its own and new UIDs, and
/// refers to the report it corrects (Predecessor Documents Sequence).
struct ReportDocument {
    let sopClassUID: String
    let sopInstanceUID: String
    let seriesInstanceUID: String
    /// The Part-10 bytes (explicit VR little endian) and where the data set starts in them.
    let part10: ByteBuffer
    let dataSetOffset: Int

    /// An element to write; sequences hold items of elements. Sorted by tag when written.
    indirect enum Element {
        case value(Tag, VR, [UInt8])
        case sequence(Tag, [[Element]])

        static func text(_ tag: Tag, _ vr: VR, _ value: String?) -> Element { .value(tag, vr, Array((value ?? "").utf8)) }

        var tag: Tag {
            switch self {
            case .value(let tag, _, _), .sequence(let tag, _): tag
            }
        }
    }

    /// `key` names the report for good (its message's sender and control ID): the UIDs derive from it.
    init(report: ObservationReport, study: ReportStudy, predecessor: HL7ReportRecord?, uids: UIDGenerator,
         key: String, institution: String?, createdAt: Date) {
        sopInstanceUID = uids.make(seed: key + "/instance")
        seriesInstanceUID = uids.make(seed: key + "/series")
        let (date, time) = Self.dateTime(createdAt)
        let contentDate = report.reportedDateTime.isEmpty ? report.observationDateTime : report.reportedDateTime
        let (reportDate, reportTime) = Self.dicomDateTime(hl7: contentDate) ?? (date, time)
        var elements: [Element] = [
            .text(.specificCharacterSet, .CS, "ISO_IR 192"),
            .text(.instanceCreationDate, .DA, date), .text(.instanceCreationTime, .TM, time),
            .text(.sopInstanceUID, .UI, sopInstanceUID),
            .text(.studyDate, .DA, study.studyDate), .text(.studyTime, .TM, study.studyTime),
            .text(.contentDate, .DA, reportDate), .text(.contentTime, .TM, reportTime),
            .text(.accessionNumber, .SH, study.accessionNumber),
            .text(.manufacturer, .LO, "Passerelle"), .text(.referringPhysicianName, .PN, nil),
            .text(.studyDescription, .LO, study.studyDescription),
            .text(.patientName, .PN, study.patientName), .text(.patientID, .LO, study.patientID),
            .text(.issuerOfPatientID, .LO, study.issuerOfPatientID),
            .text(.patientBirthDate, .DA, study.patientBirthDate), .text(.patientSex, .CS, study.patientSex),
            .text(.studyInstanceUID, .UI, study.studyInstanceUID), .text(.seriesInstanceUID, .UI, seriesInstanceUID),
            .text(.studyID, .SH, nil), .text(.seriesNumber, .IS, "900"), .text(.instanceNumber, .IS, "1"),
        ]
        if let institution { elements.append(.text(.institutionName, .LO, institution)) }
        switch report.content {
        case .text(let lines):
            sopClassUID = UIDRegistry.basicTextSRStorageSOPClassUID
            elements += Self.structuredReport(report, lines: lines, predecessor: predecessor, date: reportDate,
                                              time: reportTime)
        case .pdf(let pdf):
            sopClassUID = UIDRegistry.encapsulatedPDFStorageSOPClassUID
            elements += [
                .text(.modality, .CS, "DOC"), .text(.conversionType, .CS, "WSD"),
                .text(.burnedInAnnotation, .CS, "YES"), .text(.documentTitle, .ST, report.title),
                .sequence(.conceptNameCodeSequence, []), .text(.acquisitionDateTime, .DT, nil),
                .text(.mimeTypeOfEncapsulatedDocument, .LO, "application/pdf"),
                .value(.encapsulatedDocument, .OB, pdf),
            ]
            if let predecessor { elements.append(Self.predecessors(predecessor)) }
        }
        elements.append(.text(.sopClassUID, .UI, sopClassUID))
        var writer = DataSetWriter(explicitVR: true, littleEndian: true)
        Self.write(elements, into: &writer)
        var file = Part10.fileMetaInformation(mediaStorageSOPClassUID: sopClassUID,
                                              mediaStorageSOPInstanceUID: sopInstanceUID,
                                              transferSyntaxUID: TransferSyntax.explicitVRLittleEndian.uid,
                                              sourceApplicationEntityTitle: nil)
        dataSetOffset = file.readableBytes
        file.writeImmutableBuffer(writer.buffer)
        part10 = file
    }

    /// SR Document Series, General and Content modules: a root container "Diagnostic imaging
    /// report" holding the text, and the interpreter as person observer context.
    private static func structuredReport(_ report: ObservationReport, lines: [String], predecessor: HL7ReportRecord?,
                                         date: String, time: String) -> [Element] {
        var elements: [Element] = [
            .text(.modality, .CS, "SR"), .sequence(.referencedPerformedProcedureStepSequence, []),
            .sequence(.performedProcedureCodeSequence, []),
            .text(.completionFlag, .CS, report.isComplete ? "COMPLETE" : "PARTIAL"),
            .text(.valueType, .CS, "CONTAINER"),
            .sequence(.conceptNameCodeSequence, [code("18748-4", "LN", "Diagnostic imaging report")]),
            .text(.continuityOfContent, .CS, "SEPARATE"),
        ]
        let verifier = report.verifier ?? report.interpreter
        if report.isComplete, let verifier {
            elements.append(.text(.verificationFlag, .CS, "VERIFIED"))
            elements.append(.sequence(.verifyingObserverSequence, [[
                .text(.verifyingObserverName, .PN, verifier),
                .sequence(.verifyingObserverIdentificationCodeSequence, []),
                .text(.verifyingOrganization, .LO, "Radiology"),
                .text(.verificationDateTime, .DT, date + time),
            ]]))
        } else {
            elements.append(.text(.verificationFlag, .CS, "UNVERIFIED"))
        }
        var content: [[Element]] = []
        if let interpreter = report.interpreter ?? report.verifier {
            content.append([
                .text(.relationshipType, .CS, "HAS OBS CONTEXT"), .text(.valueType, .CS, "PNAME"),
                .sequence(.conceptNameCodeSequence, [code("121008", "DCM", "Person Observer Name")]),
                .text(.personName, .PN, interpreter),
            ])
        }
        content.append([
            .text(.relationshipType, .CS, "CONTAINS"), .text(.valueType, .CS, "TEXT"),
            .sequence(.conceptNameCodeSequence, [code("121071", "DCM", "Finding")]),
            .text(.textValue, .UT, lines.joined(separator: "\r\n")),
        ])
        elements.append(.sequence(.contentSequence, content))
        if let predecessor { elements.append(predecessors(predecessor)) }
        return elements
    }

    private static func predecessors(_ previous: HL7ReportRecord) -> Element {
        .sequence(.predecessorDocumentsSequence, [[
            .text(.studyInstanceUID, .UI, previous.studyInstanceUID),
            .sequence(.referencedSeriesSequence, [[
                .text(.seriesInstanceUID, .UI, previous.seriesInstanceUID),
                .sequence(.referencedSOPSequence, [[
                    .text(.referencedSOPClassUID, .UI, previous.sopClassUID),
                    .text(.referencedSOPInstanceUID, .UI, previous.sopInstanceUID),
                ]]),
            ]]),
        ]])
    }

    private static func code(_ value: String, _ scheme: String, _ meaning: String) -> [Element] {
        [.text(.codeValue, .SH, value), .text(.codingSchemeDesignator, .SH, scheme), .text(.codeMeaning, .LO, meaning)]
    }

    private static func write(_ elements: [Element], into writer: inout DataSetWriter) {
        for element in elements.sorted(by: { $0.tag < $1.tag }) {
            switch element {
            case .value(let tag, let vr, let value):
                writer.write(tag, vr, value)
            case .sequence(let tag, let items):
                writer.beginSequence(tag)
                for item in items {
                    writer.beginItem()
                    write(item, into: &writer)
                    writer.endItem()
                }
                writer.endSequence()
            }
        }
    }

    /// DA and TM of a date, in UTC.
    static func dateTime(_ date: Date) -> (String, String) {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var c = tm()
        gmtime_r(&seconds, &c)
        return (String(format: "%04d%02d%02d", c.tm_year + 1900, c.tm_mon + 1, c.tm_mday),
                String(format: "%02d%02d%02d", c.tm_hour, c.tm_min, c.tm_sec))
    }

    /// DA and TM from an HL7 TS (YYYYMMDD[HHMM[SS]]…), nil when it does not start with a date.
    static func dicomDateTime(hl7: String) -> (String, String)? {
        let digits = hl7.prefix { $0.isNumber }
        guard digits.count >= 8 else { return nil }
        let time = String(digits.dropFirst(8).prefix(6))
        return (String(digits.prefix(8)), time.count >= 4 ? time : "")
    }
}

/// New UIDs: under `[site] uid_root` when set, else `2.25.` and a 128-bit value in decimal
/// (PS3.5 §B.2), either way at most 64 characters. A report's UIDs derive from its message
/// (sender, control ID), so applying a message again — after a stop between storing its
/// instance and marking it applied — makes the very same instance, which the spool keeps once.
struct UIDGenerator: Sendable {
    let root: String?

    /// A random UID.
    func make() -> String {
        make(UUID().uuid)
    }

    /// The UID named by `seed` (its SHA-256's first 128 bits).
    func make(seed: String) -> String {
        let digest = Array(SHA256.hash(data: Array(seed.utf8)))
        let value: uuid_t = (digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
                             digest[8], digest[9], digest[10], digest[11], digest[12], digest[13], digest[14], digest[15])
        return make(value)
    }

    private func make(_ value: uuid_t) -> String {
        let decimal = Self.decimal(value)
        guard let root else { return "2.25." + decimal }
        return root + "." + decimal.prefix(64 - root.count - 1)
    }

    /// The decimal digits of a 128-bit value (no leading zero).
    static func decimal(_ uuid: uuid_t) -> String {
        var bytes = withUnsafeBytes(of: uuid) { Array($0) }
        var digits: [UInt8] = []
        while bytes.contains(where: { $0 != 0 }) {
            var remainder = 0
            for index in bytes.indices {
                let value = remainder << 8 | Int(bytes[index])
                bytes[index] = UInt8(value / 10)
                remainder = value % 10
            }
            digits.append(UInt8(remainder) + 48)
        }
        return digits.isEmpty ? "0" : String(decoding: digits.reversed(), as: UTF8.self)
    }
}
