/// Tags the community query logic reads or computes, by their PS3.6 keyword.
enum QueryTag {
    static let specificCharacterSet: UInt32 = 0x0008_0005
    static let sopInstanceUID: UInt32 = 0x0008_0018
    static let studyDate: UInt32 = 0x0008_0020
    static let accessionNumber: UInt32 = 0x0008_0050
    static let queryRetrieveLevel: UInt32 = 0x0008_0052
    static let retrieveAETitle: UInt32 = 0x0008_0054
    static let modality: UInt32 = 0x0008_0060
    static let modalitiesInStudy: UInt32 = 0x0008_0061
    static let institutionName: UInt32 = 0x0008_0080
    static let patientName: UInt32 = 0x0010_0010
    static let patientID: UInt32 = 0x0010_0020
    static let issuerOfPatientID: UInt32 = 0x0010_0021
    static let patientBirthDate: UInt32 = 0x0010_0030
    static let otherPatientIDsSequence: UInt32 = 0x0010_1002
    static let studyInstanceUID: UInt32 = 0x0020_000D
    static let seriesInstanceUID: UInt32 = 0x0020_000E
    static let numberOfPatientRelatedStudies: UInt32 = 0x0020_1200
    static let numberOfPatientRelatedSeries: UInt32 = 0x0020_1202
    static let numberOfPatientRelatedInstances: UInt32 = 0x0020_1204
    static let numberOfStudyRelatedSeries: UInt32 = 0x0020_1206
    static let numberOfStudyRelatedInstances: UInt32 = 0x0020_1208

    /// Passerelle's private block (docs/community.md): creator (0009,0010) reserves (0009,10xx).
    static let privateCreator: UInt32 = 0x0009_0010
    static let producingSiteID: UInt32 = 0x0009_1001
    static let producingSiteEmitter: UInt32 = 0x0009_1002
    static let reportPresent: UInt32 = 0x0009_1003
    static let privateCreatorValue = "PASSERELLE"

    /// An element of the block that (0009,0010) reserves.
    static func isInPrivateBlock(_ tag: UInt32) -> Bool { tag & 0xFFFF_FF00 == 0x0009_1000 }

    /// INS (identifiant national de santé) assigning authorities: INS-NIR, INS-NIA and their test OIDs.
    static let insIssuers: Set<String> = [
        "1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11",
    ]
}
