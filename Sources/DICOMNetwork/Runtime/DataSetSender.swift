import NIOCore
import NIOPosix

/// Streams the data set of a Part-10 file to a peer, one block at a time: the next block is
/// read (off the event loops) once the previous one is taken. Both C-STOREs that send files
/// use it: the client's (``DICOMAssociation/store(fileAt:moveOriginatorAETitle:moveOriginatorMessageID:)``)
/// and C-GET sub-operations on the acceptor's association (``QueryRetrieveResponder/store(fileAt:)``).
enum DataSetSender {
    /// Data set bytes read from the file per `pread`: about 1 MiB (a CT image in one read and
    /// one hop to the event loop), a whole number of fragments.
    static func blockSize(fragmentLength: Int) -> Int {
        fragmentLength * max(1, 1024 * 1024 / max(1, fragmentLength))
    }

    /// Opens the file and reads its meta information, on `threadPool`.
    static func open(_ path: String, threadPool: NIOThreadPool,
                     eventLoop: any EventLoop) async throws(DICOMNetworkError) -> Part10DataSetFile {
        try await onThreadPool(threadPool, eventLoop) { () throws(DICOMNetworkError) in try Part10DataSetFile.open(path) }
    }

    /// Hands the whole data set to `send`, block by block (`isLast` on the final one; an empty
    /// data set is one empty last block). A read failure throws ``DICOMNetworkError/Code/invalidFile``:
    /// the data set cannot be completed, and the caller must abort the association (PS3.7 §9.1.1).
    /// Errors thrown by `send` end the stream as they are.
    static func send(
        _ file: Part10DataSetFile, fragmentLength: Int, threadPool: NIOThreadPool, eventLoop: any EventLoop,
        isolation: isolated (any Actor)? = #isolation,
        to send: (ByteBuffer, _ isLast: Bool) async throws(DICOMNetworkError) -> Void
    ) async throws(DICOMNetworkError) {
        let blockSize = blockSize(fragmentLength: fragmentLength)
        var file = file
        var remaining = file.dataSetLength
        if remaining == 0 {
            try await send(ByteBuffer(), true)
            return
        }
        while remaining > 0 {
            let count = min(blockSize, remaining)
            let source = file
            let (bytes, advanced) = try await onThreadPool(threadPool, eventLoop) { () throws(DICOMNetworkError) in
                var source = source
                let bytes = try source.read(count)
                return (bytes, source)
            }
            file = advanced
            remaining -= count
            try await send(bytes, remaining == 0)
        }
    }

    /// Blocking file work, off the event loops and the cooperative pool. Not cancellable on
    /// purpose (the future, not the async `runIfActive`): a data set once started is sent
    /// whole, so a C-CANCEL ends the operation after the current instance rather than aborting
    /// the association mid-data-set; only a real read failure does that.
    private static func onThreadPool<T: Sendable>(
        _ threadPool: NIOThreadPool, _ eventLoop: any EventLoop,
        _ body: @escaping @Sendable () throws(DICOMNetworkError) -> T
    ) async throws(DICOMNetworkError) -> T {
        do {
            return try await threadPool.runIfActive(eventLoop: eventLoop) { try body() }.get()
        } catch let error as DICOMNetworkError {
            throw error
        } catch {
            throw DICOMNetworkError(code: .invalidFile, message: "file access failed: \(error)")
        }
    }
}
