/// Unique identifiers, PS3.5 §9.
public enum UID {
    /// PS3.5 §9.1: at most 64 characters, components of digits separated by single dots,
    /// no empty component and no leading zero in a multi-digit component.
    public static func isValid(_ uid: String) -> Bool {
        let bytes = Array(uid.utf8)
        guard !bytes.isEmpty, bytes.count <= 64 else { return false }
        var componentStart = true
        var leadingZero = false
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "."):
                if componentStart { return false }
                componentStart = true
                leadingZero = false
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                if leadingZero { return false }
                if componentStart { leadingZero = byte == UInt8(ascii: "0") }
                componentStart = false
            default:
                return false
            }
        }
        return !componentStart
    }

    /// Trims the NUL/space padding of a UI value (PS3.5 §6.2).
    public static func trimmed(_ value: String) -> String {
        var scalars = Substring(value)
        while let last = scalars.last, last == "\0" || last == " " { scalars = scalars.dropLast() }
        while let first = scalars.first, first == " " { scalars = scalars.dropFirst() }
        return String(scalars)
    }
}
