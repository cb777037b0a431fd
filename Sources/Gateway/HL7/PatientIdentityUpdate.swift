import HL7
import Spool

/// An identity update from the site's PAS (IHE PIR; IHE PAM, French national extension):
/// `ADT^A08`/`A31` (demographics), `A47` (change of patient identifier), `A40` (merge), read
/// into the identity the patient has now (docs/hl7.md lists the fields).
enum PatientIdentityUpdate {
    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    /// The site's patient identifiers in PID-3 / MRG-1: the assigning authority (CX-4) read as
    /// an issuer, the site's own (its namespace, its OID, or none) as `siteIssuer`.
    struct Issuers {
        var siteIssuer: String
        var siteOID: String?

        func issuer(namespace: String, universal: String) -> String {
            let site = [siteIssuer, siteOID].compactMap { $0 }.filter { !$0.isEmpty }
            if namespace.isEmpty && universal.isEmpty { return siteIssuer }
            if site.contains(namespace) || site.contains(universal) { return siteIssuer }
            return namespace.isEmpty ? universal : namespace
        }

        /// The patient identifier of a CX field that is not an INS: the one of the site's
        /// issuer if any, else the first. Nil when the field names none.
        func patient(in field: HL7Field) -> (id: String, issuer: String)? {
            var first: (id: String, issuer: String)?
            for repetition in 0..<field.repetitionCount {
                let id = field.value(repetition: repetition)
                let namespace = field.value(repetition: repetition, component: 4)
                let universal = field.value(repetition: repetition, component: 4, subcomponent: 2)
                guard !id.isEmpty, !INS.assigningAuthorities.contains(namespace),
                      !INS.assigningAuthorities.contains(universal) else { continue }
                let found = (id, issuer(namespace: namespace, universal: universal))
                if found.1 == siteIssuer { return found }
                if first == nil { first = found }
            }
            return first
        }

        /// The INS of PID-3 (an identifier whose assigning authority is an INS OID).
        func ins(in field: HL7Field) -> PatientIdentity.INSValue? {
            for repetition in 0..<field.repetitionCount {
                let id = field.value(repetition: repetition)
                let authority = [field.value(repetition: repetition, component: 4, subcomponent: 2),
                                 field.value(repetition: repetition, component: 4)].first(where: INS.assigningAuthorities.contains)
                if let authority, !id.isEmpty { return .init(value: id, assigningAuthority: authority) }
            }
            return nil
        }
    }

    static func read(_ message: HL7Message, issuers: Issuers) throws -> IdentityUpdateRecord {
        let header = message.header
        guard let pid = message.segment(named: "PID") else { throw Problem(description: "no PID segment") }
        guard let patient = issuers.patient(in: pid.field(3)) else {
            throw Problem(description: "PID-3 names no patient identifier of the site")
        }
        var prior: String?
        if header.triggerEvent == "A47" || header.triggerEvent == "A40" {
            guard let mrg = message.segment(named: "MRG"), let old = issuers.patient(in: mrg.field(1)) else {
                throw Problem(description: "MRG-1 names no prior patient identifier")
            }
            guard old.issuer == patient.issuer else {
                throw Problem(description: "MRG-1 \(old.id) of \(old.issuer) and PID-3 \(patient.id) of \(patient.issuer): across issuers")
            }
            prior = old.id
        }
        // PID-32 (identity reliability, PAM France): the INS is used only for a qualified identity.
        let reliability = pid.field(32)
        let statuses = (0..<reliability.repetitionCount).map { reliability.value(repetition: $0).uppercased() }
        let qualified = statuses.contains("VALI")
        let ins = issuers.ins(in: pid.field(3))
        let identity = PatientIdentity(
            issuer: patient.issuer, patientID: patient.id, name: personName(pid.field(5)),
            birthDate: birthDate(pid.field(7)), sex: sex(pid.field(8)), ins: qualified ? ins : nil,
            insKnown: ins != nil || !statuses.filter { !$0.isEmpty }.isEmpty)
        return IdentityUpdateRecord(identity: identity, priorPatientID: prior,
                                    event: "\(header.messageCode)^\(header.triggerEvent)", controlID: header.controlID)
    }

    /// PID-5 (XPN) as a DICOM PN: the legal name (name type L: in France the birth name, the
    /// one the INS carries) when several are given, else the first. Nil when empty.
    static func personName(_ field: HL7Field) -> String? {
        let repetitions = 0..<field.repetitionCount
        guard let repetition = repetitions.first(where: { field.value(repetition: $0, component: 7) == "L" })
                ?? repetitions.first(where: { !field.value(repetition: $0).isEmpty }) else { return nil }
        // XPN: family, given, second names, suffix, prefix; DICOM PN: family, given, middle, prefix, suffix.
        let parts = [1, 2, 3, 5, 4].map { field.value(repetition: repetition, component: $0) }
        var name = parts
        while name.last?.isEmpty == true { name.removeLast() }
        return name.isEmpty || field.isNull ? nil : name.joined(separator: "^")
    }

    /// PID-7 (TS) as a DICOM DA: its date.
    static func birthDate(_ field: HL7Field) -> String? {
        let value = field.value()
        let digits = value.prefix(8)
        return digits.count == 8 && digits.allSatisfy(\.isNumber) ? String(digits) : nil
    }

    /// PID-8 (HL7 table 0001) as DICOM M, F or O.
    static func sex(_ field: HL7Field) -> String? {
        switch field.value().uppercased() {
        case "M": "M"
        case "F": "F"
        case "": nil
        default: "O"
        }
    }
}

extension GatewayConfiguration.Site {
    /// How PID-3 and MRG-1 identifiers are read as this site's or another issuer's.
    var patientIssuers: PatientIdentityUpdate.Issuers {
        .init(siteIssuer: issuerOfPatientID ?? "", siteOID: issuerOID)
    }
}
