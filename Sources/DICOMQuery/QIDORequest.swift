import Foundation

/// A QIDO-RS search (PS3.18 §10.6): a path relative to the DICOMweb base URL, without leading
/// slash, and its query parameters in order (a name may repeat, as `includefield` does).
public struct QIDORequest: Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var parameters: [(name: String, value: String)]

    public init(path: String, parameters: [(name: String, value: String)] = []) {
        self.path = path
        self.parameters = parameters
    }

    public static func == (lhs: QIDORequest, rhs: QIDORequest) -> Bool {
        lhs.path == rhs.path && lhs.parameters.elementsEqual(rhs.parameters) { $0.name == $1.name && $0.value == $1.value }
    }

    /// The same search, one page of it (PS3.18 §8.3.4.4); earlier `limit`/`offset` are replaced.
    public func withPaging(limit: Int, offset: Int) -> QIDORequest {
        var request = self
        request.parameters.removeAll { $0.name == "limit" || $0.name == "offset" }
        request.parameters.append((name: "limit", value: String(limit)))
        request.parameters.append((name: "offset", value: String(offset)))
        return request
    }

    /// Values of parameter `name`, in order.
    public func values(of name: String) -> [String] {
        parameters.filter { $0.name == name }.map(\.value)
    }

    /// `studies?00100010=DUR*&includefield=00080020`, percent-encoded, to append to the base URL.
    /// `*` and `,` stay literal: some servers split lists before decoding.
    public var pathAndQuery: String {
        guard !parameters.isEmpty else { return path }
        let query = parameters.map { parameter in
            let name = parameter.name.addingPercentEncoding(withAllowedCharacters: Self.allowed) ?? parameter.name
            let value = parameter.value.addingPercentEncoding(withAllowedCharacters: Self.allowed) ?? parameter.value
            return "\(name)=\(value)"
        }
        return path + "?" + query.joined(separator: "&")
    }

    public var description: String { pathAndQuery }

    private static let allowed = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~*,")
}
