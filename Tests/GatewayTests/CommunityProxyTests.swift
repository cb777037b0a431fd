import DICOMCore
import DICOMNetwork
import DICOMQuery
import Testing
@testable import Gateway

/// The presentation contexts a search folder accepts.
@Suite struct CommunityProxyTests {
    let implicitLE = TransferSyntax.implicitVRLittleEndian.uid

    func negotiate(_ contexts: [PresentationContextProposal], roles: [RoleSelection] = []) -> PresentationContextNegotiator.Outcome {
        var userInformation = UserInformation()
        userInformation.roleSelections = roles
        let request = AssociateRQ(calledAETitle: "MIRC", callingAETitle: "PACS", presentationContexts: contexts,
                                  userInformation: userInformation)
        return PresentationContextNegotiator(policy: CommunityProxy.negotiationPolicy(for: request)).negotiate(request)
    }

    @Test func acceptsQueryRetrieveAndStorageOnlyWithTheSCPRole() {
        let ct = "1.2.840.10008.5.1.4.1.1.2", mr = "1.2.840.10008.5.1.4.1.1.4"
        let outcome = negotiate([
            PresentationContextProposal(id: 1, abstractSyntax: QueryModel.studyRoot.findSOPClassUID, transferSyntaxes: [implicitLE]),
            PresentationContextProposal(id: 3, abstractSyntax: QueryModel.patientRoot.getSOPClassUID,
                                        transferSyntaxes: ["1.2.840.10008.1.2.4.50"]),
            PresentationContextProposal(id: 5, abstractSyntax: ct, transferSyntaxes: ["1.2.840.10008.1.2.4.70", implicitLE]),
            PresentationContextProposal(id: 7, abstractSyntax: mr, transferSyntaxes: [implicitLE]),
        ], roles: [RoleSelection(sopClassUID: ct, scuRole: true, scpRole: true)])
        let results = Dictionary(uniqueKeysWithValues: outcome.presentationContexts.map { ($0.id, $0) })
        #expect(results[1]?.result == .acceptance)
        #expect(results[3]?.result == .transferSyntaxesNotSupported)  // identifiers travel uncompressed
        #expect(results[5]?.result == .acceptance)
        #expect(results[5]?.transferSyntax == "1.2.840.10008.1.2.4.70")  // the requestor's first choice
        #expect(results[7]?.result == .userRejection)  // no SCP role: it could only push C-STOREs here
        #expect(outcome.roleSelections == [RoleSelection(sopClassUID: ct, scuRole: false, scpRole: true)])
    }
}
