import NIOConcurrencyHelpers
import NIOCore

extension DICOMAssociation {
    /// C-FIND (PS3.7 §9.1.2 / §9.3.2): sends `identifier` (already encoded in the transfer syntax of the
    /// accepted context, which the caller gets with `acceptedContext(abstractSyntax:)`), returns each pending
    /// response's identifier in order, and the final status.
    ///
    /// With `limit`, a C-CANCEL-RQ goes once that many identifiers arrived; the responses still
    /// in flight are drained (their identifiers dropped) until the final one, usually Cancel
    /// (0xFE00) — or Success when the peer had finished first.
    ///
    /// Throws when the operation could not be carried out (no such context, abort, timeout,
    /// connection lost, a response's identifier beyond 16 MiB).
    public func find(sopClassUID: String, identifier: ByteBuffer, contextID: UInt8, priority: DIMSEPriority = .medium,
                     limit: Int? = nil) async throws(DICOMNetworkError) -> FindResult {
        try await exclusively { () async throws(DICOMNetworkError) -> FindResult in
            let request = CFindRQ(messageID: takeMessageID(), affectedSOPClassUID: sopClassUID, priority: priority)
            let found = NIOLockedValueBox(FindResult(status: .pending, identifiers: []))
            let answer = perform(.cFindRQ(request), contextID: contextID) { [self] _, dataSet in
                // On the event loop, in order.
                guard let dataSet else { return }  // a pending C-FIND-RSP without identifier: nothing to keep
                let limitReached = found.withLockedValue { found -> Bool in
                    guard !found.cancelled else { return false }
                    found.identifiers.append(dataSet)
                    guard let limit, found.identifiers.count >= limit else { return false }
                    found.cancelled = true
                    return true
                }
                if limitReached { requestCancel() }
            }
            if let limit, limit <= 0 {
                found.withLockedValue { $0.cancelled = true }
                requestCancel()  // goes after the identifier (the state machine defers it)
            }
            await sendIdentifier(identifier)
            let response = try await answer.get()
            guard case .cFindRSP(let rsp) = response else {
                throw DICOMNetworkError.protocolError("C-FIND answered by another message")
            }
            var result = found.withLockedValue { $0 }
            result.status = rsp.status
            result.errorComment = rsp.errorComment
            return result
        }
    }

    /// C-MOVE (PS3.7 §9.1.4 / §9.3.4): asks the peer to C-STORE what `identifier` names to `destination`;
    /// `progress` sees each pending response's counts; returns the final response.
    ///
    /// `progress` runs on the association's event loop: keep it short. The final response's
    /// Failed SOP Instance UID List, if any, is not returned (its `hasIdentifier` says it came).
    public func move(sopClassUID: String, identifier: ByteBuffer, contextID: UInt8, destination: String,
                     priority: DIMSEPriority = .medium,
                     progress: @escaping @Sendable (RetrieveResponseFields) -> Void = { _ in }
    ) async throws(DICOMNetworkError) -> RetrieveResponseFields {
        guard DICOMClient.isValidAETitle(destination) else {
            throw DICOMNetworkError(code: .invalidAETitle, message:
                "invalid move destination \"\(destination)\": 1 to 16 printable ASCII characters, no backslash")
        }
        return try await exclusively { () async throws(DICOMNetworkError) -> RetrieveResponseFields in
            let request = CMoveRQ(messageID: takeMessageID(), affectedSOPClassUID: sopClassUID, priority: priority,
                                  moveDestination: destination)
            let answer = perform(.cMoveRQ(request), contextID: contextID) { message, _ in
                if case .cMoveRSP(let rsp) = message { progress(rsp.fields) }
            }
            await sendIdentifier(identifier)
            let response = try await answer.get()
            guard case .cMoveRSP(let rsp) = response else {
                throw DICOMNetworkError.protocolError("C-MOVE answered by another message")
            }
            return rsp.fields
        }
    }

    /// C-GET (PS3.7 §9.1.3 / §9.3.3): the peer sends what `identifier` names as C-STORE sub-operations on this
    /// association; each is handed to `store` (one receiver per instance; the C-STORE-RSP goes out when the
    /// receiver responds). Returns the final response.
    ///
    /// The association must have accepted a context for each SOP class to receive, with the SCP
    /// role (``DICOMClient/proposals(forGetting:queryRetrieve:)`` and `connect(…roleSelections:)`).
    /// `store` and every ``StoreReceiver`` call run on the association's thread pool, one at a
    /// time and in order per receiver; receivers follow each other (the peer waits for each
    /// C-STORE-RSP). A receiver whose data set is cut by the end of the association is
    /// `abandon()`ed. The final response is returned once every receiver has called `settled`.
    /// `progress` sees each pending response's counts, on the event loop: keep it short.
    ///
    /// A C-STORE-RQ on a context we did not accept aborts the association (protocol error); one on
    /// an accepted context of another SOP class is refused (0x0122) without reaching `store`.
    public func get(sopClassUID: String, identifier: ByteBuffer, contextID: UInt8, priority: DIMSEPriority = .medium,
                    store: @escaping @Sendable (CStoreRQ, String) -> any StoreReceiver,
                    progress: @escaping @Sendable (RetrieveResponseFields) -> Void = { _ in }
    ) async throws(DICOMNetworkError) -> RetrieveResponseFields {
        try await exclusively { () async throws(DICOMNetworkError) -> RetrieveResponseFields in
            let request = CGetRQ(messageID: takeMessageID(), affectedSOPClassUID: sopClassUID, priority: priority)
            let answer = perform(.cGetRQ(request), contextID: contextID, pending: { message, _ in
                if case .cGetRSP(let rsp) = message { progress(rsp.fields) }
            }, store: store)
            await sendIdentifier(identifier)
            let response = try await answer.get()
            guard case .cGetRSP(let rsp) = response else {
                throw DICOMNetworkError.protocolError("C-GET answered by another message")
            }
            return rsp.fields
        }
    }

    /// The request's identifier, in one block cut into fragments by the handler.
    private func sendIdentifier(_ identifier: ByteBuffer) async {
        do {
            try await sendDataSetBlock(identifier, fragmentLength: maximumDataFragmentLength, isLast: true)
        } catch {
            // The operation failed or ended early: its answer says how.
        }
    }
}
