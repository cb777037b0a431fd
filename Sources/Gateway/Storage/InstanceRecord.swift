import DICOMCore
import DICOMNetwork
import Foundation
import Spool

/// A received instance as a journal record: the fields its header carries (so that replay
/// can index it without anything else) and the attributes the index keeps.
enum InstanceRecord {
    typealias Field = JournalFields

    static func header(sopInstanceUID: String, sopClassUID: String, transferSyntaxUID: String, callingAETitle: String,
                       receivedAt: Date, dataSetOffset: Int, payloadLength: Int, crc32c: UInt32) -> JournalRecordHeader {
        JournalRecordHeader(type: .dicomInstance, payloadLength: payloadLength, checksum: .crc32c(crc32c), fields: [
            Field.sopInstanceUID: sopInstanceUID, Field.sopClassUID: sopClassUID,
            Field.transferSyntaxUID: transferSyntaxUID, Field.callingAETitle: callingAETitle,
            Field.receivedAt: String(receivedAt.timeIntervalSince1970), Field.dataSetOffset: String(dataSetOffset),
        ])
    }

    static func newInstance(header: JournalRecordHeader, location: StoredLocation,
                            attributes: IndexedAttributes) -> NewInstance {
        let fields = header.fields
        return NewInstance(
            sopInstanceUID: fields[Field.sopInstanceUID] ?? "", sopClassUID: fields[Field.sopClassUID] ?? "",
            transferSyntaxUID: fields[Field.transferSyntaxUID] ?? "", attributes: attributes, location: location,
            sha256: header.checksum.sha256 ?? "", callingAETitle: fields[Field.callingAETitle] ?? "",
            receivedAt: Date(timeIntervalSince1970: Double(fields[Field.receivedAt] ?? "") ?? 0))
    }

    /// Walks the whole data set (detecting truncation) and checks it against the command.
    static func attributes(from source: inout some DICOMByteSource, transferSyntax: TransferSyntax, length: Int,
                           sopClassUID: String, sopInstanceUID: String) throws -> IndexedAttributes {
        let attributes = try InstanceAttributes.read(from: &source, transferSyntax: transferSyntax, length: length)
        guard attributes.sopClassUID == sopClassUID, attributes.sopInstanceUID == sopInstanceUID else {
            throw StoreOutcome(status: .dataSetDoesNotMatchSOPClass,
                               errorComment: "SOP Class/Instance UID of the data set differ from the command")
        }
        guard let study = attributes.studyInstanceUID, UID.isValid(study) else {
            throw StoreOutcome(status: .dataSetDoesNotMatchSOPClass, errorComment: "missing or invalid Study Instance UID")
        }
        guard let series = attributes.seriesInstanceUID, UID.isValid(series) else {
            throw StoreOutcome(status: .dataSetDoesNotMatchSOPClass, errorComment: "missing or invalid Series Instance UID")
        }
        return IndexedAttributes(
            studyInstanceUID: study, seriesInstanceUID: series,
            patientID: attributes.patientID ?? "", issuerOfPatientID: attributes.issuerOfPatientID ?? "",
            patientName: attributes.patientName, patientBirthDate: attributes.patientBirthDate,
            patientSex: attributes.patientSex, studyDate: attributes.studyDate, studyTime: attributes.studyTime,
            accessionNumber: attributes.accessionNumber, studyDescription: attributes.studyDescription,
            modality: attributes.modality, seriesNumber: attributes.seriesNumber,
            instanceNumber: attributes.instanceNumber, ins: INS.values(in: attributes.otherPatientIDs))
    }
}
