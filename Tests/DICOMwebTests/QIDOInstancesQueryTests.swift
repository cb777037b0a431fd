import NIOCore
import Testing
@testable import DICOMweb

@Suite struct QIDOInstancesQueryTests {
    static func page(_ uids: [String]) -> ByteBuffer {
        let items = uids.map { uid in
            """
            {"0020000D": {"vr": "UI", "Value": ["1.2.3"]},
             "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.7"]},
             "00080018": {"vr": "UI", "Value": ["\(uid)"]},
             "00100010": {"vr": "PN", "Value": [{"Alphabetic": "DOE^JOHN"}]}}
            """
        }
        return ByteBuffer(string: "[" + items.joined(separator: ",") + "]")
    }

    @Test func pagesUntilShortPage() throws {
        var query = QIDOInstancesQuery(studyInstanceUID: "1.2.3", pageSize: 2)
        #expect(query.nextPath == "studies/1.2.3/instances?limit=2&offset=0")
        try query.pageReceived(status: 200, contentType: "application/dicom+json", body: Self.page(["1", "2"]), url: nil)
        #expect(!query.isComplete)
        #expect(query.nextPath.contains("offset=2"))
        try query.pageReceived(status: 200, contentType: "application/dicom+json", body: Self.page(["3"]), url: nil)
        #expect(query.isComplete)
        #expect(query.instances == ["1": "1.2.840.10008.5.1.4.1.1.7", "2": "1.2.840.10008.5.1.4.1.1.7",
                                    "3": "1.2.840.10008.5.1.4.1.1.7"])
    }

    @Test func noContentAndEmptyBodyEnd() throws {
        var a = QIDOInstancesQuery(studyInstanceUID: "1")
        try a.pageReceived(status: 204, contentType: nil, body: ByteBuffer(), url: nil)
        #expect(a.isComplete && a.instances.isEmpty)
        var b = QIDOInstancesQuery(studyInstanceUID: "1")
        try b.pageReceived(status: 200, contentType: "application/dicom+json", body: ByteBuffer(string: "[]"), url: nil)
        #expect(b.isComplete && b.instances.isEmpty)
        var c = QIDOInstancesQuery(studyInstanceUID: "1")
        try c.pageReceived(status: 200, contentType: nil, body: ByteBuffer(), url: nil)
        #expect(c.isComplete && c.instances.isEmpty)
    }

    @Test func serverIgnoringOffsetDoesNotLoop() throws {
        var query = QIDOInstancesQuery(studyInstanceUID: "1", pageSize: 2)
        try query.pageReceived(status: 200, contentType: nil, body: Self.page(["1", "2"]), url: nil)
        try query.pageReceived(status: 200, contentType: nil, body: Self.page(["1", "2"]), url: nil)
        #expect(query.isComplete)
        #expect(query.instances.count == 2)
    }

    @Test func errorStatusThrowsClassified() {
        var query = QIDOInstancesQuery(studyInstanceUID: "1")
        do {
            try query.pageReceived(status: 503, contentType: nil, body: ByteBuffer(), url: "http://dc/x")
            Issue.record("expected an error")
        } catch {
            #expect(error.kind == .retryable)
        }
    }
}
