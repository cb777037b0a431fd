import Foundation
import Spool
import TOMLKit

/// Reads `passerelle.toml` and its `conf.d/*.toml` drop-ins (later files override earlier
/// ones key by key), checks every key against the schema and reports mistakes with file:line.
public enum ConfigurationLoader {
    /// Loads `path` and, when present, the `conf.d/` directory beside it.
    public static func load(path: String) throws(ConfigurationError) -> GatewayConfiguration {
        var files = [path]
        let dropInDirectory = (path as NSString).deletingLastPathComponent + "/conf.d"
        if let names = try? FileManager.default.contentsOfDirectory(atPath: dropInDirectory) {
            files += names.filter { $0.hasSuffix(".toml") }.sorted().map { "\(dropInDirectory)/\($0)" }
        }
        var settings = Settings()
        for file in files {
            guard let data = FileManager.default.contents(atPath: file),
                  let text = String(data: data, encoding: .utf8) else {
                throw ConfigurationError(file: file, line: nil, message: "cannot read the file",
                                         hint: "check that it exists, is UTF-8 and readable by the passerelle user")
            }
            try settings.merge(text: text, file: file)
        }
        return try settings.configuration()
    }

    /// Parses one document (tests, `config check` on a single file).
    public static func parse(text: String, file: String) throws(ConfigurationError) -> GatewayConfiguration {
        var settings = Settings()
        try settings.merge(text: text, file: file)
        return try settings.configuration()
    }
}

/// A value with the place it was written.
struct LocatedValue {
    var value: any TOMLValueConvertible
    var file: String
    var line: Int?
}

/// The flattened settings of every file: "dicom.port", "destinations.archive.url",
/// "ae.0.title" → value and location.
struct Settings {
    private(set) var values: [String: LocatedValue] = [:]
    /// Tables written in a file, even empty ones (`[hl7]` alone turns the listener on).
    private(set) var tables: Set<String> = []
    private var arrayCounts: [String: Int] = [:]

    mutating func merge(text: String, file: String) throws(ConfigurationError) {
        try Self.checkTableHeaders(text, file: file)
        try Self.checkArrayValues(text, file: file)
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigurationError(file: file, line: error.source.begin.line,
                                     message: "TOML syntax: \(error.description)")
        } catch {
            throw ConfigurationError(file: file, line: nil, message: "TOML syntax: \(error)")
        }
        let lines = KeyLineIndex(text: text)
        for key in table.keys.sorted() {
            guard let value = table[key] else { continue }
            try mergeTop(key: key, value: value, file: file, lines: lines)
        }
    }

    /// toml++ (inside TOMLKit) asserts, so aborts the process, on a table header whose key starts
    /// with neither a bare-key character nor a quote (`[[`e]]`): a typo in a configuration reloaded
    /// by SIGHUP killed the daemon (found by fuzz/run config). Such a header is refused here first.
    static func checkTableHeaders(_ text: String, file: String) throws(ConfigurationError) {
        for (index, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            var rest = line.drop { $0 == " " || $0 == "\t" }
            guard rest.first == "[" else { continue }
            rest = rest.dropFirst()
            if rest.first == "[" { rest = rest.dropFirst() }
            rest = rest.drop { $0 == " " || $0 == "\t" }
            // "[]" is toml++'s own error, with its line; a "[" that ends its line is not (it
            // reads on into the next line and asserts on the line break).
            guard let first = rest.first else {
                throw ConfigurationError(file: file, line: index + 1, message: "TOML syntax: a table header without its name",
                                         hint: "a table header is one line: [destinations.archive]")
            }
            if first == "]" { continue }
            let bare = first.isASCII && (first.isLetter || first.isNumber) || first == "_" || first == "-"
            guard !bare && first != "\"" && first != "'" else { continue }
            throw ConfigurationError(file: file, line: index + 1,
                                     message: "TOML syntax: invalid table header \(line.trimmingCharacters(in: .whitespaces))",
                                     hint: "a table name is bare (A-Z a-z 0-9 _ -) or quoted: [destinations.archive]")
        }
    }

    private mutating func mergeTop(key: String, value: any TOMLValueConvertible, file: String,
                                   lines: KeyLineIndex) throws(ConfigurationError) {
        guard let kind = ConfigurationSchema.sections[key] else {
            throw ConfigurationError(file: file, line: lines.line(section: key, key: nil),
                                     message: "unknown section [\(key)]",
                                     hint: "known sections: \(ConfigurationSchema.sections.keys.sorted().joined(separator: ", "))")
        }
        switch kind {
        case .table(let schema):
            guard let table = value.table else {
                throw ConfigurationError(file: file, line: lines.line(section: nil, key: key),
                                         message: "\(key) must be a table [\(key)]")
            }
            tables.insert(key)
            try mergeTable(table, path: key, schema: schema, file: file, lines: lines, section: key)
        case .namedTables(let schema):
            guard let table = value.table else {
                throw ConfigurationError(file: file, line: lines.line(section: nil, key: key),
                                         message: "\(key) must be tables such as [\(key).NAME]")
            }
            for name in table.keys.sorted() {
                guard let inner = table[name]?.table else {
                    throw ConfigurationError(file: file, line: lines.line(section: key, key: name),
                                             message: "[\(key).\(name)] must be a table")
                }
                try mergeTable(inner, path: "\(key).\(name)", schema: schema, file: file,
                               lines: lines, section: "\(key).\(name)")
            }
        case .arrayOfTables(let schema):
            guard let array = value.array else {
                throw ConfigurationError(file: file, line: lines.line(section: key, key: nil),
                                         message: "\(key) must be written as [[\(key)]] tables")
            }
            // Drop-ins append to arrays of tables rather than replacing entries by position.
            var index = arrayCounts[key] ?? 0
            for (occurrence, element) in array.enumerated() {
                guard let inner = element.table else {
                    throw ConfigurationError(file: file, line: lines.line(section: key, key: nil),
                                             message: "each [[\(key)]] entry must be a table")
                }
                try mergeTable(inner, path: "\(key).\(index)", schema: schema, file: file,
                               lines: lines, section: "[[\(key)]]#\(occurrence)")
                index += 1
            }
            arrayCounts[key] = index
        }
    }

    private mutating func mergeTable(_ table: TOMLTable, path: String, schema: [String: ValueKind],
                                     file: String, lines: KeyLineIndex, section: String) throws(ConfigurationError) {
        for key in table.keys.sorted() {
            let line = lines.line(section: section, key: key)
            guard let kind = schema[key] else {
                let suggestion = ConfigurationSchema.closest(to: key, in: Array(schema.keys))
                throw ConfigurationError(file: file, line: line, message: "unknown key '\(key)' in [\(path)]",
                                         hint: suggestion.map { "did you mean '\($0)'?" }
                                             ?? "known keys: \(schema.keys.sorted().joined(separator: ", "))")
            }
            guard let value = table[key] else { continue }
            let located = LocatedValue(value: value, file: file, line: line)
            try kind.validate(located, name: "\(path).\(key)")
            if case .table(let inner) = kind, let nested = value.table {
                tables.insert("\(path).\(key)")
                try mergeTable(nested, path: "\(path).\(key)", schema: inner, file: file, lines: lines,
                               section: "\(section).\(key)")
                continue
            }
            values["\(path).\(key)"] = located
        }
    }

    func indices(of arrayKey: String) -> Range<Int> {
        0..<(arrayCounts[arrayKey] ?? 0)
    }

    func names(under prefix: String) -> [String] {
        Set(values.keys.compactMap { key -> String? in
            guard key.hasPrefix(prefix + ".") else { return nil }
            return key.dropFirst(prefix.count + 1).split(separator: ".").first.map(String.init)
        }).sorted()
    }

    subscript(key: String) -> LocatedValue? { values[key] }

    func error(_ key: String, _ message: String, hint: String? = nil) -> ConfigurationError {
        let location = values[key]
        return ConfigurationError(file: location?.file ?? "configuration", line: location?.line,
                                  message: "\(key): \(message)", hint: hint)
    }
}

/// Finds the line on which a key (or a table header) is written, to report it.
struct KeyLineIndex {
    /// "section\u{0}key" → line; section is the dotted header, or "[[name]]#k" for the k-th
    /// array-of-tables entry in this file.
    private var lines: [String: Int] = [:]

    init(text: String) {
        var section = ""
        var arrayOccurrences: [String: Int] = [:]
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            let lineNumber = number + 1
            if line.hasPrefix("[[") {
                let name = Self.headerName(line.dropFirst(2))
                let occurrence = arrayOccurrences[name, default: 0]
                arrayOccurrences[name] = occurrence + 1
                section = "[[\(name)]]#\(occurrence)"
                record(section: section, key: nil, line: lineNumber)
                record(section: name, key: nil, line: lineNumber)
            } else if line.hasPrefix("[") {
                section = Self.headerName(line.dropFirst())
                record(section: section, key: nil, line: lineNumber)
                // A dotted header `[a.b]` also locates key `b` of section `a`.
                if let dot = section.lastIndex(of: ".") {
                    record(section: String(section[..<dot]), key: String(section[section.index(after: dot)...]),
                           line: lineNumber)
                } else {
                    record(section: "", key: section, line: lineNumber)
                }
            } else if let equals = line.firstIndex(of: "="), !line.hasPrefix("#") {
                let key = line[..<equals].trimmingCharacters(in: .whitespaces)
                    .trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
                record(section: section, key: key, line: lineNumber)
            }
        }
    }

    private static func headerName(_ rest: Substring) -> String {
        let end = rest.firstIndex(of: "]") ?? rest.endIndex
        return rest[..<end].trimmingCharacters(in: .whitespaces)
    }

    private mutating func record(section: String, key: String?, line: Int) {
        let id = section + "\u{0}" + (key ?? "")
        if lines[id] == nil { lines[id] = line }
    }

    func line(section: String?, key: String?) -> Int? {
        lines[(section ?? "") + "\u{0}" + (key ?? "")]
    }
}
