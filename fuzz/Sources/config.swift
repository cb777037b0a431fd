// Target `config`: the TOML configuration loader (TOMLKit, then the schema, the checks and
// file:line errors) from text, without reading a file. Input: the document's bytes.
import Gateway

func fuzzOne(_ bytes: [UInt8]) {
    let text = String(decoding: bytes, as: UTF8.self)
    do {
        _ = try ConfigurationLoader.parse(text: text, file: "/etc/passerelle/passerelle.toml")
    } catch {
        _ = error.description  // the message an operator reads must be buildable
    }
}
