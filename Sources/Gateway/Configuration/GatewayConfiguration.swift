import Foundation
import Spool

/// Passerelle's configuration: `/etc/passerelle/passerelle.toml` (DESIGN.md, "Configuration
/// reference"). Every field has the embedded default used when no file is given.
public struct GatewayConfiguration: Sendable, Equatable {
    public struct Site: Sendable, Equatable {
        public var id: Int?
        public var emitter: String?
        public var name: String?
        public var issuerOfPatientID: String?
        public var issuerOID: String?
        /// Roots the UIDs Passerelle creates (reports); nil: `2.25.` UUID-derived UIDs.
        public var uidRoot: String?
    }

    public struct DICOM: Sendable, Equatable {
        /// Called AE title for storage.
        public var aeTitle = "PASSERELLE"
        public var port = 11112
        public var bind = "0.0.0.0"
        /// Empty means any calling AE title (warned at start).
        public var allowedCallingAETitles: [String] = []
        public var maxAssociations = 32
        /// The maximum P-DATA-TF length we advertise and accept.
        public var maxPDULength: UInt32 = 262_144
        public var idleTimeout: Duration = .seconds(60)
        /// A calling AE title with an `[[ae]]` entry is accepted only from its `hosts`.
        public var checkCallingHost = false
        /// `port = 0` in the file: no clear listener, TLS only (`port` itself stays 0, which
        /// in code means "any free port", as the tests bind).
        public var clearListener = true
        /// `[dicom.tls]`: the TLS listener beside the clear one; nil without the table.
        public var tls: DICOMTLSSettings?
    }

    public struct SpoolSettings: Sendable, Equatable {
        public var path = "./passerelle-data"
        public var minFree: DiskWatermark = .percent(5)
        public var retention: Duration = .seconds(7 * 86_400)
        /// Size of the ingest journal's segment files (docs/journal.md).
        public var segmentSize = Journal.defaultSegmentSize
        /// Foreign studies retrieved from a community are kept this long in `cache/`.
        public var cacheRetention: Duration = .seconds(86_400)
    }

    public struct Status: Sendable, Equatable {
        /// Unset: `status.sock` inside the spool directory (the embedded default).
        public var socket: String?
    }

    public var site = Site()
    public var dicom = DICOM()
    public var spool = SpoolSettings()
    public var status = Status()
    public var upload = UploadSettings()
    /// `[destinations.*]`, by name; empty: studies wait in the spool.
    public var destinations: [DestinationSettings] = []
    /// `[[community]]`: search folders by called AE title.
    public var communities: [CommunitySettings] = []
    /// `[[ae]]`: C-MOVE destinations.
    public var knownAEs: [KnownAE] = []
    /// `[[site_directory]]`: the region's sites, by issuer of patient ID.
    public var siteDirectory: [SiteDirectoryEntry] = []
    /// `[consent]`.
    public var consent = ConsentSettings()
    /// `[audit]`: the audit trail and its ATNA repository.
    public var audit = AuditSettings()
    /// `[hl7]`: the MLLP listener; nil without the section.
    public var hl7: HL7Settings?
    /// `[backfill]`: the migration of the site's archive.
    public var backfill = BackfillSettings()

    public init() {}

    /// Where the status socket is: `[status] socket`, else `status.sock` in the spool.
    public var statusSocketPath: String {
        status.socket ?? (spool.path as NSString).appendingPathComponent("status.sock")
    }

    /// The configuration `passerelled` runs on without a file.
    public static let embeddedDefault = GatewayConfiguration()
}
