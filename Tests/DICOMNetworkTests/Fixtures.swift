import NIOCore

@testable import DICOMNetwork

/// Shared sample values.
enum Fixtures {
    static let verification = "1.2.840.10008.1.1"
    static let ctImageStorage = "1.2.840.10008.5.1.4.1.1.2"
    static let implicitLE = "1.2.840.10008.1.2"
    static let explicitLE = "1.2.840.10008.1.2.1"
    static let jpegLossless = "1.2.840.10008.1.2.4.70"

    static let fullUserInformation = UserInformation(
        maximumLength: 16384,
        implementationClassUID: "1.2.276.0.7230010.3.0.3.6.8",
        asynchronousOperationsWindow: AsynchronousOperationsWindow(maximumOperationsInvoked: 1, maximumOperationsPerformed: 2),
        roleSelections: [
            RoleSelection(sopClassUID: ctImageStorage, scuRole: false, scpRole: true),
            RoleSelection(sopClassUID: verification, scuRole: true, scpRole: true),
        ],
        implementationVersionName: "OFFIS_DCMTK_368",
        sopClassExtendedNegotiations: [
            SOPClassExtendedNegotiation(sopClassUID: ctImageStorage, serviceClassApplicationInformation: [1, 0, 1, 0, 0, 0])
        ],
        sopClassCommonExtendedNegotiations: [
            SOPClassCommonExtendedNegotiation(
                sopClassUID: "1.2.840.10008.5.1.4.1.1.2.1", serviceClassUID: "1.2.840.10008.4.2",
                relatedGeneralSOPClassUIDs: [ctImageStorage, "1.2.840.10008.5.1.4.1.1.7"]
            )
        ],
        userIdentity: UserIdentity(
            type: .usernameAndPasscode, positiveResponseRequested: true,
            primaryField: Array("radiologue".utf8), secondaryField: Array("s3cret".utf8)
        )
    )

    static let associateRQ = AssociateRQ(
        calledAETitle: "PASSERELLE",
        callingAETitle: "MODALITY1",
        presentationContexts: [
            PresentationContextProposal(id: 1, abstractSyntax: verification, transferSyntaxes: [implicitLE]),
            PresentationContextProposal(id: 3, abstractSyntax: ctImageStorage, transferSyntaxes: [jpegLossless, explicitLE, implicitLE]),
        ],
        userInformation: fullUserInformation
    )

    static let associateAC = AssociateAC(
        calledAETitle: "PASSERELLE",
        callingAETitle: "MODALITY1",
        presentationContexts: [
            PresentationContextResult(id: 1, result: .acceptance, transferSyntax: implicitLE),
            PresentationContextResult(id: 3, result: .transferSyntaxesNotSupported, transferSyntax: jpegLossless),
        ],
        userInformation: UserInformation(
            maximumLength: 262144, implementationClassUID: "1.2.826.0.1.3680043.10.1",
            roleSelections: [RoleSelection(sopClassUID: ctImageStorage, scuRole: false, scpRole: true)],
            implementationVersionName: "PASSERELLE_1",
            userIdentityResponse: UserIdentityResponse(serverResponse: Array("token".utf8))
        )
    )

    static let associateRJ = AssociateRJ(result: .rejectedPermanent, reason: .serviceUser(.calledAETitleNotRecognized))

    static let pData = PDataTF(values: [
        PresentationDataValue(contextID: 1, isCommand: true, isLast: true, data: ByteBuffer(bytes: [1, 2, 3, 4])),
        PresentationDataValue(contextID: 3, isCommand: false, isLast: false, data: ByteBuffer(bytes: [5, 6])),
    ])

    static let allPDUs: [PDU] = [
        .associateRQ(associateRQ),
        .associateAC(associateAC),
        .associateRJ(associateRJ),
        .pDataTF(pData),
        .releaseRQ,
        .releaseRP,
        .abort(AAbort(source: .serviceProvider, reason: .invalidPDUParameterValue)),
    ]
}
