import DICOMNetwork
import Foundation

/// A PACS or an archive that cannot be reached: waited for, never blamed on a study.
extension BackfillService {
    /// How long a loop may sleep: until the next try at an unreachable peer, at most `limit` s.
    func untilNextTry(atMost limit: Double) -> Duration {
        let now = Date()
        let next = live.withLockedValue { $0.outages.values.map(\.retryAt).filter { $0 > now }.min() }
        let seconds = next.map { min(limit, $0.timeIntervalSince(now) + 0.01) } ?? limit
        return .milliseconds(Int64(seconds * 1000))
    }

    static func pacsKey(_ title: String) -> String { "pacs:" + title }

    /// Which peer an error says is unreachable as a whole: the PACS when the association
    /// failed (connection, rejection, abort, timeout), the archive when QIDO-RS failed.
    func outageKey(of error: any Error, source: String) -> String? {
        if error is DICOMNetworkError { return Self.pacsKey(source) }
        if case BackfillError.archive = error { return "archive" }
        return nil
    }

    /// Why a job's peers make it wait, if they do.
    func outage(of source: String) -> String? {
        let now = Date()
        return live.withLockedValue { state in
            for (key, name) in [(Self.pacsKey(source), "PACS \(source)"), ("archive", "the archive")] {
                guard let outage = state.outages[key], outage.retryAt > now else { continue }
                return "\(name) unreachable since \(Self.clock(outage.since)) (\(outage.error)); "
                    + "next try at \(Self.clock(outage.retryAt))"
            }
            return nil
        }
    }

    /// Records an outage: the next try waits 2 s, doubling up to 5 min.
    @discardableResult
    func failed(_ key: String, _ error: any Error) -> Outage {
        let now = Date()
        let (outage, first) = live.withLockedValue { state -> (Outage, Bool) in
            var outage = state.outages[key] ?? Outage(since: now, retryAt: now, delay: 1, error: "")
            let first = state.outages[key] == nil
            outage.delay = min(outage.delay * 2, 300)
            outage.retryAt = now.addingTimeInterval(outage.delay)
            outage.error = "\(error)"
            state.outages[key] = outage
            return (outage, first)
        }
        if first {
            logger.warning("backfill: waiting for an unreachable peer", metadata: ["peer": "\(key)", "error": "\(error)"])
        }
        return outage
    }

    func recovered(_ key: String) {
        let was = live.withLockedValue { $0.outages.removeValue(forKey: key) }
        if let was {
            logger.notice("backfill: peer reachable again", metadata: [
                "peer": "\(key)", "down_seconds": "\(Int(Date().timeIntervalSince(was.since)))",
            ])
        }
    }

    static func clock(_ date: Date) -> String {
        let parts = Calendar.current.dateComponents([.hour, .minute, .second], from: date)
        return String(format: "%02d:%02d:%02d", parts.hour ?? 0, parts.minute ?? 0, parts.second ?? 0)
    }
}
