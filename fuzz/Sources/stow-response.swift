// Target `stow-response`: the STOW-RS response parser, JSON (JSONSerialization) and XML
// (MiniXML, the Native DICOM Model), and the per-instance outcome built from it.
// Input: [selector][body]. Selector bit 0: XML or JSON; bits 1-3: the HTTP status.
import DICOMweb
import NIOCore

let statuses = [200, 202, 409, 400, 200, 202, 409, 500]

func fuzzOne(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    let selector = input.byte()
    let contentType = selector & 1 == 1 ? "application/dicom+xml" : "application/dicom+json"
    let body = ByteBuffer(bytes: input.rest())
    let requested = ["1.2.3.4", "1.2.826.0.1.3680043.8.498.1"]
    if let response = try? STOWResponse.parse(body, contentType: contentType) {
        _ = response.results
    }
    let status = statuses[Int(selector >> 1) % statuses.count]
    guard let results = try? STOWResponse.evaluate(status: status, contentType: contentType, body: body,
                                                   url: "http://127.0.0.1/studies", requested: requested) else { return }
    check(requested.allSatisfy { results[$0] != nil }, "an instance sent has no outcome")
}
