import Foundation
import Spool

extension StatusResponder {
    func respond(to request: BackfillRequest) throws -> AnyEncodable {
        guard let backfill else {
            throw StatusError(code: "unavailable", message: "the migration is not available in this process")
        }
        switch request {
        case .start(let s, let windows):
            let job = try backfill.start(.init(source: s.source, since: s.since, until: s.until, modalities: s.modalities,
                                               windows: windows))
            return AnyEncodable(["job": job])
        case .status:
            return AnyEncodable(["jobs": try backfill.report()])
        case .pause(let job), .resume(let job):
            var paused = false
            if case .pause = request { paused = true }
            let changed = try backfill.setPaused(paused, job: job)
            if changed.isEmpty, let job {
                throw StatusError(code: "unknown_job", message: "no \(paused ? "running" : "paused") backfill job \(job)")
            }
            return AnyEncodable(["jobs": changed])
        case .cancel(let job):
            guard try backfill.cancel(job: job) else {
                throw StatusError(code: "unknown_job", message: "no unfinished backfill job \(job)")
            }
            return AnyEncodable(["job": job])
        case .survey(let kind, let s):
            let id = try backfill.beginSurvey(.init(kind: kind == "plan" ? .plan : .reconcile, source: s.source,
                                                    since: s.since, until: s.until, modalities: s.modalities))
            return AnyEncodable(["survey": id])
        case .surveyResult(let id):
            guard let report = backfill.survey(id) else {
                throw StatusError(code: "unknown_survey", message: "no survey \(id) (passerelled restarted?)")
            }
            return AnyEncodable(report)
        case .fix(let id):
            return AnyEncodable(["job": try backfill.fix(survey: id)])
        }
    }
}
