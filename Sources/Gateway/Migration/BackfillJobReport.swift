import Foundation
import Spool

extension StatusReport.BackfillJobReport {
    init(_ progress: BackfillProgress, gate: String?, settings: BackfillSettings) {
        let job = progress.job
        var studies: [String: Int] = [:]
        for state in BackfillStudyState.allCases { studies[state.rawValue] = progress.studies[state] ?? 0 }
        let remaining = (progress.studies[.found] ?? 0) + (progress.studies[.retrieving] ?? 0)
        var eta: Int?
        if job.state == .running || job.state == .paused {
            // Days not walked yet are assumed as busy as those walked.
            let walked = max(progress.daysDone, 1)
            let found = progress.studies.values.reduce(0, +)
            let unwalked = progress.daysTotal > progress.daysDone
                ? Double(found) / Double(walked) * Double(progress.daysTotal - progress.daysDone) : 0
            let perHour = settings.maxStudiesPerHour > 0
                ? min(Double(progress.finishedLastHour), Double(settings.maxStudiesPerHour)) : Double(progress.finishedLastHour)
            if perHour > 0 { eta = Int((Double(remaining) + unwalked) / perHour * 3600) }
            if remaining == 0 && progress.daysDone == progress.daysTotal { eta = 0 }
        }
        self.init(id: job.id, source: job.source, kind: job.kind.rawValue, state: job.state.rawValue, since: job.since,
                  until: job.until, modalities: job.modalities, windows: job.windows,
                  daysTotal: progress.daysTotal, daysDone: progress.daysDone, studies: studies,
                  instancesExpected: progress.instancesExpected, instancesRetrieved: progress.instancesRetrieved,
                  gate: gate, failures: progress.failures.map { .init(study: $0.study, reason: $0.reason) },
                  etaSeconds: eta, createdAt: job.createdAt, finishedAt: job.finishedAt)
    }
}
