import Foundation

extension Settings {
    /// toml++ (inside TOMLKit) asserts, so aborts the process, on a `}` where an array expects
    /// a value (`[}` or `, }`): its array parser hands the brace to `parse_value()`, which
    /// assumes it never sees one. Found by `fuzz/run config`. Such a brace is refused here with
    /// its line, outside strings and comments; everything else stays TOML's to judge.
    static func checkArrayValues(_ text: String, file: String) throws(ConfigurationError) {
        let bytes = Array(text.utf8)
        var index = 0, line = 1
        // Whether the last significant character outside strings and comments opened an array
        // slot: `[` or `,`.
        var expectingValue = false
        func starts(_ prefix: String) -> Bool {
            let p = Array(prefix.utf8)
            return bytes.count - index >= p.count && Array(bytes[index..<index + p.count]) == p
        }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\n"):
                line += 1
                index += 1
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                index += 1
            case UInt8(ascii: "#"):
                while index < bytes.count && bytes[index] != UInt8(ascii: "\n") { index += 1 }
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                let delimiter = starts(byte == UInt8(ascii: "\"") ? "\"\"\"" : "'''") ? 3 : 1
                let escapes = byte == UInt8(ascii: "\"")
                index += delimiter
                while index < bytes.count {
                    if escapes && bytes[index] == UInt8(ascii: "\\") { index += 2; continue }
                    if bytes[index] == UInt8(ascii: "\n") { line += 1 }
                    if bytes[index] == byte && (delimiter == 1 || starts(String(repeating: Character(UnicodeScalar(byte)), count: 3))) {
                        index += delimiter
                        break
                    }
                    // A one-line string ends at its line's end (TOML's error, not ours).
                    if delimiter == 1 && bytes[index] == UInt8(ascii: "\n") { break }
                    index += 1
                }
                expectingValue = false
            case UInt8(ascii: "}") where expectingValue:
                throw ConfigurationError(file: file, line: line, message: "TOML syntax: '}' where an array expects a value",
                                         hint: "an array is [\"a\", \"b\"]; a '}' closes an inline table { key = value }")
            default:
                expectingValue = byte == UInt8(ascii: "[") || byte == UInt8(ascii: ",")
                index += 1
            }
        }
    }
}
