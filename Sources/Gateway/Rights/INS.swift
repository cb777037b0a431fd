import DICOMCore

/// The national health identifier (identifiant national de santé), carried in the Other Patient
/// IDs Sequence with the OID of its assigning authority.
enum INS {
    /// INS-NIR, INS-NIA and their test OIDs.
    static let assigningAuthorities: Set<String> = [
        "1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11",
    ]

    /// The INS values among a data set's other patient IDs: the OID either as the Issuer of
    /// Patient ID or as the Universal Entity ID of its qualifiers.
    static func values(in otherPatientIDs: [InstanceAttributes.OtherPatientID]) -> [String] {
        otherPatientIDs.filter {
            [$0.issuerOfPatientID, $0.universalEntityID].contains { $0.map(assigningAuthorities.contains) == true }
        }.map(\.patientID)
    }
}
