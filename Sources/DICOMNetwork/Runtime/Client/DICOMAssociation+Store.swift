import DICOMCore
import NIOCore
import NIOPosix

extension DICOMAssociation {
    /// C-STORE (PS3.7 §9.1.1) of a Part-10 file, as is: on an accepted context for its SOP class
    /// whose transfer syntax is the file's (no transcoding). The data set is streamed from the
    /// file, one block at a time, as fast as the connection takes it.
    ///
    /// Returns the peer's status, failures included; throws when the operation could not be
    /// carried out (unreadable file, no fitting context, abort, timeout, connection lost).
    /// A C-MOVE sub-operation names its originator (PS3.7 §9.1.1.1).
    public func store(fileAt path: String, moveOriginatorAETitle: String? = nil,
                      moveOriginatorMessageID: UInt16? = nil) async throws(DICOMNetworkError) -> CStoreResult {
        try await exclusively { () async throws(DICOMNetworkError) -> CStoreResult in
            try await storeNow(path, moveOriginator: moveOriginatorAETitle.map { ($0, moveOriginatorMessageID ?? 0) })
        }
    }

    private func storeNow(_ path: String, moveOriginator: (String, UInt16)?) async throws(DICOMNetworkError) -> CStoreResult {
        let file = try await DataSetSender.open(path, threadPool: threadPool, eventLoop: channel.eventLoop)
        guard let context = acceptedContext(abstractSyntax: file.sopClassUID, transferSyntax: file.transferSyntaxUID)
        else {
            throw file.noFittingContext("no accepted presentation context")
        }
        let request = CStoreRQ(messageID: takeMessageID(), affectedSOPClassUID: file.sopClassUID,
                               affectedSOPInstanceUID: file.sopInstanceUID,
                               moveOriginatorAETitle: moveOriginator?.0, moveOriginatorMessageID: moveOriginator?.1)
        let answer = perform(.cStoreRQ(request), contextID: context.id)
        let fragmentLength = maximumDataFragmentLength
        do {
            try await DataSetSender.send(file, fragmentLength: fragmentLength, threadPool: threadPool,
                                         eventLoop: channel.eventLoop) {
                (bytes, isLast) async throws(DICOMNetworkError) in
                try await sendDataSetBlock(bytes, fragmentLength: fragmentLength, isLast: isLast)
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
            throw DICOMNetworkError.protocolError("C-STORE answered by another message")
        }
        return CStoreResult(rsp, file: file, contextID: context.id)
    }
}
