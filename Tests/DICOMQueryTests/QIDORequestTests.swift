import DICOMCore
import QueryTestSupport
import Testing
@testable import DICOMQuery

/// QIDO-RS searches as path and query parameters: paging and percent-encoding.
@Suite struct QIDORequestTests: QueryFixtures {
    // MARK: Paging and encoding

    @Test func paging() throws {
        let request = try find("STUDY", key(Tag.patientName, "PN", "DUR*")).qidoRequest()
        let page = request.withPaging(limit: 100, offset: 200)
        #expect(page.parameters.count == request.parameters.count + 2)
        #expect(page.values(of: "limit") == ["100"])
        #expect(page.values(of: "offset") == ["200"])
        let next = page.withPaging(limit: 100, offset: 300)
        #expect(next.values(of: "offset") == ["300"])
        #expect(next.parameters.count == page.parameters.count)
        #expect(next.path == request.path)
    }

    @Test func pathAndQueryIsPercentEncoded() {
        let request = QIDORequest(path: "studies", parameters: [
            (name: "00100010", value: "DUR*^H?"), (name: "0020000D", value: "1.2,1.3"), (name: "00080020", value: "2020-"),
        ])
        #expect(request.pathAndQuery == "studies?00100010=DUR*%5EH%3F&0020000D=1.2,1.3&00080020=2020-")
        #expect(QIDORequest(path: "series").pathAndQuery == "series")
        #expect(request == QIDORequest(path: "studies", parameters: request.parameters))
        #expect(request != QIDORequest(path: "studies", parameters: Array(request.parameters.reversed())))
    }
}
