import Foundation

/// A migration of the site's archive (docs/migration.md): a PACS walked by C-FIND, its studies
/// retrieved into the spool. Its plan and progress live in the spool so that a restart goes on
/// exactly where it stopped.
public struct BackfillJob: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable {
        /// Walks the PACS day by day between `since` and `until`.
        case backfill
        /// The studies a reconciliation found missing, listed at creation (`reconcile --fix`).
        case fix
    }

    public var id: Int64
    public var source: String
    /// YYYYMMDD, inclusive.
    public var since: String
    public var until: String
    public var modalities: [String]
    /// Time-of-day windows for this job only ("20:00-07:00"); nil: `[backfill] schedule`.
    public var windows: [String]?
    public var kind: Kind
    public var state: BackfillJobState
    public var createdAt: Date
    public var finishedAt: Date?

    public init(id: Int64, source: String, since: String, until: String, modalities: [String], windows: [String]?,
                kind: Kind, state: BackfillJobState, createdAt: Date, finishedAt: Date?) {
        self.id = id
        self.source = source
        self.since = since
        self.until = until
        self.modalities = modalities
        self.windows = windows
        self.kind = kind
        self.state = state
        self.createdAt = createdAt
        self.finishedAt = finishedAt
    }
}

public enum BackfillJobState: String, Sendable, Codable {
    case running, paused, done, cancelled
}

/// One C-FIND of the walk: a day, narrowed to a StudyTime range once a broader query came
/// back capped.
public struct BackfillSlice: Sendable, Equatable {
    public var id: Int64
    public var jobID: Int64
    /// YYYYMMDD.
    public var studyDate: String
    /// A StudyTime range ("08-085959.999999"); "" = the whole day.
    public var timeRange: String
    public var attempts: Int

    public init(id: Int64, jobID: Int64, studyDate: String, timeRange: String, attempts: Int) {
        self.id = id
        self.jobID = jobID
        self.studyDate = studyDate
        self.timeRange = timeRange
        self.attempts = attempts
    }
}

/// A study the PACS answered, as its C-FIND said.
public struct FoundStudy: Sendable, Equatable {
    public var studyInstanceUID: String
    public var studyDate: String
    public var patientID: String
    public var modalities: [String]
    /// NumberOfStudyRelatedInstances, when the PACS gave it.
    public var instances: Int?

    public init(studyInstanceUID: String, studyDate: String, patientID: String, modalities: [String], instances: Int?) {
        self.studyInstanceUID = studyInstanceUID
        self.studyDate = studyDate
        self.patientID = patientID
        self.modalities = modalities
        self.instances = instances
    }
}

public enum BackfillStudyState: String, Sendable, Codable, CaseIterable {
    /// Found by the walk, not retrieved yet.
    case found
    case retrieving
    /// Every instance the PACS holds is in the spool or at the archive.
    case retrieved
    /// The archive held every instance already: nothing moved.
    case alreadyArchived = "already_archived"
    case failed
}

/// A study to retrieve (claimed for retrieval by ``SpoolDatabase/claimBackfillStudies(limit:now:)``).
public struct BackfillStudy: Sendable, Equatable {
    public var jobID: Int64
    public var source: String
    public var study: FoundStudy
    public var attempts: Int
    /// When the job first began retrieving it (across retries and restarts).
    public var firstStartedAt: Date
}

/// Progress of one job, for status, metrics and the CLI.
public struct BackfillProgress: Sendable, Equatable {
    public var job: BackfillJob
    public var daysTotal: Int
    public var daysDone: Int
    public var slicesPending: Int
    public var studies: [BackfillStudyState: Int]
    public var instancesExpected: Int
    public var instancesRetrieved: Int
    /// Studies that reached a final state in the last hour (the rate the ETA uses).
    public var finishedLastHour: Int
    public var failures: [(study: String, reason: String)]

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.job == rhs.job && lhs.daysTotal == rhs.daysTotal && lhs.daysDone == rhs.daysDone
            && lhs.studies == rhs.studies && lhs.instancesRetrieved == rhs.instancesRetrieved
    }
}
