// Target `multipart`: the WADO-RS multipart/related parser, fed in arbitrary chunks.
// Input: [boundary choice][n][n chunk sizes][body]. Invariant: when the body parses in
// pieces, it parses whole to the same parts (headers and bytes).
import DICOMweb
import NIOCore

let contentTypes = [
    #"multipart/related; type="application/dicom"; boundary=DICOMwebBoundary"#,
    #"multipart/related; boundary="a b:c"; type="application/dicom""#,
    "multipart/related;boundary=x",
    #"multipart/related; type="application/octet-stream"; boundary=---=_Part_0"#,
]

struct Part: Equatable {
    var headers: [String: String]
    var body: [UInt8] = []
}

/// Parts seen, and whether parsing ended in an error or completed.
func parse(_ pieces: [ArraySlice<UInt8>], boundary: String) -> (parts: [Part], failed: Bool, complete: Bool) {
    var parser = MultipartParser(boundary: boundary, maximumHeaderBytes: 1024)
    var parts: [Part] = []
    do {
        for piece in pieces {
            for event in try parser.feed(ByteBuffer(bytes: piece)) {
                switch event {
                case .partStart(let headers): parts.append(Part(headers: headers))
                case .body(let bytes):
                    check(!parts.isEmpty, "body bytes before any part")
                    parts[parts.count - 1].body += bytes.readableBytesView
                case .partEnd: break
                }
            }
        }
        try parser.finish()
    } catch {
        return (parts, true, parser.isComplete)
    }
    return (parts, false, parser.isComplete)
}

func fuzzOne(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    let contentType = input.pick(contentTypes)
    guard let boundary = MultipartParser.boundary(fromContentType: contentType) else { return check(false, "no boundary in \(contentType)") }
    let sizes = input.take(Int(input.byte() % 8))
    let body = input.rest()[...]
    let whole = parse([body], boundary: boundary)
    let split = parse(chunks(body, sizes: sizes), boundary: boundary)
    // Cut small, buffered headers can exceed their bound where whole ones do not: only a
    // success in pieces says how the whole must end.
    if !split.failed {
        check(!whole.failed && whole.parts == split.parts, "the parts depend on the chunking")
    }
    // A Content-Type header's boundary parameter, as a server might write it.
    _ = MultipartParser.boundary(fromContentType: String(decoding: body.prefix(200), as: UTF8.self))
}
