import DICOMCore
import Foundation
import Spool
import TOMLKit

/// The kinds of values a key may hold, each with its validation and one-line hint.
enum ValueKind: Sendable {
    case string, int, bool, duration, size, watermark, bandwidth, url, file, stringArray, aeTitle, aeTitleArray
    /// A nested table (`[hl7.tls]`), its keys checked like a section's.
    case table([String: ValueKind])

    func validate(_ located: LocatedValue, name: String) throws(ConfigurationError) {
        func fail(_ message: String, _ hint: String) -> ConfigurationError {
            ConfigurationError(file: located.file, line: located.line, message: "\(name): \(message)", hint: hint)
        }
        let value = located.value
        switch self {
        case .string, .file:
            guard value.string != nil else { throw fail("expected a string", "put it in double quotes") }
        case .int:
            guard value.int != nil else { throw fail("expected an integer", "write a number without quotes") }
        case .bool:
            guard value.bool != nil else { throw fail("expected true or false", "write true or false without quotes") }
        case .duration:
            guard let text = value.string, ConfigurationValues.duration(text) != nil else {
                throw fail("expected a duration", "write it as \"500ms\", \"30s\", \"10m\", \"2h\" or \"7d\"")
            }
        case .size:
            guard let text = value.string, ConfigurationValues.size(text) != nil else {
                throw fail("expected a size", "write it as \"16MiB\", \"2GB\" or \"512KB\"")
            }
        case .watermark:
            guard let text = value.string, ConfigurationValues.watermark(text) != nil else {
                throw fail("expected a percentage or a size", "write it as \"5%\" or \"10GB\"")
            }
        case .bandwidth:
            guard let text = value.string,
                  ConfigurationValues.bandwidth(text) != nil
            else { throw fail("expected a bandwidth", "write it as \"unlimited\" or \"40Mbit\"") }
        case .url:
            guard let text = value.string, let url = URL(string: text),
                  let scheme = url.scheme, ["http", "https", "tls", "udp", "tcp"].contains(scheme), url.host != nil
            else { throw fail("expected a URL", "write it as \"https://host/dicom-web\"") }
        case .stringArray:
            guard let array = value.array, array.allSatisfy({ $0.string != nil }) else {
                throw fail("expected a list of strings", "write it as [\"A\", \"B\"]")
            }
        case .aeTitle:
            guard let text = value.string, ConfigurationValues.isValidAETitle(text) else {
                throw fail("not a valid AE title", "1 to 16 ASCII characters, no backslash")
            }
        case .table:
            guard value.table != nil else { throw fail("expected a table", "write it as a [section] of its own") }
        case .aeTitleArray:
            guard let array = value.array,
                  array.allSatisfy({ $0.string.map(ConfigurationValues.isValidAETitle) ?? false }) else {
                throw fail("expected a list of AE titles", "write it as [\"CT1\", \"PACS\"], 1 to 16 ASCII characters each")
            }
        }
    }
}

enum SectionKind: Sendable {
    case table([String: ValueKind])
    case namedTables([String: ValueKind])
    case arrayOfTables([String: ValueKind])
}

/// Every section and key of DESIGN.md's configuration reference.
enum ConfigurationSchema {
    static let sections: [String: SectionKind] = [
        "site": .table([
            "id": .int, "emitter": .string, "name": .string,
            "issuer_of_patient_id": .string, "issuer_oid": .string, "uid_root": .string,
        ]),
        "dicom": .table([
            "ae_title": .aeTitle, "port": .int, "bind": .string, "allowed_calling_aets": .aeTitleArray,
            "max_associations": .int, "max_pdu_length": .int, "idle_timeout": .duration, "check_calling_host": .bool,
            "tls": .table(["port": .int, "certificate": .file, "key": .file, "ca": .file,
                           "require_client_certificate": .bool]),
        ]),
        "spool": .table([
            "path": .string, "min_free": .watermark, "retention": .duration, "cache_retention": .duration,
            "segment_size": .size,
        ]),
        "upload": .table([
            "stable_after": .duration, "chunk_max_bytes": .size, "chunk_max_instances": .int,
            "parallel": .int, "bandwidth": .bandwidth, "retry_min": .duration, "retry_max": .duration,
            "bandwidth_schedule": .stringArray, "fill_issuer_of_patient_id": .bool,
            "request_timeout": .duration, "connect_timeout": .duration,
        ]),
        "destinations": .namedTables([
            "url": .url, "ca": .file, "client_cert": .file, "client_key": .file, "token": .string,
            "calling_aets": .aeTitleArray, "modalities": .stringArray, "exclude_modalities": .stringArray,
            "sop_classes": .stringArray, "upload": .bool, "shared": .bool, "withdraw": .string, "orthanc_url": .url,
            "identity_update": .string,
        ]),
        "community": .arrayOfTables([
            "ae_title": .aeTitle, "destination": .string, "exclude_own_site": .bool,
            "query_timeout": .duration, "retrieve_timeout": .duration, "max_results": .int,
        ]),
        "ae": .arrayOfTables([
            "title": .aeTitle, "host": .string, "port": .int, "retrieve": .string, "hosts": .stringArray,
            "tls": .bool, "ca": .file,
        ]),
        "site_directory": .arrayOfTables([
            "id": .int, "emitter": .string, "name": .string, "issuer_of_patient_id": .string,
        ]),
        "status": .table(["socket": .string]),
        "consent": .table(["default": .string]),
        "audit": .table([
            "enabled": .bool, "repository": .string, "ca": .file, "client_cert": .file, "client_key": .file,
        ]),
        "hl7": .table([
            "port": .int, "bind": .string, "max_message_size": .size, "idle_timeout": .duration,
            "application": .string, "facility": .string, "allowed_senders": .stringArray, "allowed_hosts": .stringArray,
            "accession_number": .string, "report_wait": .duration, "retention": .duration,
            "tls": .table(["certificate": .file, "key": .file, "ca": .file, "require_client_certificate": .bool]),
        ]),
        "backfill": .table([
            "parallel": .int, "schedule": .stringArray, "max_studies_per_hour": .int, "pause_below_free": .watermark,
            "pause_above_queue": .int, "find_limit": .int, "timeout": .duration, "retry_delay": .duration,
            "max_attempts": .int,
        ]),
    ]

    /// The known key nearest to a misspelt one, if it is close enough to suggest.
    static func closest(to key: String, in candidates: [String]) -> String? {
        candidates
            .map { ($0, editDistance(key, $0)) }
            .filter { $0.1 <= max(2, key.count / 3) }
            .min { $0.1 < $1.1 }?.0
    }

    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1,
                                 previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

extension Settings {
    /// Builds the typed configuration from validated settings, checking ranges.
    func configuration() throws(ConfigurationError) -> GatewayConfiguration {
        var configuration = GatewayConfiguration()
        configuration.site.id = self["site.id"]?.value.int
        configuration.site.emitter = self["site.emitter"]?.value.string
        configuration.site.name = self["site.name"]?.value.string
        configuration.site.issuerOfPatientID = self["site.issuer_of_patient_id"]?.value.string
        configuration.site.issuerOID = self["site.issuer_oid"]?.value.string
        if let root = self["site.uid_root"]?.value.string {
            guard UID.isValid(root), root.count <= 40 else {
                throw error("site.uid_root", "\"\(root)\" is not a UID root",
                            hint: "digits and dots, at most 40 characters (the rest of the 64 names each object), e.g. \"1.2.250.1.999.1\"")
            }
            configuration.site.uidRoot = root
        }

        if let title = self["dicom.ae_title"]?.value.string {
            configuration.dicom.aeTitle = title.trimmingCharacters(in: .whitespaces)
        }
        if let port = self["dicom.port"]?.value.int {
            guard (0...65_535).contains(port) else {
                throw error("dicom.port", "\(port) is not a TCP port",
                            hint: "1 to 65535 (104 needs CAP_NET_BIND_SERVICE); 0 turns the clear port off")
            }
            configuration.dicom.port = port
            configuration.dicom.clearListener = port != 0
        }
        if let bind = self["dicom.bind"]?.value.string { configuration.dicom.bind = bind }
        if let check = self["dicom.check_calling_host"]?.value.bool { configuration.dicom.checkCallingHost = check }
        if let titles = self["dicom.allowed_calling_aets"]?.value.array {
            configuration.dicom.allowedCallingAETitles = titles.compactMap {
                $0.string?.trimmingCharacters(in: .whitespaces)
            }
        }
        if let count = self["dicom.max_associations"]?.value.int {
            guard (1...1024).contains(count) else {
                throw error("dicom.max_associations", "\(count) is out of range", hint: "1 to 1024")
            }
            configuration.dicom.maxAssociations = count
        }
        if let length = self["dicom.max_pdu_length"]?.value.int {
            guard (4096...16_777_216).contains(length) else {
                throw error("dicom.max_pdu_length", "\(length) is out of range",
                            hint: "4096 to 16777216 bytes; 262144 is a good value")
            }
            configuration.dicom.maxPDULength = UInt32(length)
        }
        if let text = self["dicom.idle_timeout"]?.value.string, let duration = ConfigurationValues.duration(text) {
            guard duration >= .seconds(1) else {
                throw error("dicom.idle_timeout", "\(text) is too short", hint: "at least 1s")
            }
            configuration.dicom.idleTimeout = duration
        }
        if let path = self["spool.path"]?.value.string {
            guard !path.isEmpty else { throw error("spool.path", "is empty", hint: "for example /var/lib/passerelle") }
            configuration.spool.path = path
        }
        if let text = self["spool.min_free"]?.value.string, let watermark = ConfigurationValues.watermark(text) {
            configuration.spool.minFree = watermark
        }
        if let text = self["spool.retention"]?.value.string, let duration = ConfigurationValues.duration(text) {
            configuration.spool.retention = duration
        }
        if let text = self["spool.segment_size"]?.value.string, let size = ConfigurationValues.size(text) {
            guard size >= 1 << 20, size <= 1 << 32 else {
                throw error("spool.segment_size", "\(text) is out of range", hint: "1MiB to 4GiB")
            }
            configuration.spool.segmentSize = Int(size)
        }
        if let socket = self["status.socket"]?.value.string { configuration.status.socket = socket }
        try parseDICOMTLS(into: &configuration)
        try parseUpload(into: &configuration)
        try parseCommunity(into: &configuration)
        try parseAudit(into: &configuration)
        try parseRights(into: &configuration)
        try parseHL7(into: &configuration)
        try parseBackfill(into: &configuration)
        return configuration
    }
}
