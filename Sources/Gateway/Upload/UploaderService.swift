import ServiceLifecycle

/// Temporary: the uploader as a `Service` until it is one itself.
struct UploaderService: Service {
    let uploader: Uploader

    func run() async throws {
        try await cancelWhenGracefulShutdown { await uploader.run() }
    }
}
