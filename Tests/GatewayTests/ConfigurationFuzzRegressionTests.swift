import Testing
@testable import Gateway

/// Inputs found by `fuzz/run config` (fuzz/README.md), kept as they crashed.
@Suite struct ConfigurationFuzzRegressionTests {
    /// A table header whose key starts with a character that is neither a bare-key character
    /// nor a quote: toml++ (inside TOMLKit) asserts on it and aborts the process, so a typo in
    /// a configuration reloaded by SIGHUP killed the daemon. Found as an abort in toml.hpp
    /// `parse_key()`.
    static let backtickTableHeader = """
        [[ae]]
        title = "PACS"
        host = "10.1.2.3"
        port = 104
        ratrieve = "get"

        [[`e]]
        title = "VIEWER"
        host = "10.1.2.4"
        port = 104

        """

    @Test func tableHeaderWithAnInvalidKeyIsAnErrorWithItsLine() {
        #expect {
            _ = try ConfigurationLoader.parse(text: Self.backtickTableHeader, file: "passerelle.toml")
        } throws: { error in
            guard let error = error as? ConfigurationError else { return false }
            return error.line == 7 && error.file == "passerelle.toml"
        }
    }

    /// A "[" that ends its line: toml++ took the next line's start for the key, and aborted on
    /// the line break. Found as the same abort, after the first fix, from `[` + 37 LF + `[ae]]`.
    @Test func tableHeaderOpenedAtTheEndOfALineIsAnError() {
        let text = "[" + String(repeating: "\n", count: 37) + "[ae]]\ntitle = \"PACS\"\n"
        #expect {
            _ = try ConfigurationLoader.parse(text: text, file: "passerelle.toml")
        } throws: { error in
            (error as? ConfigurationError)?.line == 1
        }
    }

    /// A `}` where an array expects a value, after `[` or a comma: toml++ asserts in
    /// `parse_value()` (`!is_value_terminator(*cp)`) and aborts. Found by the CI run of
    /// `fuzz/run --configuration debug config` (debug builds keep toml++'s assertions; release
    /// builds turn them into assumptions, which is no better).
    @Test func aClosingBraceWhereAnArrayExpectsAValueIsAnErrorWithItsLine() {
        let text = "[site]\nemitter = \"cstrs37000\"\n\n[hl7]\nport = 2576\n"
            + "allowed_senders = [\"RIS\", }\"PASS\", \"P\u{FFFD}[HRU\"]\nallowed_hosts = [\"10.1.2.0/2\"]\n"
        #expect {
            _ = try ConfigurationLoader.parse(text: text, file: "passerelle.toml")
        } throws: { error in
            (error as? ConfigurationError)?.line == 6
        }
    }

    @Test(arguments: ["x = [}]", "x = [1,}", "x = [\n  # a comment\n  }]", "x = [[1], [ }]]"])
    func otherClosingBracesInArraysAreErrors(_ document: String) {
        #expect(throws: ConfigurationError.self) {
            _ = try ConfigurationLoader.parse(text: "[dicom]\n\(document)\n", file: "passerelle.toml")
        }
    }

    @Test func bracesInsideStringsAndInlineTablesAreLeftToTOML() throws {
        let text = "[dicom]\nallowed_calling_aets = [\"A}\", 'B}', \"\"\"C\n}\"\"\"]\n"
        #expect(throws: Never.self) { try Settings.checkArrayValues(text, file: "passerelle.toml") }
    }

    @Test(arguments: ["[`a]", "[ {x}]", "[[ =]]", "[\t%]", "[", "[[\r\n"])
    func otherInvalidTableHeadersAreErrors(_ header: String) {
        #expect(throws: ConfigurationError.self) {
            _ = try ConfigurationLoader.parse(text: "\(header)\nx = 1\n", file: "passerelle.toml")
        }
    }
}
