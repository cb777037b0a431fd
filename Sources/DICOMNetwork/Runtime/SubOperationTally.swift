/// The sub-operations of one C-MOVE or C-GET, tallied as they end, and the final response
/// they make (PS3.4 C.4.2.1.5, C.4.3.1.4). A pure value: the retrieval feeds each outcome in
/// and reads the counts for its pending responses and the final status.
public struct SubOperationTally: Sendable, Hashable {
    /// How one sub-operation ended.
    public enum Outcome: Sendable, Hashable {
        case completed
        /// The C-STORE succeeded with a warning status (B0xx).
        case warning
        /// The instance could not be sent; `reason` (when given) may become the Error Comment.
        case failed(sopInstanceUID: String, reason: String?)
    }

    public private(set) var counts: SubOperationCounts
    /// SOP Instance UIDs that failed, in order (empty UIDs — instances never identified — are counted, not listed).
    public private(set) var failedSOPInstanceUIDs: [String] = []
    /// The first failure's reason: the Error Comment of the final response.
    public private(set) var firstFailure: String?
    private let total: Int
    private var ended = 0

    public init(total: Int) {
        self.total = total
        self.counts = SubOperationCounts(remaining: total)
    }

    public mutating func record(_ outcome: Outcome) {
        ended += 1
        counts.remaining = max(0, total - ended)
        switch outcome {
        case .completed:
            counts.completed += 1
        case .warning:
            counts.warning += 1
        case .failed(let uid, let reason):
            counts.failed += 1
            if !uid.isEmpty { failedSOPInstanceUIDs.append(uid) }
            if firstFailure == nil, let reason { firstFailure = reason }
        }
    }

    /// Success when nothing failed nor warned; A702 when nothing was sent at all; B000 otherwise.
    public var finalStatus: DIMSEStatus {
        if counts.failed == 0 && counts.warning == 0 { return .success }
        if counts.completed == 0 && counts.warning == 0 { return .refusedOutOfResourcesSubOps }
        return .subOperationsCompleteWithFailures
    }

    /// The Failed SOP Instance UID List (0008,0058) of the final response: UI values in one
    /// element of at most 64 KiB (PS3.5 §7.1.1: 16-bit length in Explicit VR), so it is cut to fit.
    public var failedSOPInstanceUIDList: [String] {
        var listed: [String] = []
        var length = 0
        for uid in failedSOPInstanceUIDs where length + uid.utf8.count + 1 < Self.maximumListLength {
            listed.append(uid)
            length += uid.utf8.count + 1
        }
        return listed
    }

    static let maximumListLength = 65_000
}
