import DICOMCore

extension DICOMClient {
    /// The contexts to propose for sending `paths` as they are (PS3.8 §9.3.2.2):
    ///
    /// - Verification (for C-ECHO) with Implicit VR Little Endian, ID 1;
    /// - per distinct (SOP class, transfer syntax) of the files, in order of first appearance,
    ///   the file's transfer syntax first, then — when the file is uncompressed (neither
    ///   encapsulated nor deflated) — Explicit and Implicit VR Little Endian;
    /// - odd IDs 1, 3, 5…; more than ``maximumPresentationContexts`` is an error.
    ///
    /// Reads each file's meta information (blocking).
    public static func presentationContexts(forFiles paths: [String]) throws(DICOMNetworkError) -> [PresentationContextProposal] {
        var pairs: [(sopClass: String, transferSyntax: String)] = []
        var seen: Set<String> = []
        for path in paths {
            let meta = try Part10DataSetFile.readMeta(path)
            guard let sopClass = meta.mediaStorageSOPClassUID, !sopClass.isEmpty,
                  let transferSyntax = meta.transferSyntaxUID, !transferSyntax.isEmpty
            else {
                throw DICOMNetworkError(code: .invalidFile, message: "\(path): file meta information lacks "
                                       + "Media Storage SOP Class UID or Transfer Syntax UID")
            }
            if seen.insert(sopClass + "\u{0}" + transferSyntax).inserted {
                pairs.append((sopClass, transferSyntax))
            }
        }
        return try presentationContexts(for: pairs)
    }

    /// Same as ``presentationContexts(forFiles:)`` from (SOP class, transfer syntax) pairs
    /// (duplicates kept: the caller dedups).
    public static func presentationContexts(
        for pairs: [(sopClass: String, transferSyntax: String)]
    ) throws(DICOMNetworkError) -> [PresentationContextProposal] {
        let implicitLE = TransferSyntax.implicitVRLittleEndian.uid
        let explicitLE = TransferSyntax.explicitVRLittleEndian.uid
        let count = pairs.count + 1
        guard count <= maximumPresentationContexts else {
            throw DICOMNetworkError(
                code: .tooManyPresentationContexts,
                message: "\(pairs.count) distinct (SOP class, transfer syntax) pairs need \(count) presentation "
                    + "contexts with Verification; an association carries at most \(maximumPresentationContexts)")
        }
        var proposals = [PresentationContextProposal(id: 1, abstractSyntax: UIDRegistry.verificationSOPClassUID,
                                                     transferSyntaxes: [implicitLE])]
        for (index, pair) in pairs.enumerated() {
            var transferSyntaxes = [pair.transferSyntax]
            if let syntax = TransferSyntax(uid: pair.transferSyntax), !syntax.isEncapsulated, !syntax.isDeflated {
                for alternative in [explicitLE, implicitLE] where !transferSyntaxes.contains(alternative) {
                    transferSyntaxes.append(alternative)
                }
            }
            proposals.append(PresentationContextProposal(
                id: UInt8(2 * (index + 1) + 1), abstractSyntax: pair.sopClass, transferSyntaxes: transferSyntaxes))
        }
        return proposals
    }

    /// The contexts to propose for sending instances of `sopClasses` in whatever encoding they
    /// come (a C-MOVE's sub-operations, before the files are at hand): each common transfer
    /// syntax in a context of its own per SOP class, so that each instance goes as stored —
    /// uncompressed ones first, and only those when there are too many classes for all.
    public static func proposals(forSendingSOPClasses sopClasses: Set<String>) -> [PresentationContextProposal] {
        let classes = sopClasses.sorted()
        let perClass = classes.count * (uncompressed.count + commonCompressed.count) <= maximumPresentationContexts
            ? uncompressed + commonCompressed : uncompressed
        var proposals: [PresentationContextProposal] = []
        for sopClass in classes {
            for syntax in perClass where proposals.count < maximumPresentationContexts {
                proposals.append(PresentationContextProposal(id: UInt8(2 * proposals.count + 1),
                                                             abstractSyntax: sopClass, transferSyntaxes: [syntax]))
            }
        }
        return proposals
    }

    /// The contexts to propose for querying and retrieving (C-FIND, C-MOVE, C-GET
    /// information models): Verification with Implicit VR Little Endian, ID 1, then one
    /// context per SOP class (IDs 3, 5…) with Explicit then Implicit VR Little Endian, the
    /// encodings of the identifiers.
    public static func proposals(forQueryRetrieve sopClasses: [String]) throws(DICOMNetworkError) -> [PresentationContextProposal] {
        var classes: [String] = []
        for sopClass in sopClasses where !classes.contains(sopClass) { classes.append(sopClass) }
        guard classes.count + 1 <= maximumPresentationContexts else {
            throw DICOMNetworkError(code: .tooManyPresentationContexts,
                                   message: "\(classes.count) SOP classes need \(classes.count + 1) presentation contexts "
                                       + "with Verification; an association carries at most \(maximumPresentationContexts)")
        }
        var proposals = [PresentationContextProposal(id: 1, abstractSyntax: UIDRegistry.verificationSOPClassUID,
                                                     transferSyntaxes: [TransferSyntax.implicitVRLittleEndian.uid])]
        for (index, sopClass) in classes.enumerated() {
            proposals.append(PresentationContextProposal(id: UInt8(2 * (index + 1) + 1), abstractSyntax: sopClass,
                                                         transferSyntaxes: uncompressed))
        }
        return proposals
    }

    /// The contexts and roles to propose for a C-GET (PS3.4 §C.4.3, PS3.7 §D.3.3.4): the
    /// `queryRetrieve` GET information model (ID 1), then one context per storage SOP class
    /// (IDs 3, 5…, duplicates dropped) with Explicit then Implicit VR Little Endian, each with a
    /// role selection proposing the SCP role only, so that the peer may send its C-STORE
    /// sub-operations on this association. Pass `roles` to `connect(…roleSelections:)`.
    ///
    /// Throws `.tooManyPresentationContexts` beyond ``maximumPresentationContexts`` contexts.
    public static func proposals(
        forGetting storageSOPClasses: [String], queryRetrieve: String
    ) throws(DICOMNetworkError) -> (contexts: [PresentationContextProposal], roles: [RoleSelection]) {
        var classes: [String] = []
        for sopClass in storageSOPClasses where !classes.contains(sopClass) && sopClass != queryRetrieve {
            classes.append(sopClass)
        }
        guard classes.count + 1 <= maximumPresentationContexts else {
            throw DICOMNetworkError(code: .tooManyPresentationContexts,
                                   message: "\(classes.count) storage SOP classes need \(classes.count + 1) presentation "
                                       + "contexts with the C-GET one; an association carries at most "
                                       + "\(maximumPresentationContexts)")
        }
        var contexts = [PresentationContextProposal(id: 1, abstractSyntax: queryRetrieve, transferSyntaxes: uncompressed)]
        var roles: [RoleSelection] = []
        for (index, sopClass) in classes.enumerated() {
            contexts.append(PresentationContextProposal(id: UInt8(2 * (index + 1) + 1), abstractSyntax: sopClass,
                                                        transferSyntaxes: uncompressed))
            roles.append(RoleSelection(sopClassUID: sopClass, scuRole: false, scpRole: true))
        }
        return (contexts, roles)
    }

    private static let uncompressed = [TransferSyntax.explicitVRLittleEndian.uid, TransferSyntax.implicitVRLittleEndian.uid]

    /// The encodings archives commonly hold: JPEG Baseline and Extended, JPEG Lossless SV1,
    /// JPEG-LS Lossless, JPEG 2000 (lossless and not), RLE, Deflated and Explicit VR Big Endian.
    private static let commonCompressed = [
        "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.70",
        "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
        "1.2.840.10008.1.2.5", TransferSyntax.deflatedExplicitVRLittleEndian.uid, TransferSyntax.explicitVRBigEndian.uid,
    ]
}
