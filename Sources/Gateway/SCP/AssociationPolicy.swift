import DICOMCore
import DICOMNetwork

/// Who may associate and what they may send: the SCP's acceptance policy (storage, and the
/// `[[community]]` query/retrieve AE titles). Pure: configuration and an A-ASSOCIATE-RQ in, a decision out.
public struct AssociationPolicy: Sendable {
    public var calledAETitles: Set<String>
    /// Called AE titles of the community search folders.
    public var queryRetrieveAETitles: Set<String> = []
    /// Empty means any calling AE title.
    public var allowedCallingAETitles: Set<String>
    public var maximumAssociations: Int

    public init(calledAETitles: Set<String>, allowedCallingAETitles: Set<String>, maximumAssociations: Int) {
        self.calledAETitles = calledAETitles
        self.allowedCallingAETitles = allowedCallingAETitles
        self.maximumAssociations = maximumAssociations
    }

    /// Verification and every Storage SOP class of the standard (generated from PS3.6).
    public static func isAcceptedAbstractSyntax(_ uid: String) -> Bool {
        uid == UIDRegistry.verificationSOPClassUID || UIDRegistry.storageSOPClassUIDs.contains(uid)
    }

    /// Every transfer syntax of the standard: instances are stored as received.
    public static func isAcceptedTransferSyntax(_ uid: String) -> Bool {
        TransferSyntax(uid: uid) != nil
    }

    /// Decides on an association request, `activeAssociations` being those already accepted.
    public func decide(_ request: AssociateRQ, activeAssociations: Int) -> AssociationDecision {
        // PS3.8 §9.3.2: bit 0 of the protocol version is version 1.
        guard request.protocolVersion & 0x0001 != 0 else {
            return .reject(AssociateRJ(result: .rejectedPermanent,
                                       reason: .serviceProviderACSE(.protocolVersionNotSupported)))
        }
        guard request.applicationContextName == AssociateRQ.dicomApplicationContextName else {
            return .reject(AssociateRJ(result: .rejectedPermanent,
                                       reason: .serviceUser(.applicationContextNameNotSupported)))
        }
        let isQueryRetrieve = queryRetrieveAETitles.contains(request.calledAETitle)
        guard calledAETitles.contains(request.calledAETitle) || isQueryRetrieve else {
            return .reject(AssociateRJ(result: .rejectedPermanent, reason: .serviceUser(.calledAETitleNotRecognized)))
        }
        guard allowedCallingAETitles.isEmpty || allowedCallingAETitles.contains(request.callingAETitle) else {
            return .reject(AssociateRJ(result: .rejectedPermanent, reason: .serviceUser(.callingAETitleNotRecognized)))
        }
        guard activeAssociations < maximumAssociations else {
            return .reject(AssociateRJ(result: .rejectedTransient,
                                       reason: .serviceProviderPresentation(.localLimitExceeded)))
        }
        if isQueryRetrieve {
            let negotiation = PresentationContextNegotiator(policy: CommunityProxy.negotiationPolicy(for: request))
                .negotiate(request)
            return .accept(presentationContexts: negotiation.presentationContexts,
                           roleSelections: negotiation.roleSelections)
        }
        let negotiator = PresentationContextNegotiator(policy: .init(
            acceptsAbstractSyntax: Self.isAcceptedAbstractSyntax,
            acceptsTransferSyntax: { transferSyntax, _ in Self.isAcceptedTransferSyntax(transferSyntax) },
            // The peer is the storage SCU; we never act as SCU on its association.
            acceptsRoles: { _, scu, _ in (scu, false) }))
        let negotiation = negotiator.negotiate(request)
        return .accept(presentationContexts: negotiation.presentationContexts, roleSelections: negotiation.roleSelections)
    }
}
