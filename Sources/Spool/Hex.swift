import Crypto

extension Digest {
    /// Lower-case hex, as the `sha256` columns and record headers hold it.
    public var hexString: String {
        var result = ""
        result.reserveCapacity(Self.byteCount * 2)
        for byte in self {
            result += String(byte, radix: 16).leftPadded(to: 2)
        }
        return result
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
