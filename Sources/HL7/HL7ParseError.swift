/// Why a message could not be parsed: the table 0357 code and location to put in the ERR
/// segment of the reject, and a sentence for people.
public struct HL7ParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: HL7ErrorCode
    /// For people and the ERR diagnostic, e.g. "MSH-10 (message control ID) is missing".
    public var reason: String
    public var location: HL7ErrorLocation?

    public init(code: HL7ErrorCode, reason: String, location: HL7ErrorLocation? = nil) {
        self.code = code
        self.reason = reason
        self.location = location
    }

    public var description: String {
        "HL7ParseError \(code.rawValue) (\(code.text))" + (location.map { " at \($0)" } ?? "") + ": \(reason)"
    }

    static func missing(_ field: Int, _ name: String, component: Int? = nil) -> HL7ParseError {
        let label = "MSH-\(field)" + (component.map { ".\($0)" } ?? "")
        return HL7ParseError(code: .requiredFieldMissing, reason: "\(label) (\(name)) is missing",
                             location: HL7ErrorLocation(segment: "MSH", field: field, component: component))
    }
}
