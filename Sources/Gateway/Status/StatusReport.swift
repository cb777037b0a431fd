import Foundation
import Spool

/// The answer to `status`: what an IT team checks first.
public struct StatusReport: Codable, Sendable, Equatable {
    public struct Listener: Codable, Sendable, Equatable {
        public var aeTitle: String
        public var bind: String
        /// The clear port; nil when `[dicom] port = 0`.
        public var port: Int?
        /// The TLS port (`[dicom.tls]`).
        public var tlsPort: Int?
    }

    public struct Associations: Codable, Sendable, Equatable {
        public var active: Int
        public var maximum: Int
    }

    public struct Totals: Codable, Sendable, Equatable {
        public var instances: Int
        public var bytes: Int
    }

    public struct SpoolStatus: Codable, Sendable, Equatable {
        public var path: String
        public var studies: Int
        /// Per revision state: "current" (the instances the spool holds), "superseded" (older revisions kept).
        public var states: [String: Totals]
        public var freeBytes: UInt64
        public var minimumFreeBytes: UInt64
        /// Receptions are refused (A700) while true.
        public var belowMinimumFree: Bool
        /// The ingest journal's files (docs/journal.md).
        public var journal: Journal?

        public struct Journal: Codable, Sendable, Equatable {
            /// Segment files, ready ones included, and the bytes they take.
            public var segments: Int
            public var bytes: Int
            /// Allocated in advance, waiting for receptions.
            public var ready: Int
        }
    }

    public struct Destination: Codable, Sendable, Equatable {
        public struct LastError: Codable, Sendable, Equatable {
            public var at: Date
            public var message: String
        }

        public var name: String
        public var url: String
        /// "ok", "failing", "paused" or "idle" (nothing sent yet, nothing waiting).
        public var health: String
        public var paused: Bool
        /// Per delivery state (queued, in_flight, stored, retry, rejected): instances and bytes.
        public var instances: [String: DeliveryTotals]
        /// Per study state (receiving, uploading, verifying, verified, rejected): studies.
        public var studies: [String: Int]
        public var lastSuccessAt: Date?
        public var lastError: LastError?
        /// When the next attempt is due, while something waits.
        public var nextRetryAt: Date?
        public var clientCertificateExpiresAt: Date?
        public var caExpiresAt: Date?

        /// Absent values are written as null, so that every key is always there.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(url, forKey: .url)
            try container.encode(health, forKey: .health)
            try container.encode(paused, forKey: .paused)
            try container.encode(instances, forKey: .instances)
            try container.encode(studies, forKey: .studies)
            try container.encode(lastSuccessAt, forKey: .lastSuccessAt)
            try container.encode(lastError, forKey: .lastError)
            try container.encode(nextRetryAt, forKey: .nextRetryAt)
            try container.encode(clientCertificateExpiresAt, forKey: .clientCertificateExpiresAt)
            try container.encode(caExpiresAt, forKey: .caExpiresAt)
        }
    }

    /// One `[[community]]` search folder: what it was asked since the start, and how it went.
    public struct Community: Codable, Sendable, Equatable {
        public var aeTitle: String
        public var destination: String
        public var url: String
        /// "ok", "failing" (the last query or retrieval could not reach the hub) or "idle".
        public var health: String
        /// Since the start, per operation (FIND, MOVE, GET).
        public var requests: [String: Int]
        public var instancesSent: Int
        public var lastSuccessAt: Date?
        public var lastError: Destination.LastError?
        /// Foreign instances kept in cache/ for this search folder's hub.
        public var cachedInstances: Int
        public var cachedBytes: Int

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(aeTitle, forKey: .aeTitle)
            try container.encode(destination, forKey: .destination)
            try container.encode(url, forKey: .url)
            try container.encode(health, forKey: .health)
            try container.encode(requests, forKey: .requests)
            try container.encode(instancesSent, forKey: .instancesSent)
            try container.encode(lastSuccessAt, forKey: .lastSuccessAt)
            try container.encode(lastError, forKey: .lastError)
            try container.encode(cachedInstances, forKey: .cachedInstances)
            try container.encode(cachedBytes, forKey: .cachedBytes)
        }
    }

    /// One study of `queue`: the spool's summary and its delivery per destination.
    public struct QueuedStudy: Codable, Sendable, Equatable {
        public var study: StudySummary
        public var destinations: [String: StudyDelivery]

        public func encode(to encoder: any Encoder) throws {
            try study.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(destinations, forKey: .destinations)
        }

        public init(from decoder: any Decoder) throws {
            study = try StudySummary(from: decoder)
            destinations = try decoder.container(keyedBy: CodingKeys.self).decode([String: StudyDelivery].self, forKey: .destinations)
        }

        public init(study: StudySummary, destinations: [String: StudyDelivery]) {
            self.study = study
            self.destinations = destinations
        }

        enum CodingKeys: String, CodingKey { case destinations }
    }

    public var version: String
    public var startedAt: Date
    public var uptimeSeconds: Int
    public var listening: [Listener]
    public var associations: Associations
    public var spool: SpoolStatus
    /// Configured destinations; empty: studies wait in the spool.
    public var destinations: [Destination]
    /// `[[community]]` search folders.
    public var communities: [Community] = []
    /// Oppositions, withheld studies, withdrawals (docs/rights.md).
    public var rights: Rights?

    public struct Rights: Codable, Sendable, Equatable {
        public var consentDefault: String
        public var sharedDestinations: [String]
        public var activeOppositions: Int
        /// destination → reason ("opposition", "consent") → studies withheld there.
        public var withheld: [String: [String: Int]]
        /// destination → state ("pending", "needs_resend") → withdrawals.
        public var withdrawals: [String: [String: Int]]
        /// Shared destinations still to be searched for an opposition's studies.
        public var pendingSweeps: Int
        /// What needs a person: manual withdrawals to do, studies to send again, failing withdrawals.
        public var alarms: [Alarm]

        public struct Alarm: Codable, Sendable, Equatable {
            public var kind: String
            public var studyUID: String
            public var destination: String
            public var since: Date
            public var message: String
        }
    }

    /// The audit trail and its repository queue.
    public var audit: Audit?
    /// `[hl7]`: the MLLP listener and the messages it received.
    public var hl7: HL7?
    /// Migration jobs of the site's archive (docs/migration.md), oldest first.
    public var backfill: [BackfillJobReport]?

    public struct BackfillJobReport: Codable, Sendable, Equatable {
        public struct Failure: Codable, Sendable, Equatable {
            public var study: String
            public var reason: String
        }

        public var id: Int64
        public var source: String
        public var kind: String
        public var state: String
        public var since: String
        public var until: String
        public var modalities: [String]
        public var windows: [String]?
        public var daysTotal: Int
        public var daysDone: Int
        /// Per state: found, retrieving, retrieved, already_archived, failed.
        public var studies: [String: Int]
        public var instancesExpected: Int
        public var instancesRetrieved: Int
        /// Why retrievals wait now (schedule, hourly cap, free space, upload backlog).
        public var gate: String?
        public var failures: [Failure]
        /// At the rate of the last hour; nil until there is one.
        public var etaSeconds: Int?
        public var createdAt: Date
        public var finishedAt: Date?
    }

    public struct HL7: Codable, Sendable, Equatable {
        public var bind: String
        public var port: Int
        /// Per state (received, applied, waiting, failed, refused): messages in the spool.
        public var messages: [String: Int]
        /// Identity updates carried to the destinations: studies to correct (of which failing),
        /// verified, and destinations still to search.
        public var corrections: Corrections?

        public struct Corrections: Codable, Sendable, Equatable {
            public var pending: Int
            public var failing: Int
            public var verified: Int
            public var searches: Int
        }
    }

    /// `[audit]`: the chain head and the ATNA outbox.
    public struct Audit: Codable, Sendable, Equatable {
        public var enabled: Bool
        public var repository: String?
        /// Rows waiting for the repository.
        public var queueDepth: Int
        public var headSeq: Int64?
        public var head: String?
        public var lastSentAt: Date?
        /// Set while the repository is failing.
        public var lastError: Destination.LastError?
    }
}

/// The version shown by `status` and `--version`.
public enum PasserelleVersion {
    public static let current = "0.1.0"
}
