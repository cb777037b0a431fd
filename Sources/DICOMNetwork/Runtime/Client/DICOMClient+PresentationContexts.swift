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
    public static func presentationContexts(forFiles paths: [String]) throws(DICOMClientError) -> [PresentationContextProposal] {
        var pairs: [(sopClass: String, transferSyntax: String)] = []
        var seen: Set<String> = []
        for path in paths {
            let meta = try Part10DataSetFile.readMeta(path)
            guard let sopClass = meta.mediaStorageSOPClassUID, !sopClass.isEmpty,
                  let transferSyntax = meta.transferSyntaxUID, !transferSyntax.isEmpty
            else {
                throw DICOMClientError(code: .invalidFile, message: "\(path): file meta information lacks "
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
    ) throws(DICOMClientError) -> [PresentationContextProposal] {
        let implicitLE = TransferSyntax.implicitVRLittleEndian.uid
        let explicitLE = TransferSyntax.explicitVRLittleEndian.uid
        let count = pairs.count + 1
        guard count <= maximumPresentationContexts else {
            throw DICOMClientError(
                code: .tooManyPresentationContexts,
                message: "\(pairs.count) distinct (SOP class, transfer syntax) pairs need \(count) presentation "
                    + "contexts with Verification; an association carries at most \(maximumPresentationContexts)")
        }
        var proposals = [PresentationContextProposal(id: 1, abstractSyntax: CEchoRQ.verificationSOPClassUID,
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
}
