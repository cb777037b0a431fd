import Audit
import Foundation
import Spool

/// The audit rows of the upload path, built apart so the uploader only says when.
extension AuditTrail {
    /// One `upload` row per study of a chunk that got an answer: how many instances the
    /// destination stored and refused. Chunks only put back in the queue leave no row.
    static func uploadEvents(_ chunk: [ChunkInstance], outcomes: [(instanceID: Int64, outcome: DeliveryOutcome)],
                             destination: String) -> [AuditEvent] {
        let studyOf = Dictionary(chunk.map { ($0.instanceID, $0.studyInstanceUID) }) { first, _ in first }
        var tally: [String: (stored: Int, rejected: Int)] = [:]
        for (id, outcome) in outcomes {
            guard let study = studyOf[id] else { continue }
            switch outcome {
            case .stored: tally[study, default: (0, 0)].stored += 1
            case .rejected: tally[study, default: (0, 0)].rejected += 1
            case .retry, .requeue: continue
            }
        }
        return tally.sorted { $0.key < $1.key }.map { study, counts in
            AuditEvent(action: .upload,
                       outcome: counts.rejected == 0 ? .success : counts.stored > 0 ? .minorFailure : .seriousFailure,
                       outcomeDescription: counts.rejected == 0 ? nil : "\(counts.rejected) instances refused",
                       actor: .gateway, destination: destination, studies: [study],
                       details: ["count": String(counts.stored), "rejected": String(counts.rejected)])
        }
    }

    /// A study found complete at the destination (QIDO-RS).
    static func verificationEvent(study: String, instances: Int, destination: String) -> AuditEvent {
        AuditEvent(action: .verification, actor: .gateway, destination: destination, studies: [study],
                   details: ["count": String(instances)])
    }
}
