/// Where an error is, as the standard numbers it: ERR-2 (ERL) from v2.5, ERR-1 (ELD) before.
public struct HL7ErrorLocation: Sendable, Equatable, CustomStringConvertible {
    /// The segment ID, e.g. "MSH".
    public var segment: String
    /// Which occurrence of that segment, from 1.
    public var sequence: Int
    /// The field position (MSH-10 is 10).
    public var field: Int?
    /// The component number within the field.
    public var component: Int?

    public init(segment: String, sequence: Int = 1, field: Int? = nil, component: Int? = nil) {
        self.segment = segment
        self.sequence = sequence
        self.field = field
        self.component = component
    }

    /// "MSH-9.2", as people write it.
    public var description: String {
        var text = segment
        if sequence != 1 { text += "[\(sequence)]" }
        if let field { text += "-\(field)" }
        if let field, field > 0, let component { text += ".\(component)" }
        return text
    }
}
