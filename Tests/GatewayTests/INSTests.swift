import DICOMCore
import Testing
@testable import Gateway

@Suite struct INSTests {
    /// The INS is recognised by its OID, as the issuer or as the qualifiers' Universal Entity
    /// ID; another identifier in the sequence (another OID, a local ID) is not an INS.
    @Test func onlyIdentifiersIssuedByAnINSOIDAreINS() {
        let ids: [InstanceAttributes.OtherPatientID] = [
            .init(patientID: "1850799123456", issuerOfPatientID: "1.2.250.1.213.1.4.8"),
            .init(patientID: "2850799123457", universalEntityID: "1.2.250.1.213.1.4.9"),
            .init(patientID: "TEST-NIR", issuerOfPatientID: "1.2.250.1.213.1.4.10"),
            .init(patientID: "TEST-NIA", universalEntityID: "1.2.250.1.213.1.4.11"),
            .init(patientID: "IPP-OTHER", issuerOfPatientID: "CHRU-TOURS"),
            .init(patientID: "NOT-INS", universalEntityID: "1.2.250.1.213.1.4.12"),
            .init(patientID: "PREFIX", issuerOfPatientID: "1.2.250.1.213.1.4.8.1"),
        ]
        #expect(INS.values(in: ids) == ["1850799123456", "2850799123457", "TEST-NIR", "TEST-NIA"])
    }
}
