import DICOMCore
import NIOCore
import NIOPosix

extension DICOMAssociation {
    /// Data set bytes read from the file per `pread`: about 1 MiB (a CT image in one read and
    /// one hop to the event loop), a whole number of fragments.
    static func blockSize(fragmentLength: Int) -> Int {
        fragmentLength * max(1, 1024 * 1024 / max(1, fragmentLength))
    }

    /// C-STORE (PS3.7 §9.1.1) of a Part-10 file, as is: on an accepted context for its SOP class
    /// whose transfer syntax is the file's (no transcoding). The data set is streamed from the
    /// file, one block at a time, as fast as the connection takes it.
    ///
    /// Returns the peer's status, failures included; throws when the operation could not be
    /// carried out (unreadable file, no fitting context, abort, timeout, connection lost).
    /// A C-MOVE sub-operation names its originator (PS3.7 §9.1.1.1).
    public func store(fileAt path: String, moveOriginatorAETitle: String? = nil,
                      moveOriginatorMessageID: UInt16? = nil) async throws(DICOMClientError) -> StoreResult {
        try await exclusively { () async throws(DICOMClientError) -> StoreResult in
            try await storeNow(path, moveOriginator: moveOriginatorAETitle.map { ($0, moveOriginatorMessageID ?? 0) })
        }
    }

    private func storeNow(_ path: String, moveOriginator: (String, UInt16)?) async throws(DICOMClientError) -> StoreResult {
            var file = try await onThreadPool { () throws(DICOMClientError) in try Part10DataSetFile.open(path) }
            guard let context = acceptedContext(abstractSyntax: file.sopClassUID, transferSyntax: file.transferSyntaxUID)
            else {
                throw DICOMClientError(
                    code: .noAcceptedPresentationContext,
                    message: "no accepted presentation context for \(Self.describe(sopClass: file.sopClassUID)) "
                        + "in \(Self.describe(transferSyntax: file.transferSyntaxUID))")
            }
            let request = CStoreRQ(messageID: takeMessageID(), affectedSOPClassUID: file.sopClassUID,
                                   affectedSOPInstanceUID: file.sopInstanceUID,
                                   moveOriginatorAETitle: moveOriginator?.0, moveOriginatorMessageID: moveOriginator?.1)
            let answer = perform(.cStoreRQ(request), contextID: context.id)

            let fragmentLength = maximumDataFragmentLength
            let blockSize = Self.blockSize(fragmentLength: fragmentLength)
            var remaining = file.dataSetLength
            do {
                if remaining == 0 { try await sendDataSetFragment(ByteBuffer(), isLast: true) }
                while remaining > 0 {
                    let count = min(blockSize, remaining)
                    let source = file
                    let (bytes, advanced) = try await onThreadPool { () throws(DICOMClientError) in
                        var source = source
                        let bytes = try source.read(count)
                        return (bytes, source)
                    }
                    file = advanced
                    remaining -= count
                    try await sendDataSetBlock(bytes, fragmentLength: fragmentLength, isLast: remaining == 0)
                }
            } catch where error.code == .invalidFile {
                // The data set cannot be completed: the only way out is an abort (PS3.7 §9.1.1).
                logger.warning("file read failed mid-store, aborting the association", metadata: ["error": "\(error)"])
                channel.writeAndFlush(RequestorHandler.Request.abort, promise: nil)
                throw error
            } catch {
                // The operation failed or completed early: its answer says how.
            }
            let response = try await answer.get()
            guard case .cStoreRSP(let rsp) = response else {
                throw DICOMClientError.protocolError("C-STORE answered by another message")
            }
            return StoreResult(
                status: rsp.status, errorComment: rsp.errorComment, sopClassUID: file.sopClassUID,
                sopInstanceUID: file.sopInstanceUID, transferSyntaxUID: file.transferSyntaxUID,
                contextID: context.id, dataSetLength: file.dataSetLength)
    }

    /// Blocking file work, off the event loops and the cooperative pool.
    private func onThreadPool<T: Sendable>(
        _ body: @escaping @Sendable () throws(DICOMClientError) -> T
    ) async throws(DICOMClientError) -> T {
        do {
            return try await threadPool.runIfActive { try body() }
        } catch let error as DICOMClientError {
            throw error
        } catch {
            throw DICOMClientError(code: .invalidFile, message: "file access failed: \(error)")
        }
    }

    static func describe(sopClass uid: String) -> String {
        guard let entry = UIDRegistry.entry(for: uid) else { return uid }
        return "\(entry.name) (\(uid))"
    }

    static func describe(transferSyntax uid: String) -> String {
        TransferSyntax(uid: uid).map(\.description) ?? uid
    }
}
