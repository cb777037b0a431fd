import DICOMCore
import Foundation
import HL7
import Spool
import Testing
@testable import Gateway

@Suite struct ObservationReportTests {
    func oru(_ body: [String], obr25: String = "F") throws -> HL7Message {
        let text = ([
            "MSH|^~\\&|RIS|CHRU|PASSERELLE|SITE|20261207110000||ORU^R01^ORU_R01|C1|P|2.5||||||UNICODE UTF-8",
            "PID|1||P1^^^CHR-ORLEANS^PI~1234567890123^^^&1.2.250.1.213.1.4.8&ISO^INS||DUPONT^JEAN",
            "OBR|1|PL1|ACC1|CTTHO^Scanner thoracique|||20240115101500|||||||||||ACC-18||||20240115120000|||\(obr25)|||||||MD001&MARTIN&Claire",
        ] + body).joined(separator: "\r") + "\r"
        return try HL7Message.parse(Array(text.utf8))
    }

    @Test func readsTextLinesStatusAndPeople() throws {
        let report = try ObservationReport(try oru([
            "ZDS|1.2.3.4^PASSERELLE^Application^DICOM",
            "OBX|1|FT|GDT||Première ligne\\.br\\Deuxième \\F\\ ligne||||||F|||||MD002^DURAND^Paul",
            "OBX|2|TX|GDT||Conclusion~Normal||||||F",
            "OBX|3|NM|SIZE||4||||||F",
        ]), accessionField: 3)
        #expect(report.studyInstanceUID == "1.2.3.4")
        #expect(report.accessionNumber == "ACC1")
        #expect(report.fillerOrderNumber == "ACC1")
        #expect(report.title == "Scanner thoracique")
        #expect(report.patientIdentifiers == [
            .init(id: "P1", issuers: ["CHR-ORLEANS"]), .init(id: "1234567890123", issuers: ["1.2.250.1.213.1.4.8"]),
        ])
        #expect(report.content == .text(["Première ligne", "Deuxième | ligne", "Conclusion", "Normal"]))
        #expect(report.interpreter == "MARTIN^Claire")
        #expect(report.verifier == "DURAND^Paul")
        #expect(report.isComplete)
        #expect(try ObservationReport(try oru(["OBX|1|TX|GDT||x"]), accessionField: 18).accessionNumber == "ACC-18")
        #expect(try !ObservationReport(try oru(["OBX|1|TX|GDT||x"], obr25: "P"), accessionField: 3).isComplete)
    }

    @Test func readsABase64PDF() throws {
        let pdf = Array("%PDF-1.4 tiny".utf8)
        let report = try ObservationReport(try oru(["OBX|1|ED|PDF||^application^pdf^Base64^\(Data(pdf).base64EncodedString())||||||F"]),
                                           accessionField: 3)
        #expect(report.content == .pdf(pdf))
    }

    @Test(arguments: [
        (["OBX|1|NM|SIZE||4"], "no OBX of type TX, FT, ST or ED"),
        (["OBX|1|ED|PDF||^application^pdf^Base64^aGVsbG8="], "not a base64 PDF"),
    ])
    func refusesWhatIsNotAReport(body: [String], reason: String) throws {
        let message = try oru(body)
        let error = #expect(throws: ObservationReport.Problem.self) { try ObservationReport(message, accessionField: 3) }
        #expect(error?.description.contains(reason) == true)
    }

    @Test func uidsFitAndAreValid() {
        let generated = UIDGenerator(root: nil).make()
        #expect(generated.hasPrefix("2.25.") && UID.isValid(generated) && generated.count <= 64)
        let rooted = UIDGenerator(root: "1.2.250.1.999.123456789.123456789.12345").make()
        #expect(rooted.hasPrefix("1.2.250.1.999.123456789.123456789.12345.") && rooted.count <= 64 && UID.isValid(rooted))
        let max: uuid_t = (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255)
        #expect(UIDGenerator.decimal(max) == "340282366920938463463374607431768211455")
        #expect(UIDGenerator(root: nil).make() != generated)
        #expect(UIDGenerator(root: nil).make(seed: "a") == UIDGenerator(root: nil).make(seed: "a"))
        #expect(UIDGenerator(root: nil).make(seed: "a") != UIDGenerator(root: nil).make(seed: "b"))
    }

    @Test func theSRRepeatsTheStudyAndNamesItsPredecessor() throws {
        let report = try ObservationReport(try oru(["OBX|1|TX|GDT||Normal||||||C"], obr25: "C"), accessionField: 3)
        let study = ReportStudy(studyInstanceUID: "1.2.3", patientID: "P1", issuerOfPatientID: "CHR-ORLEANS",
                                patientName: "DUPONT^JEAN", patientBirthDate: "19700101", patientSex: "F",
                                studyDate: "20240115", studyTime: "101500", accessionNumber: "ACC1", studyDescription: nil)
        let previous = HL7ReportRecord(studyInstanceUID: "1.2.3", fillerOrderNumber: "ACC1", resultStatus: "F",
                                       sopClassUID: UIDRegistry.basicTextSRStorageSOPClassUID, sopInstanceUID: "2.25.1",
                                       seriesInstanceUID: "2.25.2")
        let make = {
            ReportDocument(report: report, study: study, predecessor: previous, uids: UIDGenerator(root: nil),
                           key: "RIS^CHRU^C1", institution: "CHR Orléans", createdAt: Date(timeIntervalSince1970: 1_800_000_000))
        }
        let document = make()
        // Made again from the same message: the very same instance (the spool keeps it once).
        #expect(make().part10 == document.part10)
        #expect(document.sopClassUID == UIDRegistry.basicTextSRStorageSOPClassUID)
        var source = try SlicesByteSource([document.part10], skipping: document.dataSetOffset)
        let attributes = try InstanceAttributes.read(from: &source, transferSyntax: .explicitVRLittleEndian,
                                                     length: document.part10.readableBytes - document.dataSetOffset)
        #expect(attributes.studyInstanceUID == "1.2.3")
        #expect(attributes.patientID == "P1")
        #expect(attributes.issuerOfPatientID == "CHR-ORLEANS")
        #expect(attributes.modality == "SR")
        #expect(attributes.sopInstanceUID == document.sopInstanceUID)
        #expect(attributes.seriesInstanceUID == document.seriesInstanceUID)
        let bytes = Array(document.part10.readableBytesView)
        #expect(bytes.firstRange(of: Array("2.25.1".utf8)) != nil)
        #expect(bytes.firstRange(of: Array("CHR Orl\u{E9}ans".utf8)) != nil)
    }
}
