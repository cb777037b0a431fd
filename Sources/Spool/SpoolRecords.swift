import Foundation

/// The attributes of an instance that the spool indexes, already decoded to UTF-8.
public struct IndexedAttributes: Sendable, Equatable {
    public var studyInstanceUID: String
    public var seriesInstanceUID: String
    public var patientID: String
    public var issuerOfPatientID: String
    public var patientName: String?
    public var patientBirthDate: String?
    public var patientSex: String?
    public var studyDate: String?
    public var studyTime: String?
    public var accessionNumber: String?
    public var studyDescription: String?
    public var modality: String?
    public var seriesNumber: String?
    public var instanceNumber: String?
    /// The patient's INS values (Other Patient IDs issued by an INS OID).
    public var ins: [String]

    public init(
        studyInstanceUID: String, seriesInstanceUID: String, patientID: String,
        issuerOfPatientID: String, patientName: String? = nil, patientBirthDate: String? = nil,
        patientSex: String? = nil, studyDate: String? = nil, studyTime: String? = nil,
        accessionNumber: String? = nil, studyDescription: String? = nil, modality: String? = nil,
        seriesNumber: String? = nil, instanceNumber: String? = nil, ins: [String] = []
    ) {
        self.ins = ins
        self.studyInstanceUID = studyInstanceUID
        self.seriesInstanceUID = seriesInstanceUID
        self.patientID = patientID
        self.issuerOfPatientID = issuerOfPatientID
        self.patientName = patientName
        self.patientBirthDate = patientBirthDate
        self.patientSex = patientSex
        self.studyDate = studyDate
        self.studyTime = studyTime
        self.accessionNumber = accessionNumber
        self.studyDescription = studyDescription
        self.modality = modality
        self.seriesNumber = seriesNumber
        self.instanceNumber = instanceNumber
    }
}

/// Where an instance's Part-10 bytes are: a range of a journal segment, or a whole file of
/// the store that came before the journal (`store/…`, offset 0).
public struct StoredLocation: Sendable, Hashable {
    /// Relative to the spool root.
    public var relativePath: String
    public var offset: Int
    public var length: Int
    /// Where the data set starts, counted from `offset`: "same instance" compares from there.
    public var dataSetOffset: Int

    public init(relativePath: String, offset: Int, length: Int, dataSetOffset: Int) {
        self.relativePath = relativePath
        self.offset = offset
        self.length = length
        self.dataSetOffset = dataSetOffset
    }

    public init(_ location: JournalLocation, dataSetOffset: Int) {
        self.init(relativePath: location.relativePath, offset: location.payloadOffset,
                  length: location.payloadLength, dataSetOffset: dataSetOffset)
    }
}

/// A received instance whose bytes are durable in the journal, ready to be indexed.
public struct NewInstance: Sendable {
    public var sopInstanceUID: String
    public var sopClassUID: String
    public var transferSyntaxUID: String
    public var attributes: IndexedAttributes
    public var location: StoredLocation
    /// SHA-256 of the stored Part-10 bytes (hex).
    public var sha256: String
    public var callingAETitle: String
    public var receivedAt: Date

    public init(
        sopInstanceUID: String, sopClassUID: String, transferSyntaxUID: String,
        attributes: IndexedAttributes, location: StoredLocation, sha256: String,
        callingAETitle: String, receivedAt: Date
    ) {
        self.sopInstanceUID = sopInstanceUID
        self.sopClassUID = sopClassUID
        self.transferSyntaxUID = transferSyntaxUID
        self.attributes = attributes
        self.location = location
        self.sha256 = sha256
        self.callingAETitle = callingAETitle
        self.receivedAt = receivedAt
    }
}

/// What indexing a received instance did.
public enum RecordOutcome: Sendable, Equatable {
    /// A new SOP instance.
    case stored
    /// The same SOP instance with identical data set bytes was already current.
    case duplicate(existing: StoredLocation)
    /// The SOP instance existed with other bytes; it is kept as a superseded revision.
    case revised(previous: StoredLocation, revision: Int)
}

/// One row of `passerellectl spool list`.
public struct InstanceListing: Sendable, Equatable {
    /// The row, which keys `SpoolDatabase.deliveries()`.
    public var instanceID: Int64
    public var studyInstanceUID: String
    public var seriesInstanceUID: String
    public var sopInstanceUID: String
    public var sopClassUID: String
    public var transferSyntaxUID: String
    public var patientID: String
    public var issuerOfPatientID: String
    public var patientName: String?
    public var location: StoredLocation
    public var size: Int { location.length }
    public var sha256: String
    public var isSuperseded: Bool
    public var revision: Int
    public var callingAETitle: String
    public var receivedAt: Date
}

/// One study of the spool, as `passerellectl queue` shows it (identifiers only, no names).
public struct StudySummary: Sendable, Equatable, Codable {
    public var studyInstanceUID: String
    public var patientID: String
    public var issuerOfPatientID: String
    public var studyDate: String?
    public var accessionNumber: String?
    public var instances: Int
    public var bytes: Int
    public var firstReceivedAt: Date
    public var lastReceivedAt: Date
    public var modalities: [String]
    /// Overtakes the upload queue.
    public var urgent: Bool
}

public struct SpoolError: Error, CustomStringConvertible, Sendable {
    public var description: String
    /// The POSIX error behind it, if any.
    public var errno: Int32?

    public init(description: String, errno: Int32? = nil) {
        self.description = description
        self.errno = errno
    }

    /// The disk (or the user's quota) is full.
    public var isOutOfSpace: Bool { errno == ENOSPC || errno == EDQUOT }

    public static func noDatabase(path: String) -> SpoolError {
        SpoolError(description: "no spool database at \(path)")
    }
    public static func io(_ operation: String, path: String, errno code: Int32) -> SpoolError {
        SpoolError(description: "\(operation) \(path): \(String(cString: strerror(code)))", errno: code)
    }
}
