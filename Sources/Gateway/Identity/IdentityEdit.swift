import DICOMCore
import DICOMweb
import Foundation
import NIOCore
import Spool

/// The changes that make an instance carry the identity in force (docs/hl7.md, "Identity
/// updates") and, when the site wants it, its IssuerOfPatientID: splices of the data set's
/// bytes, the data set itself untouched. Only elements whose value differs are replaced, so an
/// instance already right is sent as it is.
///
/// Character set: a name is written in the instance's Specific Character Set; an instance in
/// the default repertoire that needs more is switched to ISO_IR 192 (ASCII is a subset of
/// UTF-8, its other text stays valid); one in another repertoire that cannot hold the name
/// gets it without diacritics (as INS traits are written), and a note says so.
struct IdentityEdit: Equatable {
    /// Relative to the data set's start, in order.
    var splices: [STOWRequestBody.Part.Splice] = []
    var notes: [String] = []

    var isEmpty: Bool { splices.isEmpty }

    /// The elements read to decide, all in groups 0008–0010 (the walk stops after them).
    private static let read: Set<Tag> = [.specificCharacterSet, .patientName, .patientID, .issuerOfPatientID,
                                         .patientBirthDate, .patientSex]

    /// - Parameters:
    ///   - fillIssuer: written as IssuerOfPatientID when the data set has none (nil: never).
    ///   - source: a fresh source positioned at the data set's start, each time it is called.
    init<Source: DICOMByteSource>(identity: PatientIdentity?, fillIssuer: String?, transferSyntax: TransferSyntax,
                                  length: Int, source makeSource: () throws(DataSetError) -> Source) throws(DataSetError) {
        guard identity != nil || fillIssuer != nil else { return }
        var header = try makeSource()
        let (found, items) = try DataSetReader.readValues(
            Self.read, items: [.otherPatientIDsSequence: [.patientID, .issuerOfPatientID]], from: &header,
            transferSyntax: transferSyntax, length: length, stoppingAt: Tag(0x0010, 0x1003))
        let characterSet = SpecificCharacterSet(rawValue: Self.text(found[.specificCharacterSet], vr: .CS, in: .default))
        func current(_ tag: Tag, _ vr: VR) -> String { Self.text(found[tag], vr: vr, in: characterSet) }

        var writer = DataSetWriter(transferSyntax: transferSyntax)
        var elements: [(Tag, [UInt8])] = []
        func element(_ tag: Tag, _ vr: VR, _ value: [UInt8]) {
            writer = DataSetWriter(transferSyntax: transferSyntax)
            writer.write(tag, vr, value)
            elements.append((tag, Array(writer.buffer.readableBytesView)))
        }
        if let identity {
            if let name = identity.name, name != current(.patientName, .PN) {
                if let bytes = characterSet.encode(name, vr: .PN) {
                    element(.patientName, .PN, bytes)
                } else if characterSet.values.allSatisfy({ $0.isEmpty || $0 == "ISO_IR 6" }) {
                    element(.specificCharacterSet, .CS, Array("ISO_IR 192".utf8))
                    element(.patientName, .PN, Array(name.utf8))
                } else {
                    let folded = name.folding(options: .diacriticInsensitive, locale: nil)
                    let bytes = characterSet.encode(folded, vr: .PN)
                        ?? Array(String(folded.unicodeScalars.filter(\.isASCII).map(Character.init)).utf8)
                    element(.patientName, .PN, bytes)
                    notes.append("name written without diacritics: \(characterSet.values.joined(separator: "\\")) cannot hold \(name)")
                }
            }
            if identity.patientID != current(.patientID, .LO) {
                element(.patientID, .LO, characterSet.encode(identity.patientID, vr: .LO) ?? Array(identity.patientID.utf8))
            }
            if let date = identity.birthDate, date != current(.patientBirthDate, .DA) {
                element(.patientBirthDate, .DA, Array(date.utf8))
            }
            if let sex = identity.sex, sex != current(.patientSex, .CS) {
                element(.patientSex, .CS, Array(sex.utf8))
            }
            let otherIDs = (items[.otherPatientIDsSequence] ?? []).map {
                (current: Self.text($0[.patientID], vr: .LO, in: characterSet),
                 issuer: Self.text($0[.issuerOfPatientID], vr: .LO, in: characterSet))
            }
            let sameINS = identity.ins.map { ins in
                otherIDs.count == 1 && otherIDs[0].current == ins.value && otherIDs[0].issuer == ins.assigningAuthority
            } ?? otherIDs.isEmpty
            if identity.insKnown && !sameINS {
                writer = DataSetWriter(transferSyntax: transferSyntax)
                if let ins = identity.ins {
                    writer.beginSequence(.otherPatientIDsSequence)
                    writer.beginItem()
                    writer.write(.patientID, .LO, string: ins.value)
                    writer.write(.issuerOfPatientID, .LO, string: ins.assigningAuthority)
                    writer.write(.typeOfPatientID, .CS, string: "TEXT")
                    writer.beginSequence(.issuerOfPatientIDQualifiersSequence)
                    writer.beginItem()
                    writer.write(.universalEntityID, .UT, string: ins.assigningAuthority)
                    writer.write(.universalEntityIDType, .CS, string: "ISO")
                    writer.endItem()
                    writer.endSequence()
                    writer.endItem()
                    writer.endSequence()
                }
                // Replaced as a whole: the PAS's INS (or none, for an identity no longer qualified).
                elements.append((.otherPatientIDsSequence, Array(writer.buffer.readableBytesView)))
            }
        }
        if let fillIssuer, current(.issuerOfPatientID, .LO).isEmpty {
            element(.issuerOfPatientID, .LO, Array(fillIssuer.utf8))
        }
        for (tag, bytes) in elements.sorted(by: { $0.0 < $1.0 }) {
            let location = try DataSetReader.span(tag, transferSyntax: transferSyntax, length: length, source: makeSource)
            if location.length == 0 && bytes.isEmpty { continue }
            splices.append(.init(offset: Int64(location.offset), removing: Int64(location.length), inserting: bytes))
        }
    }

    private static func text(_ value: ByteBuffer?, vr: VR, in characterSet: SpecificCharacterSet) -> String {
        guard let value else { return "" }
        return characterSet.decode(value.readableBytesView, vr: vr)
            .trimmingCharacters(in: CharacterSet(charactersIn: " \0"))
    }
}
