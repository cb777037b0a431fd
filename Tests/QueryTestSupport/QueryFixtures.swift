import DICOMCore
import DICOMQuery

/// Identifiers, keys and hub results written tersely, for the query suites (DICOMQueryTests, and
/// the community's in GatewayTests). (`DICOMCore.Tag` in
/// type positions: Swift Testing has a `Tag` too.)
public protocol QueryFixtures {}

extension QueryFixtures {
    public func key(_ tag: DICOMCore.Tag, _ vr: String, _ values: String...) -> QueryAttribute {
        QueryAttribute(tag: tag, vr: vr, values: values)
    }

    public func level(_ level: String) -> QueryAttribute { key(Tag.queryRetrieveLevel, "CS", level) }

    public func find(_ level: String, _ keys: QueryAttribute..., model: QueryModel = .studyRoot) throws -> FindQuery {
        try FindQuery(identifier: [self.level(level)] + keys, model: model)
    }

    public func result(_ attributes: QueryAttribute...) -> QIDOAttributes {
        Dictionary(attributes.map { ($0.tag, $0) }, uniquingKeysWith: { first, _ in first })
    }

    public func findError(_ identifier: [QueryAttribute], model: QueryModel = .studyRoot) -> QueryError? {
        do {
            _ = try FindQuery(identifier: identifier, model: model)
            return nil
        } catch {
            return error
        }
    }

    public func retrieveError(_ identifier: [QueryAttribute], model: QueryModel = .studyRoot) -> QueryError? {
        do {
            _ = try RetrieveQuery(identifier: identifier, model: model)
            return nil
        } catch {
            return error
        }
    }

    /// A study level query with one matching key, and whether it matches a result attribute.
    public func matches(_ key: QueryAttribute, _ attribute: QueryAttribute?) throws -> Bool {
        try find("STUDY", key).matches(attribute.map { result($0) } ?? [:])
    }

    public var insNIR: String { "1.2.250.1.213.1.4.8" }

    public var otherPatientIDs: DICOMCore.Tag { .otherPatientIDsSequence }

    public func insKey(_ id: String, issuer: String) -> QueryAttribute {
        QueryAttribute(tag: Tag.otherPatientIDsSequence, vr: "SQ", items: [[
            key(Tag.patientID, "LO", id), key(Tag.issuerOfPatientID, "LO", issuer),
        ]])
    }

    /// The unique keys of the levels above (hierarchical queries, PS3.4 C.4.1.2.1).
    public var upper: [QueryAttribute] {
        [key(Tag.patientID, "LO", "IPP1"), key(Tag.studyInstanceUID, "UI", "1.2.3"),
         key(Tag.seriesInstanceUID, "UI", "1.2.3.4")]
    }

    public func study(_ id: String, _ issuer: String, name: String = "DURAND^HELENE", series: String? = nil,
               instances: String? = nil, modalities: [String] = ["CT"]) -> QIDOAttributes {
        var attributes = result(key(Tag.patientID, "LO", id), key(Tag.issuerOfPatientID, "LO", issuer),
                                key(Tag.patientName, "PN", name), key(Tag.patientBirthDate, "DA", "19800101"),
                                key(Tag.studyInstanceUID, "UI", "1.2.\(id).\(issuer.count)"),
                                QueryAttribute(tag: Tag.modalitiesInStudy, vr: "CS", values: modalities))
        if let series { attributes[Tag.numberOfStudyRelatedSeries] = key(Tag.numberOfStudyRelatedSeries, "IS", series) }
        if let instances {
            attributes[Tag.numberOfStudyRelatedInstances] = key(Tag.numberOfStudyRelatedInstances, "IS", instances)
        }
        return attributes
    }
}
