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

    @Test(arguments: ["[`a]", "[ {x}]", "[[ =]]", "[\t%]", "[", "[[\r\n"])
    func otherInvalidTableHeadersAreErrors(_ header: String) {
        #expect(throws: ConfigurationError.self) {
            _ = try ConfigurationLoader.parse(text: "\(header)\nx = 1\n", file: "passerelle.toml")
        }
    }
}
