import DICOMCore
import DICOMweb
import Foundation
import HL7
import NIOCore
import Spool
import Testing
@testable import Gateway

/// Identity updates: the ADT read into the identity in force, the spool following changes of
/// identifier, and the splices that make an instance carry it.
@Suite struct PatientIdentityTests {
    let issuers = PatientIdentityUpdate.Issuers(siteIssuer: "CHR-ORLEANS", siteOID: "1.2.250.1.71.4.2.1")

    func adt(_ event: String, pid: String, mrg: String? = nil, charset: String = "UNICODE UTF-8") throws -> HL7Message {
        let text = ["MSH|^~\\&|PAS|CHR|PASSERELLE|SITE|20261207110000||ADT^\(event)^ADT_A01|M\(event)|P|2.5||||||\(charset)",
                    "EVN||20261207110000", pid] + (mrg.map { [$0] } ?? [])
        return try HL7Message.parse(Array((text.joined(separator: "\r") + "\r").utf8))
    }

    @Test func anA08GivesTheLegalNameBirthDateSexAndQualifiedINS() throws {
        let message = try adt("A08", pid: "PID|1||1234567890123^^^&1.2.250.1.213.1.4.8&ISO^INS~IPP7^^^CHR-ORLEANS^PI||"
                                  + "MARTIN^Julie^^^Mme^^D~DUPONT^Julie^Anne^^Mme^^L||19850314|F" + String(repeating: "|", count: 24) + "VALI")
        let update = try PatientIdentityUpdate.read(message, issuers: issuers)
        #expect(update.event == "ADT^A08" && update.controlID == "MA08" && update.priorPatientID == nil)
        #expect(update.identity == PatientIdentity(
            issuer: "CHR-ORLEANS", patientID: "IPP7", name: "DUPONT^Julie^Anne^Mme", birthDate: "19850314", sex: "F",
            ins: .init(value: "1234567890123", assigningAuthority: "1.2.250.1.213.1.4.8"), insKnown: true))
    }

    @Test func anINSOfAnIdentityNotQualifiedIsDroppedAndTheSiteOIDIsTheSiteIssuer() throws {
        let message = try adt("A31", pid: "PID|1||1234567890123^^^&1.2.250.1.213.1.4.8&ISO^INS~IPP7^^^&1.2.250.1.71.4.2.1&ISO^PI||"
                                  + "DURAND^Léa||20010102|U" + String(repeating: "|", count: 24) + "PROV")
        let identity = try PatientIdentityUpdate.read(message, issuers: issuers).identity
        #expect(identity.issuer == "CHR-ORLEANS" && identity.patientID == "IPP7" && identity.name == "DURAND^Léa")
        #expect(identity.sex == "O" && identity.ins == nil && identity.insKnown, "PROV: the INS is not used, and removed")
    }

    @Test func anA47NamesThePriorIDAndAnIdentifierOfAnotherIssuerIsNotTheSites() throws {
        let update = try PatientIdentityUpdate.read(
            try adt("A47", pid: "PID|1||IPP9^^^CHR-ORLEANS^PI||DUPONT^Jean", mrg: "MRG|IPP7^^^CHR-ORLEANS^PI"), issuers: issuers)
        #expect(update.priorPatientID == "IPP7" && update.identity.patientID == "IPP9")
        #expect(update.affectedPatientIDs == ["IPP7", "IPP9"])
        #expect(update.identity.name == "DUPONT^Jean" && update.identity.birthDate == nil && !update.identity.insKnown)
        #expect(throws: PatientIdentityUpdate.Problem.self) {
            try PatientIdentityUpdate.read(try adt("A40", pid: "PID|1||IPP9^^^CHR-ORLEANS", mrg: "MRG|IPP7^^^CHRU-TOURS"),
                                           issuers: issuers)
        }
        #expect(HL7Conformance.crossIssuer(try adt("A40", pid: "PID|1||1234567890123^^^&1.2.250.1.213.1.4.8&ISO~IPP9",
                                                   mrg: "MRG|IPP7"), issuers: issuers) == nil,
                "the INS repetition is not the patient identifier")
    }

    // MARK: The spool

    @Test func theSpoolFollowsChangesOfIdentifierAndKeepsWhatAnUpdateLeftEmpty() throws {
        let database = try SpoolDatabase()
        func apply(_ update: IdentityUpdateRecord) throws {
            try database.applyIdentityUpdates([(update, 0, { _ in "" })], destinations: ["archive"],
                                              siteIssuer: "CHR-ORLEANS")
        }
        try apply(IdentityUpdateRecord(identity: PatientIdentity(issuer: "CHR-ORLEANS", patientID: "A", name: "X^Y",
                                                                 birthDate: "19800101"),
                                       priorPatientID: nil, event: "ADT^A08", controlID: "1"))
        try apply(IdentityUpdateRecord(identity: PatientIdentity(issuer: "CHR-ORLEANS", patientID: "B", name: "Z^W"),
                                       priorPatientID: "A", event: "ADT^A47", controlID: "2"))
        try apply(IdentityUpdateRecord(identity: PatientIdentity(issuer: "CHR-ORLEANS", patientID: "B", sex: "F"),
                                       priorPatientID: nil, event: "ADT^A08", controlID: "3"))
        let resolved = try #require(try database.patientIdentity(issuer: "CHR-ORLEANS", patientID: "A"))
        #expect(resolved == PatientIdentity(issuer: "CHR-ORLEANS", patientID: "B", name: "Z^W", sex: "F"))
        #expect(try database.patientIdentity(issuer: "CHRU-TOURS", patientID: "A") == nil, "never across issuers")
        // The PAS undoes the change: B → A again ends at A, no loop.
        try apply(IdentityUpdateRecord(identity: PatientIdentity(issuer: "CHR-ORLEANS", patientID: "A"),
                                       priorPatientID: "B", event: "ADT^A47", controlID: "4"))
        #expect(try database.patientIdentity(issuer: "CHR-ORLEANS", patientID: "B")?.patientID == "A")
        #expect(try database.patientIdentity(issuer: "CHR-ORLEANS", patientID: "A")?.name == "X^Y")
        // Each affected ID is searched at each destination (the last update's control ID).
        let sweeps = try database.dueIdentitySweeps(now: Date().addingTimeInterval(1))
        #expect(Set(sweeps.map(\.patientID)) == ["A", "B"] && sweeps.allSatisfy { $0.controlID == "4" })
        let queued = try database.recordIdentitySweep(sweeps[0], found: ["1.2.3"])
        let pending = try database.identityCorrectionCounts().pending
        #expect(queued == 1 && pending == 1)
        let correction = try #require(try database.dueIdentityCorrections(now: Date().addingTimeInterval(1)).first)
        try database.recordIdentityCorrected(correction)
        #expect(try database.identityCorrectionCounts().verified == 1)
        #expect(try database.recordIdentitySweep(sweeps[0], found: ["1.2.3"]) == 0, "verified for this message: not again")
    }

    // MARK: The instance

    /// A Part-10 file: a sequence before the patient module, the patient module, an Other
    /// Patient IDs Sequence of undefined length, pixel data.
    func makeFile(_ syntax: TransferSyntax, characterSet: String?, name: String = "DUPONT^JEAN",
                  otherID: String? = "999") throws -> (path: String, dataSetOffset: Int) {
        var writer = DataSetWriter(transferSyntax: syntax)
        if let characterSet { writer.write(.specificCharacterSet, .CS, string: characterSet) }
        writer.write(.sopClassUID, .UI, string: "1.2.840.10008.5.1.4.1.1.2")
        writer.write(.sopInstanceUID, .UI, string: "1.2.3.4")
        writer.beginSequence(DICOMCore.Tag(0x0008, 0x1110))
        writer.beginItem()
        writer.write(DICOMCore.Tag(0x0008, 0x1150), .UI, string: "1.2.3")
        writer.endItem()
        writer.endSequence()
        writer.write(.patientName, .PN, Array(name.utf8))
        writer.write(.patientID, .LO, string: "IPP7")
        writer.write(.patientBirthDate, .DA, string: "19700101")
        writer.write(.patientSex, .CS, string: "M")
        if let otherID {
            writer.beginSequence(.otherPatientIDsSequence)
            writer.beginItem()
            writer.write(.patientID, .LO, string: otherID)
            writer.write(.issuerOfPatientID, .LO, string: "OLD")
            writer.endItem()
            writer.endSequence()
        }
        writer.write(DICOMCore.Tag(0x0020, 0x000D), .UI, string: "1.2.9")
        writer.write(.pixelData, .OW, [UInt8](repeating: 9, count: 64))
        var file = Part10.fileMetaInformation(mediaStorageSOPClassUID: "1.2.840.10008.5.1.4.1.1.2",
                                              mediaStorageSOPInstanceUID: "1.2.3.4", transferSyntaxUID: syntax.uid,
                                              sourceApplicationEntityTitle: nil)
        let offset = file.readableBytes
        file.writeImmutableBuffer(writer.buffer)
        let path = NSTemporaryDirectory() + "identity-" + UUID().uuidString + ".dcm"
        try Data(file.readableBytesView).write(to: URL(fileURLWithPath: path))
        return (path, offset)
    }

    func sent(_ path: String, identity: PatientIdentity, fillIssuer: String? = nil) async throws -> (bytes: [UInt8], notes: [String]) {
        let edited = try IdentityCorrector.corrected(path, identity: identity, fillIssuer: fillIssuer)
        var bytes: [UInt8] = []
        for try await chunk in STOWRequestBody(parts: [edited.part], boundary: "b", chunkSize: 5) { bytes += chunk.readableBytesView }
        let header = Array("--b\r\nContent-Type: application/dicom\r\n\r\n".utf8)
        return (Array(bytes.dropFirst(header.count).dropLast("\r\n--b--\r\n".utf8.count)), [])
    }

    func read(_ bytes: [UInt8], offset: Int, syntax: TransferSyntax)
        throws -> (values: [DICOMCore.Tag: String], others: [[DICOMCore.Tag: String]], pixels: Int) {
        var source = BufferByteSource(ByteBuffer(bytes: bytes.dropFirst(offset)))
        let (values, items) = try DataSetReader.readValues(
            [.specificCharacterSet, .patientName, .patientID, .issuerOfPatientID, .patientBirthDate, .patientSex,
             DICOMCore.Tag(0x0020, 0x000D), .pixelData],
            items: [.otherPatientIDsSequence: [.patientID, .issuerOfPatientID, .universalEntityID]],
            from: &source, transferSyntax: syntax, length: nil)
        let characterSet = SpecificCharacterSet(rawValue: values[.specificCharacterSet].map {
            String(decoding: $0.readableBytesView, as: UTF8.self) } ?? "")
        func text(_ buffer: ByteBuffer, _ vr: VR) -> String {
            characterSet.decode(buffer.readableBytesView, vr: vr).trimmingCharacters(in: CharacterSet(charactersIn: " \0"))
        }
        var strings: [DICOMCore.Tag: String] = [:]
        for (tag, value) in values where tag != .pixelData { strings[tag] = text(value, tag == .patientName ? .PN : .LO) }
        let others = (items[.otherPatientIDsSequence] ?? []).map { $0.mapValues { text($0, .LO) } }
        return (strings, others, values[.pixelData]?.readableBytes ?? 0)
    }

    @Test(arguments: [TransferSyntax.explicitVRLittleEndian, .implicitVRLittleEndian, .explicitVRBigEndian])
    func anInstanceLeavesWithTheIdentityInForceAndNothingElseChanges(syntax: TransferSyntax) async throws {
        let (path, offset) = try makeFile(syntax, characterSet: nil)
        defer { unlink(path) }
        let identity = PatientIdentity(issuer: "CHR-ORLEANS", patientID: "IPP9", name: "DUPONT^Léa", birthDate: "19850314",
                                       sex: "F", ins: .init(value: "2850399123456", assigningAuthority: "1.2.250.1.213.1.4.8"),
                                       insKnown: true)
        let (bytes, _) = try await sent(path, identity: identity, fillIssuer: "CHR-ORLEANS")
        let found = try read(bytes, offset: offset, syntax: syntax)
        #expect(found.values[.specificCharacterSet] == "ISO_IR 192", "the default repertoire cannot hold é: UTF-8")
        #expect(found.values[.patientName] == "DUPONT^Léa" && found.values[.patientID] == "IPP9")
        #expect(found.values[.issuerOfPatientID] == "CHR-ORLEANS")
        #expect(found.values[.patientBirthDate] == "19850314" && found.values[.patientSex] == "F")
        #expect(found.others.count == 1 && found.others[0][.patientID] == "2850399123456"
                && found.others[0][.issuerOfPatientID] == "1.2.250.1.213.1.4.8"
                && found.others[0][.universalEntityID] == "1.2.250.1.213.1.4.8", "the old sequence replaced by the INS")
        #expect(found.values[DICOMCore.Tag(0x0020, 0x000D)] == "1.2.9" && found.pixels == 64, "what follows is intact")
        // The same identity again: nothing to change, the file goes as it is.
        let corrected = try writeTemporary(bytes, original: path)
        defer { unlink(corrected) }
        let edit = try IdentityCorrector.corrected(corrected, identity: identity, fillIssuer: "CHR-ORLEANS")
        #expect(edit.part.splices.isEmpty)
    }

    func writeTemporary(_ bytes: [UInt8], original: String) throws -> String {
        let path = original + ".again"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func aLatin1InstanceKeepsItsCharacterSetAndANameItCannotHoldLosesItsDiacritics() async throws {
        let (path, offset) = try makeFile(.explicitVRLittleEndian, characterSet: "ISO_IR 100", otherID: nil)
        defer { unlink(path) }
        let latin = try await sent(path, identity: PatientIdentity(issuer: "X", patientID: "IPP7", name: "MÜLLER^Zoé"))
        var found = try read(latin.bytes, offset: offset, syntax: .explicitVRLittleEndian)
        #expect(found.values[.specificCharacterSet] == "ISO_IR 100" && found.values[.patientName] == "MÜLLER^Zoé")
        let edit = try IdentityEdit(identity: PatientIdentity(issuer: "X", patientID: "IPP7", name: "WAŁĘSA^Łucja"),
                                    fillIssuer: nil, transferSyntax: .explicitVRLittleEndian, length: 10_000) {
            () throws(DataSetError) in try FileByteSource(path: path, offset: offset)
        }
        #expect(edit.notes.count == 1)
        let polish = try await sent(path, identity: PatientIdentity(issuer: "X", patientID: "IPP7", name: "WAŁĘSA^Łucja"))
        found = try read(polish.bytes, offset: offset, syntax: .explicitVRLittleEndian)
        #expect(found.values[.patientName]?.hasPrefix("WA") == true && found.values[.specificCharacterSet] == "ISO_IR 100")
        // An identity no longer qualified: an INS sequence absent stays absent, nothing to splice.
        let none = try IdentityEdit(identity: PatientIdentity(issuer: "X", patientID: "IPP7", insKnown: true),
                                    fillIssuer: nil, transferSyntax: .explicitVRLittleEndian, length: 10_000) {
            () throws(DataSetError) in try FileByteSource(path: path, offset: offset)
        }
        #expect(none.isEmpty)
    }
}
