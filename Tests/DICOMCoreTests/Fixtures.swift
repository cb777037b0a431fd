import NIOCore
@testable import DICOMCore

/// Builds test data sets with `DataSetWriter`.
enum Fixtures {
    static let ctImageStorage = "1.2.840.10008.5.1.4.1.1.2"
    static let sopInstanceUID = "1.2.826.0.1.3680043.2.1125.1.1"
    static let studyInstanceUID = "1.2.826.0.1.3680043.2.1125.1"
    static let seriesInstanceUID = "1.2.826.0.1.3680043.2.1125.1.2"
    static let privateUN = Tag(0x0011, 0x1010)

    /// A representative instance: Latin-1 text, an undefined-length sequence whose item repeats
    /// PatientID (must not leak to the top level), nested sequences, a defined-length sequence,
    /// an undefined-length private UN (implicit LE inside), and pixel data (encapsulated when asked).
    static func dataSet(explicitVR: Bool = true, littleEndian: Bool = true, encapsulated: Bool = false,
                        pixelBytes: Int = 1024) -> ByteBuffer {
        var w = DataSetWriter(explicitVR: explicitVR, littleEndian: littleEndian)
        w.write(.specificCharacterSet, .CS, string: "ISO_IR 100")
        w.write(.sopClassUID, .UI, string: ctImageStorage)
        w.write(.sopInstanceUID, .UI, string: sopInstanceUID)
        w.write(.studyDate, .DA, string: "20240131")
        w.write(.studyTime, .TM, string: "101500")
        w.write(.accessionNumber, .SH, string: "ACC42")
        w.write(.modality, .CS, string: "CT")
        w.write(.studyDescription, .LO, [0x54, 0xEA, 0x74, 0x65])  // "Tête" in Latin-1
        w.write(.patientName, .PN, [0x48, 0xE9, 0x6C, 0xE8, 0x6E, 0x65, 0x5E, 0x4D])  // "Hélène^M"
        w.write(.patientID, .LO, string: "IPP123")
        w.write(.issuerOfPatientID, .LO, string: "CHR-ORLEANS")
        w.write(.patientBirthDate, .DA, string: "19700101")
        w.write(.patientSex, .CS, string: "F")
        // Other Patient IDs Sequence, undefined length, with a nested undefined-length sequence.
        w.beginSequence(.otherPatientIDsSequence)
        w.beginItem()
        w.write(.patientID, .LO, string: "OTHER-ID")
        w.beginSequence(.issuerOfPatientIDQualifiersSequence)
        w.beginItem()
        w.write(.universalEntityID, .UT, string: "1.2.250.1.999.1")
        w.endItem()
        w.beginItem(length: 0)  // empty defined-length item
        w.endSequence()
        w.endItem()
        w.endSequence()
        w.write(Tag(0x0011, 0x0010), .LO, string: "PASSERELLE TEST")
        // Private UN of undefined length: items in implicit VR little endian (PS3.5 §6.2.2).
        w.writeHeader(privateUN, .UN, length: DataSetWriter.undefinedLength)
        var un = DataSetWriter(explicitVR: false, littleEndian: true)
        un.beginItem()
        un.write(.patientID, .LO, string: "UN-ID")
        un.endItem()
        un.endSequence()
        w.writeRaw(un.buffer)
        w.write(.studyInstanceUID, .UI, string: studyInstanceUID)
        w.write(.seriesInstanceUID, .UI, string: seriesInstanceUID)
        w.write(.seriesNumber, .IS, string: "3")
        w.write(.instanceNumber, .IS, string: "17")
        w.write(.numberOfFrames, .IS, string: "2")
        // Defined-length sequence (Referenced SOP Sequence) with one defined-length item.
        var item = DataSetWriter(explicitVR: explicitVR, littleEndian: littleEndian)
        item.write(.referencedSOPClassUID, .UI, string: ctImageStorage)
        var sequence = DataSetWriter(explicitVR: explicitVR, littleEndian: littleEndian)
        sequence.beginItem(length: UInt32(item.buffer.readableBytes))
        sequence.writeRaw(item.buffer)
        w.writeHeader(.referencedSOPSequence, .SQ, length: UInt32(sequence.buffer.readableBytes))
        w.writeRaw(sequence.buffer)
        if encapsulated {
            w.writeHeader(.pixelData, .OB, length: DataSetWriter.undefinedLength)
            w.beginItem(length: 0)  // empty basic offset table
            w.beginItem(length: UInt32(pixelBytes))
            w.writeRaw(ByteBuffer(repeating: 0xAB, count: pixelBytes))
            w.beginItem(length: 4)
            w.writeRaw(ByteBuffer(bytes: [1, 2, 3, 4]))
            w.endSequence()
        } else {
            w.write(.pixelData, .OW, [UInt8](repeating: 0x55, count: pixelBytes))
        }
        return w.buffer
    }

    static func expectedAttributes() -> InstanceAttributes {
        var a = InstanceAttributes()
        a.specificCharacterSet = ["ISO_IR 100"]
        a.sopClassUID = ctImageStorage
        a.sopInstanceUID = sopInstanceUID
        a.studyInstanceUID = studyInstanceUID
        a.seriesInstanceUID = seriesInstanceUID
        a.patientID = "IPP123"
        a.issuerOfPatientID = "CHR-ORLEANS"
        a.patientName = "Hélène^M"
        a.patientBirthDate = "19700101"
        a.patientSex = "F"
        a.studyDate = "20240131"
        a.studyTime = "101500"
        a.accessionNumber = "ACC42"
        a.studyDescription = "Tête"
        a.modality = "CT"
        a.seriesNumber = "3"
        a.instanceNumber = "17"
        a.numberOfFrames = "2"
        // Its Other Patient IDs Sequence: an ID whose issuer is in the qualifiers' Universal Entity ID.
        a.otherPatientIDs = [.init(patientID: "OTHER-ID", universalEntityID: "1.2.250.1.999.1")]
        return a
    }
}
