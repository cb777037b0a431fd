/// A small, non-validating XML reader for the Native DICOM Model (PS3.19 §A.1): elements,
/// attributes, text, CDATA, character and the five predefined entity references. Comments,
/// processing instructions and a DOCTYPE are skipped; namespace prefixes are dropped from
/// names. It exists so that reading a STOW-RS response does not pull libxml2 into the daemon.
enum MiniXML {
    struct Node: Sendable, Hashable {
        var name: String
        var attributes: [String: String] = [:]
        var children: [Node] = []
        var text: String = ""
    }

    static let maximumDepth = 64

    /// The document's root element.
    static func parse(_ bytes: [UInt8]) throws(DICOMModelError) -> Node {
        var reader = Reader(bytes: bytes)
        return try reader.document()
    }

    struct Reader {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func document() throws(DICOMModelError) -> Node {
            var stack: [Node] = []
            var root: Node?
            while index < bytes.count {
                if bytes[index] != UInt8(ascii: "<") {
                    let text = try readText()
                    if !stack.isEmpty { stack[stack.count - 1].text += text }
                    continue
                }
                if starts(with: "<?") { try skip(past: "?>"); continue }
                if starts(with: "<!--") { try skip(past: "-->"); continue }
                if starts(with: "<![CDATA[") {
                    index += 9
                    let start = index
                    try skip(past: "]]>")
                    if !stack.isEmpty {
                        stack[stack.count - 1].text += String(decoding: bytes[start..<(index - 3)], as: UTF8.self)
                    }
                    continue
                }
                if starts(with: "<!") { try skip(past: ">"); continue }
                if starts(with: "</") {
                    index += 2
                    let name = localName(readName())
                    skipSpace()
                    try expect(">")
                    guard let node = stack.popLast(), node.name == name else {
                        throw DICOMModelError(message: "XML: unexpected </\(name)>")
                    }
                    if stack.isEmpty {
                        root = node
                        return node
                    }
                    stack[stack.count - 1].children.append(node)
                    continue
                }
                index += 1
                var node = Node(name: localName(readName()))
                guard !node.name.isEmpty else { throw DICOMModelError(message: "XML: empty element name") }
                var selfClosing = false
                while true {
                    skipSpace()
                    guard index < bytes.count else { throw DICOMModelError(message: "XML: truncated tag") }
                    if bytes[index] == UInt8(ascii: ">") { index += 1; break }
                    if starts(with: "/>") { index += 2; selfClosing = true; break }
                    let attributeName = localName(readName())
                    guard !attributeName.isEmpty else { throw DICOMModelError(message: "XML: bad attribute") }
                    skipSpace()
                    try expect("=")
                    skipSpace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") || bytes[index] == UInt8(ascii: "'") else {
                        throw DICOMModelError(message: "XML: unquoted attribute value")
                    }
                    let quote = bytes[index]
                    index += 1
                    let start = index
                    while index < bytes.count, bytes[index] != quote { index += 1 }
                    guard index < bytes.count else { throw DICOMModelError(message: "XML: truncated attribute") }
                    node.attributes[attributeName] = try decodeEntities(bytes[start..<index])
                    index += 1
                }
                if selfClosing {
                    if stack.isEmpty { return node }
                    stack[stack.count - 1].children.append(node)
                } else {
                    guard stack.count < MiniXML.maximumDepth else { throw DICOMModelError(message: "XML: nested too deep") }
                    stack.append(node)
                }
            }
            if let root { return root }
            throw DICOMModelError(message: stack.isEmpty ? "XML: no root element" : "XML: truncated document")
        }

        func starts(with text: StaticString) -> Bool {
            let count = text.utf8CodeUnitCount
            guard index + count <= bytes.count else { return false }
            let pointer = text.utf8Start
            for offset in 0..<count where bytes[index + offset] != pointer[offset] { return false }
            return true
        }

        mutating func skip(past text: StaticString) throws(DICOMModelError) {
            while index < bytes.count {
                if starts(with: text) {
                    index += text.utf8CodeUnitCount
                    return
                }
                index += 1
            }
            throw DICOMModelError(message: "XML: truncated document")
        }

        mutating func expect(_ character: Unicode.Scalar) throws(DICOMModelError) {
            guard index < bytes.count, bytes[index] == UInt8(ascii: character) else {
                throw DICOMModelError(message: "XML: expected '\(character)'")
            }
            index += 1
        }

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        mutating func readName() -> String {
            let start = index
            while index < bytes.count {
                let byte = bytes[index]
                if [0x20, 0x09, 0x0A, 0x0D].contains(byte) || byte == UInt8(ascii: ">") || byte == UInt8(ascii: "/")
                    || byte == UInt8(ascii: "=") { break }
                index += 1
            }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }

        func localName(_ name: String) -> String {
            if let colon = name.lastIndex(of: ":") { return String(name[name.index(after: colon)...]) }
            return name
        }

        mutating func readText() throws(DICOMModelError) -> String {
            let start = index
            while index < bytes.count, bytes[index] != UInt8(ascii: "<") { index += 1 }
            return try decodeEntities(bytes[start..<index])
        }

        func decodeEntities(_ slice: ArraySlice<UInt8>) throws(DICOMModelError) -> String {
            guard slice.contains(UInt8(ascii: "&")) else { return String(decoding: slice, as: UTF8.self) }
            var out: [UInt8] = []
            out.reserveCapacity(slice.count)
            var i = slice.startIndex
            while i < slice.endIndex {
                guard slice[i] == UInt8(ascii: "&") else { out.append(slice[i]); i += 1; continue }
                guard let end = slice[i...].firstIndex(of: UInt8(ascii: ";")), end - i <= 10 else {
                    throw DICOMModelError(message: "XML: bad entity reference")
                }
                let name = String(decoding: slice[(i + 1)..<end], as: UTF8.self)
                let scalar: Unicode.Scalar?
                switch name {
                case "lt": scalar = "<"
                case "gt": scalar = ">"
                case "amp": scalar = "&"
                case "quot": scalar = "\""
                case "apos": scalar = "'"
                default:
                    if name.hasPrefix("#x") || name.hasPrefix("#X") {
                        scalar = UInt32(name.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init)
                    } else if name.hasPrefix("#") {
                        scalar = UInt32(name.dropFirst(1)).flatMap(Unicode.Scalar.init)
                    } else {
                        scalar = nil
                    }
                }
                guard let scalar else { throw DICOMModelError(message: "XML: unknown entity &\(name);") }
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
                i = end + 1
            }
            return String(decoding: out, as: UTF8.self)
        }
    }
}
