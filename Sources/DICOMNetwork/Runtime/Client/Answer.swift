import NIOCore

/// A future whose failures are ``DICOMClientError``s.
struct Answer<Value: Sendable>: Sendable {
    let future: EventLoopFuture<Value>

    func get() async throws(DICOMClientError) -> Value {
        do {
            return try await future.get()
        } catch {
            throw error as? DICOMClientError ?? DICOMClientError(code: .connectionClosed, message: "\(error)")
        }
    }
}
