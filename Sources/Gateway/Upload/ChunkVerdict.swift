import DICOMweb
import Foundation
import Spool

/// What a STOW-RS answer, or a failed request, means for the instances of a chunk. Pure.
enum ChunkVerdict {
    /// A processing failure (0x0110) at the hub is retried this many times, then rejected.
    static let processingFailureAttempts = 5

    /// Per instance, from the per-instance results of a request that got an answer.
    static func outcomes(for chunk: [(instance: ChunkInstance, sentSHA256: String)],
                         results: [String: STOWInstanceResult], now: Date,
                         retryDelay: (_ attempts: Int) -> Duration) -> [(instanceID: Int64, outcome: DeliveryOutcome)] {
        chunk.map { instance, sentSHA256 in
            let retryAt = now.addingTimeInterval(Backoff.seconds(retryDelay(instance.attempts)))
            switch results[instance.sopInstanceUID] ?? .unreported {
            case .stored:
                return (instance.instanceID, .stored(sentSHA256: sentSHA256))
            case .unreported:
                return (instance.instanceID, .retry(at: retryAt, reason: "the hub's answer did not mention this instance"))
            case .failed(let reason):
                let text = "hub FailureReason \(hex(reason)) (\(meaning(reason)))"
                if (0xA700...0xA7FF).contains(reason) {
                    return (instance.instanceID, .retry(at: retryAt, reason: text))
                }
                if reason == 0x0110 && instance.attempts < processingFailureAttempts {
                    return (instance.instanceID, .retry(at: retryAt, reason: text))
                }
                return (instance.instanceID, .rejected(reason: text))
            }
        }
    }

    /// What to do when the whole request failed.
    enum Disposition: Equatable {
        /// The destination is unwell (unreachable, 5xx, credentials, TLS, wrong URL): hold it,
        /// keep every instance for later.
        case holdDestination
        /// The request was refused for its content: send the instances one by one to find out
        /// which one (several instances), or reject it (one instance).
        case isolate
    }

    static func disposition(of error: DICOMwebError) -> Disposition {
        switch error.kind {
        case .retryable, .configuration:
            return .holdDestination
        case .permanent:
            if error.code == .localFile || error.code == .payloadTooLarge { return .isolate }
            // 404/405/415 say the URL or the server is wrong, not the instance.
            if let status = error.status, [400, 409, 422].contains(status) { return .isolate }
            return .holdDestination
        }
    }

    static func hex(_ value: UInt16) -> String {
        "0x" + String(value, radix: 16, uppercase: true).leftPadded(to: 4)
    }

    /// PS3.4 Annex GG / PS3.18 Table 10.5.3-2 failure reasons.
    static func meaning(_ reason: UInt16) -> String {
        switch reason {
        case 0x0110: "processing failure"
        case 0x0122: "SOP class not supported"
        case 0x0124: "not authorized"
        case 0xA700...0xA7FF: "out of resources"
        case 0xA900...0xA9FF: "data set does not match SOP class"
        case 0xC000...0xCFFF: "cannot understand"
        default: "refused"
        }
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
