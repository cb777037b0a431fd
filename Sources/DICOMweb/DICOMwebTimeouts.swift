/// Time limits of a `DICOMwebClient`.
public struct DICOMwebTimeouts: Sendable, Hashable {
    /// TCP (and TLS) connection set-up.
    public var connect: Duration
    /// Longest silence while waiting for response bytes.
    public var read: Duration
    /// Whole request, upload included (a 16 MiB chunk at 1 Mbit/s takes ~2 min).
    public var request: Duration

    public init(connect: Duration = .seconds(10), read: Duration = .seconds(120), request: Duration = .seconds(900)) {
        self.connect = connect
        self.read = read
        self.request = request
    }
}
