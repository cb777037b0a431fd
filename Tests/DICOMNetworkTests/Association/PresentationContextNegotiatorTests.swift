import Testing

import DICOMNetwork

private let ct = Fixtures.ctImageStorage
private let policy = PresentationContextNegotiator.Policy.accepting(
    abstractSyntaxes: [Fixtures.verification, ct], transferSyntaxes: [Fixtures.implicitLE, Fixtures.explicitLE]
)

@Suite struct PresentationContextNegotiatorTests {
    @Test func resultsAndPreference() {
        let negotiator = PresentationContextNegotiator(policy: policy)
        let outcome = negotiator.negotiate(contexts: [
            PresentationContextProposal(id: 1, abstractSyntax: Fixtures.verification, transferSyntaxes: [Fixtures.implicitLE]),
            // First proposed acceptable wins: explicit LE, not implicit.
            PresentationContextProposal(id: 3, abstractSyntax: ct, transferSyntaxes: [Fixtures.jpegLossless, Fixtures.explicitLE, Fixtures.implicitLE]),
            PresentationContextProposal(id: 5, abstractSyntax: "1.2.3.4", transferSyntaxes: [Fixtures.implicitLE]),
            PresentationContextProposal(id: 7, abstractSyntax: ct, transferSyntaxes: [Fixtures.jpegLossless]),
        ], roleSelections: [])
        #expect(outcome.presentationContexts == [
            PresentationContextResult(id: 1, result: .acceptance, transferSyntax: Fixtures.implicitLE),
            PresentationContextResult(id: 3, result: .acceptance, transferSyntax: Fixtures.explicitLE),
            PresentationContextResult(id: 5, result: .abstractSyntaxNotSupported, transferSyntax: Fixtures.implicitLE),
            PresentationContextResult(id: 7, result: .transferSyntaxesNotSupported, transferSyntax: Fixtures.jpegLossless),
        ])
        #expect(outcome.acceptedContexts == [1: Fixtures.implicitLE, 3: Fixtures.explicitLE])
        #expect(outcome.roleSelections.isEmpty)
    }

    @Test func preferenceOrderOverridesProposalOrder() {
        var preferring = policy
        preferring.preferredTransferSyntaxes = [Fixtures.implicitLE]
        let outcome = PresentationContextNegotiator(policy: preferring).negotiate(contexts: [
            PresentationContextProposal(id: 1, abstractSyntax: ct, transferSyntaxes: [Fixtures.explicitLE, Fixtures.implicitLE])
        ], roleSelections: [])
        #expect(outcome.presentationContexts.first?.transferSyntax == Fixtures.implicitLE)
    }

    @Test func userRejection() {
        var rejecting = policy
        rejecting.rejectsContext = { $0.abstractSyntax == ct }
        let outcome = PresentationContextNegotiator(policy: rejecting).negotiate(contexts: [
            PresentationContextProposal(id: 1, abstractSyntax: ct, transferSyntaxes: [Fixtures.implicitLE])
        ], roleSelections: [])
        #expect(outcome.presentationContexts.first?.result == .userRejection)
    }

    @Test func evenAndDuplicateIDsAreRejected() {
        let outcome = PresentationContextNegotiator(policy: policy).negotiate(contexts: [
            PresentationContextProposal(id: 2, abstractSyntax: ct, transferSyntaxes: [Fixtures.implicitLE]),
            PresentationContextProposal(id: 5, abstractSyntax: ct, transferSyntaxes: [Fixtures.implicitLE]),
            PresentationContextProposal(id: 5, abstractSyntax: Fixtures.verification, transferSyntaxes: [Fixtures.implicitLE]),
            PresentationContextProposal(id: 7, abstractSyntax: ct, transferSyntaxes: []),
        ], roleSelections: [])
        #expect(outcome.presentationContexts == [
            PresentationContextResult(id: 2, result: .noReason, transferSyntax: Fixtures.implicitLE),
            PresentationContextResult(id: 5, result: .noReason, transferSyntax: Fixtures.implicitLE),
            PresentationContextResult(id: 7, result: .transferSyntaxesNotSupported, transferSyntax: "1.2.840.10008.1.2"),
        ])
    }

    @Test func roleSelectionRepliesOnlyToProposedItems() {
        var cGetPolicy = policy
        // Grant the SCP role only for storage SOP classes.
        cGetPolicy.acceptsRoles = { uid, scu, scp in (scu, scp && uid.hasPrefix("1.2.840.10008.5.1.4.1.1.")) }
        let outcome = PresentationContextNegotiator(policy: cGetPolicy).negotiate(
            contexts: [],
            roleSelections: [
                RoleSelection(sopClassUID: ct, scuRole: false, scpRole: true),
                RoleSelection(sopClassUID: Fixtures.verification, scuRole: true, scpRole: true),
                RoleSelection(sopClassUID: ct, scuRole: true, scpRole: true),  // duplicate: ignored
            ]
        )
        #expect(outcome.roleSelections == [
            RoleSelection(sopClassUID: ct, scuRole: false, scpRole: true),
            RoleSelection(sopClassUID: Fixtures.verification, scuRole: true, scpRole: false),
        ])
    }

    @Test func negotiatesARealRequest() {
        let outcome = PresentationContextNegotiator(policy: policy).negotiate(Fixtures.associateRQ)
        #expect(outcome.presentationContexts.map(\.result) == [.acceptance, .acceptance])
        #expect(outcome.roleSelections.count == 2)
    }
}
