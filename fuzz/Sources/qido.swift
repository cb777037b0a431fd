// Target `qido`: the QIDO-RS JSON mapper: PS3.18 JSON → DICOMModelDataSet → the gateway's
// C-FIND answer (QueryAttribute.attributes, FindQuery matching and response, IdentifierCodec),
// the instance listing (QIDOInstancesQuery), retrieval items and a report's study.
// Input: [selector][JSON body]. Selector picks the query and the answer's transfer syntax.
import DICOMCore
@testable import DICOMQuery
@testable import DICOMweb
@testable import Gateway
import Foundation
import NIOCore

let queries: [FindQuery] = {
    func key(_ tag: Tag, _ vr: String, _ values: [String] = []) -> QueryAttribute {
        QueryAttribute(tag: tag, vr: vr, values: values)
    }
    let identifiers: [[QueryAttribute]] = [
        [key(.queryRetrieveLevel, "CS", ["STUDY"]), key(.patientName, "PN", ["DUR*"]), key(.studyDate, "DA", ["20200101-"]),
         key(.studyInstanceUID, "UI"), key(.modalitiesInStudy, "CS", ["CT\\MR"]), key(.accessionNumber, "SH")],
        [key(.queryRetrieveLevel, "CS", ["PATIENT"]), key(.patientID, "LO", ["12*"]), key(.patientBirthDate, "DA"),
         key(.issuerOfPatientID, "LO")],
        [key(.queryRetrieveLevel, "CS", ["SERIES"]), key(.studyInstanceUID, "UI", ["1.2.3"]), key(.modality, "CS", ["CT"]),
         key(.seriesNumber, "IS")],
    ]
    return identifiers.compactMap { identifier in
        (try? FindQuery(identifier: identifier, model: .studyRoot)) ?? (try? FindQuery(identifier: identifier, model: .patientRoot))
    }
}()

func fuzzOne(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    let selector = input.byte()
    let body = input.rest()
    let query = queries[Int(selector) % queries.count]
    let uid = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"][Int(selector >> 4) % 3]

    _ = try? QIDOInstancesQuery.parse(ByteBuffer(bytes: body))
    guard let results = try? DICOMJSONModel.parse(Data(body)) else { return }
    _ = RetrievePlanner.items(results)
    var studies: [QIDOAttributes] = []
    for result in results {
        _ = HL7Bridge.reportStudy(result)
        let attributes = QueryAttribute.attributes(result)
        studies.append(attributes)
        guard query.matches(attributes) else { continue }
        // The answer the requestor gets must be a readable identifier.
        let response = query.response(for: attributes)
        let encoded = IdentifierCodec.encode(response, requested: .default, transferSyntax: uid)
        do {
            _ = try IdentifierCodec.decode(encoded, transferSyntax: uid)
        } catch {
            check(false, "a C-FIND answer made from a QIDO-RS result does not decode: \(error)")
        }
    }
    _ = FindQuery.patients(from: studies)
}
