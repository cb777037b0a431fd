import NIOCore

/// A future whose failures are ``DICOMNetworkError``s.
struct Answer<Value: Sendable>: Sendable {
    let future: EventLoopFuture<Value>

    func get() async throws(DICOMNetworkError) -> Value {
        do {
            return try await future.get()
        } catch {
            throw error as? DICOMNetworkError ?? DICOMNetworkError(code: .connectionClosed, message: "\(error)")
        }
    }
}
