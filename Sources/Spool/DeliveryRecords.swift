import Foundation

/// Where an instance stands with one destination (docs/upload.md).
public enum DeliveryState: String, Sendable, Codable, CaseIterable, Comparable {
    case queued
    case inFlight = "in_flight"
    case stored
    case retry
    case rejected

    public static func < (lhs: Self, rhs: Self) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// Where a study stands with one destination, derived from its instances and its timing.
public enum StudyDeliveryState: String, Sendable, Codable, CaseIterable {
    /// An instance arrived less than `stable_after` ago.
    case receiving
    /// Complete; some instances are not stored yet.
    case uploading
    /// Complete and all stored; the hub's list is still to be checked.
    case verifying
    /// The hub has every instance.
    case verified
    /// Complete; some instance was refused for good.
    case rejected
    /// Not sent to this shared destination: an opposition, or the patient not yet informed.
    case withheld
}

/// An unrouted instance, with what routing rules look at.
public struct RoutingCandidate: Sendable, Equatable {
    public var instanceID: Int64
    public var callingAETitle: String
    public var modality: String?
    public var sopClassUID: String
}

/// One instance of a chunk about to be sent.
public struct ChunkInstance: Sendable, Equatable {
    public var instanceID: Int64
    public var studyInstanceUID: String
    public var sopInstanceUID: String
    public var transferSyntaxUID: String
    public var location: StoredLocation
    public var size: Int { location.length }
    public var sha256: String
    /// The received data set has no (or an empty) IssuerOfPatientID.
    public var lacksIssuerOfPatientID: Bool
    /// Sends so far, this one included.
    public var attempts: Int

    public init(instanceID: Int64, studyInstanceUID: String, sopInstanceUID: String, transferSyntaxUID: String,
                location: StoredLocation, sha256: String, lacksIssuerOfPatientID: Bool, attempts: Int) {
        self.instanceID = instanceID
        self.studyInstanceUID = studyInstanceUID
        self.sopInstanceUID = sopInstanceUID
        self.transferSyntaxUID = transferSyntaxUID
        self.location = location
        self.sha256 = sha256
        self.lacksIssuerOfPatientID = lacksIssuerOfPatientID
        self.attempts = attempts
    }
}

/// What one send did to an instance.
public enum DeliveryOutcome: Sendable, Equatable {
    /// Listed in ReferencedSOPSequence; `sentSHA256` is the hash of the bytes sent.
    case stored(sentSHA256: String)
    /// Send again at `at`.
    case retry(at: Date, reason: String)
    /// Refused for good.
    case rejected(reason: String)
    /// Not sent after all (chunk split, pause, shutdown): back to the queue, attempt not counted.
    case requeue
}

/// A complete study whose instances are all stored at a destination, to be checked there.
public struct VerificationCandidate: Sendable, Equatable {
    public var studyID: Int64
    public var studyInstanceUID: String
    /// Changes whenever an instance is routed to the study: a verification that read an older
    /// generation does not count.
    public var generation: Int
    /// SOP Instance UID → instance row of the current, stored instances.
    public var instances: [String: Int64]
}

/// One instance's delivery, as `spool list` shows it.
public struct DeliveryInfo: Sendable, Equatable, Codable {
    public var state: DeliveryState
    public var attempts: Int
    public var nextAt: Date?
    public var reason: String?
    public var sentSha256: String?
}

/// A study's delivery at one destination, as `queue` and `status` show it.
public struct StudyDelivery: Sendable, Equatable, Codable {
    public var state: StudyDeliveryState
    public var instances: [String: Int]
    public var verifiedAt: Date?
    /// Why the study is withheld from this (shared) destination.
    public var withheld: SharingBlock?
}

/// Instances and bytes in one delivery state.
public struct DeliveryTotals: Sendable, Equatable, Codable {
    public var instances: Int
    public var bytes: Int
    public init(instances: Int = 0, bytes: Int = 0) {
        self.instances = instances
        self.bytes = bytes
    }
}

/// A study that may be purged: verified at every destination it was routed to.
public struct PurgeCandidate: Sendable, Equatable {
    public var studyID: Int64
    public var studyInstanceUID: String
    public var verifiedAt: Date
    public var bytes: Int
}
