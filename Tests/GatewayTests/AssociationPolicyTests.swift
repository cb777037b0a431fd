import DICOMNetwork
import Testing
@testable import Gateway

@Suite struct AssociationPolicyTests {
    let policy = AssociationPolicy(calledAETitles: ["PASSERELLE"], allowedCallingAETitles: ["CT1"], maximumAssociations: 2)
    let ctImageStorage = "1.2.840.10008.5.1.4.1.1.2"

    func request(called: String = "PASSERELLE", calling: String = "CT1",
                 contexts: [PresentationContextProposal]? = nil) -> AssociateRQ {
        AssociateRQ(calledAETitle: called, callingAETitle: calling, presentationContexts: contexts ?? [
            PresentationContextProposal(id: 1, abstractSyntax: "1.2.840.10008.1.1", transferSyntaxes: ["1.2.840.10008.1.2"]),
            PresentationContextProposal(id: 3, abstractSyntax: ctImageStorage,
                                        transferSyntaxes: ["1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2"]),
            PresentationContextProposal(id: 5, abstractSyntax: "1.2.3.4.5.6.7", transferSyntaxes: ["1.2.840.10008.1.2"]),
            PresentationContextProposal(id: 7, abstractSyntax: ctImageStorage, transferSyntaxes: ["1.2.3.999"]),
        ])
    }

    func rejection(_ decision: AssociationDecision) -> AssociateRJ? {
        if case .reject(let rejection) = decision { return rejection }
        return nil
    }

    @Test func acceptsVerificationAndStorageAsProposed() throws {
        guard case .accept(let contexts, _) = policy.decide(request(), activeAssociations: 0) else {
            Issue.record("rejected")
            return
        }
        let byID = Dictionary(uniqueKeysWithValues: contexts.map { ($0.id, $0) })
        #expect(byID[1]?.result == .acceptance)
        #expect(byID[3]?.result == .acceptance)
        // Stored as received: the first proposed (here lossless JPEG) is kept.
        #expect(byID[3]?.transferSyntax == "1.2.840.10008.1.2.4.70")
        #expect(byID[5]?.result == .abstractSyntaxNotSupported)
        #expect(byID[7]?.result == .transferSyntaxesNotSupported)
    }

    @Test func aKnownCallingAETitleIsAcceptedOnlyFromItsHosts() throws {
        var bound = policy
        bound.allowedCallingAETitles = []
        bound.callingHosts = ["CT1": [try #require(AddressRange("10.1.2.3")), try #require(AddressRange("10.1.4.0/24"))],
                              "V6": [try #require(AddressRange("::1"))]]
        for peer in ["10.1.2.3:4000", "10.1.4.200:104", "::ffff:10.1.4.7:11112"] {
            #expect(rejection(bound.decide(request(), peer: peer, activeAssociations: 0)) == nil, "\(peer)")
        }
        for peer in ["10.1.2.4:4000", "10.1.5.1:104", "127.0.0.1:5000", "unknown"] {
            let refused = rejection(bound.decide(request(), peer: peer, activeAssociations: 0))
            #expect(refused == AssociateRJ(result: .rejectedPermanent, reason: .serviceUser(.callingAETitleNotRecognized)),
                    "\(peer)")
        }
        #expect(bound.callingHostRefusal(callingAETitle: "CT1", peer: "10.9.9.9:1234")
                == "calling AE title CT1 from 10.9.9.9, not one of its hosts (10.1.2.3, 10.1.4.0/24)")
        #expect(rejection(bound.decide(request(calling: "V6"), peer: "::1:4242", activeAssociations: 0)) == nil)
        // A title without an [[ae]] entry is not bound to any host.
        #expect(rejection(bound.decide(request(calling: "MR2"), peer: "10.9.9.9:1", activeAssociations: 0)) == nil)
        #expect(bound.callingHostRefusal(callingAETitle: "MR2", peer: "10.9.9.9:1") == nil)
    }

    @Test func rejectsAnUnknownCalledAETitle() {
        #expect(rejection(policy.decide(request(called: "OTHER"), activeAssociations: 0))
                == AssociateRJ(result: .rejectedPermanent, reason: .serviceUser(.calledAETitleNotRecognized)))
    }

    @Test func rejectsACallingAETitleOutsideTheAllowList() {
        #expect(rejection(policy.decide(request(calling: "INTRUDER"), activeAssociations: 0))
                == AssociateRJ(result: .rejectedPermanent, reason: .serviceUser(.callingAETitleNotRecognized)))
        let open = AssociationPolicy(calledAETitles: ["PASSERELLE"], allowedCallingAETitles: [], maximumAssociations: 2)
        #expect(rejection(open.decide(request(calling: "ANYONE"), activeAssociations: 0)) == nil)
    }

    @Test func rejectsBeyondTheAssociationLimitTransiently() {
        #expect(rejection(policy.decide(request(), activeAssociations: 1)) == nil)
        #expect(rejection(policy.decide(request(), activeAssociations: 2))
                == AssociateRJ(result: .rejectedTransient, reason: .serviceProviderPresentation(.localLimitExceeded)))
    }

    @Test func rejectsAnotherApplicationContext() {
        var other = request()
        other.applicationContextName = "1.2.3"
        #expect(rejection(policy.decide(other, activeAssociations: 0))
                == AssociateRJ(result: .rejectedPermanent, reason: .serviceUser(.applicationContextNameNotSupported)))
    }
}
