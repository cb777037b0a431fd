import Testing
@testable import DICOMweb

@Suite struct DICOMwebErrorTests {
    @Test(arguments: [
        (408, DICOMwebError.Kind.retryable), (429, .retryable), (500, .retryable), (502, .retryable),
        (503, .retryable), (504, .retryable), (400, .permanent), (404, .permanent), (405, .permanent),
        (409, .permanent), (413, .permanent), (415, .permanent), (401, .configuration),
        (403, .configuration), (301, .configuration),
    ])
    func statusKinds(status: Int, kind: DICOMwebError.Kind) {
        let error = DICOMwebError.forStatus(status, url: "http://dc/dicom-web/studies")
        #expect(error.kind == kind)
        #expect(error.status == status)
    }

    @Test func tooLargeSaysSplit() {
        let error = DICOMwebError.forStatus(413, url: "http://dc/dicom-web/studies")
        #expect(error.code == .payloadTooLarge)
        #expect(error.description.contains("413"))
        #expect(error.description.contains("http://dc/dicom-web/studies"))
        #expect(error.description.contains("smaller chunks"))
    }

    @Test func unauthorizedIsConfiguration() {
        #expect(DICOMwebError.forStatus(401, url: nil).code == .unauthorized)
        #expect(DICOMwebError.forStatus(403, url: nil, detail: "no").description.contains("credentials refused (bearer token or client certificate): no"))
    }
}
