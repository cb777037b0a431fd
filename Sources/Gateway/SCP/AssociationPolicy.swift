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
    /// With `[dicom] check_calling_host`: the addresses each `[[ae]]` title may call from (an
    /// AE title, which anyone can type, bound to its machines, like Orthanc's
    /// `DicomCheckModalityHost`). Titles without an entry are not checked.
    public var callingHosts: [String: [AddressRange]] = [:]

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

    /// Why a calling AE title is refused from `peer` ("address:port"), if it is.
    public func callingHostRefusal(callingAETitle: String, peer: String) -> String? {
        guard let ranges = callingHosts[callingAETitle] else { return nil }
        let address = Self.address(ofPeer: peer)
        guard !ranges.contains(where: { $0.contains(address) }) else { return nil }
        return "calling AE title \(callingAETitle) from \(address), not one of its hosts ("
            + ranges.map(\.description).joined(separator: ", ") + ")"
    }

    /// "10.1.2.3:4567" → "10.1.2.3"; "::1:4567" → "::1".
    static func address(ofPeer peer: String) -> String {
        guard let colon = peer.lastIndex(of: ":") else { return peer }
        return String(peer[..<colon])
    }

    /// Decides on an association request from `peer` ("address:port"), `activeAssociations`
    /// being those already accepted.
    public func decide(_ request: AssociateRQ, peer: String = "", activeAssociations: Int) -> AssociationDecision {
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
        guard allowedCallingAETitles.isEmpty || allowedCallingAETitles.contains(request.callingAETitle),
              callingHostRefusal(callingAETitle: request.callingAETitle, peer: peer) == nil else {
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
