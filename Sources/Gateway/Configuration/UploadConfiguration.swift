import Foundation
import NIOSSL

/// `[upload]`: how studies travel to the destinations (docs/upload.md).
public struct UploadSettings: Sendable, Equatable {
    public var stableAfter: Duration = .seconds(30)
    public var chunkMaxBytes = 16 * 1_048_576
    public var chunkMaxInstances = 64
    public var parallel = 4
    /// Bytes per second for all destinations together; nil is unlimited.
    public var bandwidth: Int?
    /// Time-of-day windows overriding `bandwidth`.
    public var bandwidthSchedule: [BandwidthWindow] = []
    public var retryMin: Duration = .seconds(2)
    public var retryMax: Duration = .seconds(600)
    public var fillIssuerOfPatientID = true
    public var requestTimeout: Duration = .seconds(300)
    public var connectTimeout: Duration = .seconds(10)

    /// The cap in force at `date` (local time): the first window containing it, else `bandwidth`.
    public func bandwidth(at date: Date, calendar: Calendar = .current) -> Int? {
        let parts = calendar.dateComponents([.hour, .minute], from: date)
        let minute = (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
        return bandwidthSchedule.first { $0.contains(minuteOfDay: minute) }.map(\.bytesPerSecond) ?? bandwidth
    }
}

/// "08:00-18:00 20Mbit": a daily window and its cap (nil: unlimited); it may wrap midnight.
public struct BandwidthWindow: Sendable, Equatable {
    public var startMinute: Int
    public var endMinute: Int
    public var bytesPerSecond: Int?

    func contains(minuteOfDay minute: Int) -> Bool {
        startMinute <= endMinute ? (startMinute..<endMinute).contains(minute)
                                 : minute >= startMinute || minute < endMinute
    }

    static func parse(_ text: String) -> BandwidthWindow? {
        let fields = text.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count == 2 else { return nil }
        let range = fields[0].split(separator: "-")
        guard range.count == 2, let start = minuteOfDay(range[0]), let end = minuteOfDay(range[1]), start != end,
              let rate = ConfigurationValues.bandwidth(String(fields[1])) else { return nil }
        return BandwidthWindow(startMinute: start, endMinute: end, bytesPerSecond: rate.bytesPerSecond)
    }

    private static func minuteOfDay(_ text: Substring) -> Int? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let hour = Int(parts[0]), let minute = Int(parts[1]),
              (0...24).contains(hour), (0..<60).contains(minute), hour * 60 + minute <= 1440 else { return nil }
        return (hour * 60 + minute) % 1440
    }
}

/// `[destinations.NAME]`: one DICOMweb server and the rules of what it receives.
public struct DestinationSettings: Sendable, Equatable {
    public var name: String
    public var url: URL
    public var ca: String?
    public var clientCertificate: String?
    public var clientKey: String?
    public var token: String?
    /// Routing: empty lists do not restrict.
    public var callingAETitles: [String] = []
    public var modalities: [String] = []
    public var excludeModalities: [String] = []
    public var sopClasses: [String] = []
    /// false: only searched and retrieved from by a `[[community]]`, never sent to.
    public var upload = true
    /// Receives only studies no opposition covers (and, under `[consent] default = "hold"`,
    /// whose patient was informed); a late opposition withdraws the study from it.
    public var shared = false
    public var withdraw: WithdrawMethod = .manual
    /// How a study it already holds takes an HL7 identity correction.
    public var identityUpdate: IdentityUpdateMethod = .resend

    public init(name: String, url: URL) {
        self.name = name
        self.url = url
    }

    /// Whether an instance goes to this destination.
    public func accepts(callingAETitle: String, modality: String?, sopClassUID: String) -> Bool {
        let modality = modality?.trimmingCharacters(in: .whitespaces).uppercased() ?? ""
        if !callingAETitles.isEmpty && !callingAETitles.contains(callingAETitle.trimmingCharacters(in: .whitespaces)) {
            return false
        }
        if !modalities.isEmpty && !modalities.contains(where: { $0.uppercased() == modality }) { return false }
        if excludeModalities.contains(where: { $0.uppercased() == modality }) { return false }
        if !sopClasses.isEmpty && !sopClasses.contains(sopClassUID) { return false }
        return true
    }
}

extension ConfigurationValues {
    /// A parsed bandwidth: bytes per second, nil for unlimited.
    struct Bandwidth {
        var bytesPerSecond: Int?
    }

    /// "unlimited", "40Mbit", "500kbit", "1.5Gbit".
    static func bandwidth(_ text: String) -> Bandwidth? {
        if text == "unlimited" { return Bandwidth(bytesPerSecond: nil) }
        let units: [(String, Double)] = [("Gbit", 1e9), ("Mbit", 1e6), ("kbit", 1e3), ("Kbit", 1e3), ("bit", 1)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            guard let value = Double(text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)),
                  value > 0, value.isFinite else { return nil }
            return Bandwidth(bytesPerSecond: max(1, Int(value * factor / 8)))
        }
        return nil
    }
}

extension Settings {
    func parseUpload(into configuration: inout GatewayConfiguration) throws(ConfigurationError) {
        var upload = UploadSettings()
        func duration(_ key: String, minimum: Duration) throws(ConfigurationError) -> Duration? {
            guard let text = self[key]?.value.string, let value = ConfigurationValues.duration(text) else { return nil }
            guard value >= minimum else { throw error(key, "\(text) is too short", hint: "at least \(minimum)") }
            return value
        }
        func integer(_ key: String, _ range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
            guard let value = self[key]?.value.int else { return nil }
            guard range.contains(value) else {
                throw error(key, "\(value) is out of range", hint: "\(range.lowerBound) to \(range.upperBound)")
            }
            return value
        }
        if let value = try duration("upload.stable_after", minimum: .milliseconds(100)) { upload.stableAfter = value }
        if let text = self["upload.chunk_max_bytes"]?.value.string, let size = ConfigurationValues.size(text) {
            guard size >= 65_536, size <= 4 << 30 else {
                throw error("upload.chunk_max_bytes", "\(text) is out of range", hint: "64KiB to 4GiB")
            }
            upload.chunkMaxBytes = Int(size)
        }
        if let value = try integer("upload.chunk_max_instances", 1...10_000) { upload.chunkMaxInstances = value }
        if let value = try integer("upload.parallel", 1...64) { upload.parallel = value }
        if let text = self["upload.bandwidth"]?.value.string, let rate = ConfigurationValues.bandwidth(text) {
            upload.bandwidth = rate.bytesPerSecond
        }
        if let windows = self["upload.bandwidth_schedule"]?.value.array {
            for window in windows.compactMap(\.string) {
                guard let parsed = BandwidthWindow.parse(window) else {
                    throw error("upload.bandwidth_schedule", "cannot read \"\(window)\"",
                                hint: "write each window as \"08:00-18:00 20Mbit\" or \"18:00-08:00 unlimited\"")
                }
                upload.bandwidthSchedule.append(parsed)
            }
        }
        if let value = try duration("upload.retry_min", minimum: .milliseconds(10)) { upload.retryMin = value }
        if let value = try duration("upload.retry_max", minimum: .milliseconds(10)) { upload.retryMax = value }
        guard upload.retryMin <= upload.retryMax else {
            throw error(self["upload.retry_max"] != nil ? "upload.retry_max" : "upload.retry_min",
                        "retry_min is longer than retry_max", hint: "retry_min ≤ retry_max, e.g. 2s and 10m")
        }
        if let value = self["upload.fill_issuer_of_patient_id"]?.value.bool { upload.fillIssuerOfPatientID = value }
        if let value = try duration("upload.request_timeout", minimum: .seconds(1)) { upload.requestTimeout = value }
        if let value = try duration("upload.connect_timeout", minimum: .milliseconds(100)) { upload.connectTimeout = value }
        if upload.fillIssuerOfPatientID, let issuer = configuration.site.issuerOfPatientID,
           !issuer.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x20 && $0 != "\\" }) || issuer.utf8.count > 64 {
            throw error("site.issuer_of_patient_id", "cannot be filled into IssuerOfPatientID (LO)",
                        hint: "at most 64 ASCII characters without backslash, or set upload.fill_issuer_of_patient_id = false")
        }
        configuration.upload = upload

        configuration.destinations = []
        for name in names(under: "destinations") {
            let prefix = "destinations.\(name)"
            guard let text = self["\(prefix).url"]?.value.string else {
                throw ConfigurationError(file: self.locationOfAny(prefix)?.file ?? "configuration",
                                         line: self.locationOfAny(prefix)?.line,
                                         message: "[\(prefix)] has no url", hint: "url = \"https://dc.example/dicom-web\"")
            }
            guard let url = URL(string: text), let scheme = url.scheme?.lowercased(),
                  scheme == "http" || scheme == "https", url.host != nil else {
                throw error("\(prefix).url", "\(text) is not an http(s) URL", hint: "write it as \"https://host/dicom-web\"")
            }
            var destination = DestinationSettings(name: name, url: url)
            for (key, path) in [("ca", \DestinationSettings.ca), ("client_cert", \.clientCertificate),
                                ("client_key", \.clientKey)] {
                guard let file = self["\(prefix).\(key)"]?.value.string else { continue }
                guard access(file, R_OK) == 0 else {
                    throw error("\(prefix).\(key)", "\(file) is not readable: \(String(cString: strerror(errno)))",
                                hint: "the daemon's user needs read access (group passerelle, mode 0640)")
                }
                if let problem = Self.pemProblem(file, isKey: key == "client_key") {
                    throw error("\(prefix).\(key)", "\(file): \(problem)",
                                hint: key == "client_key" ? "a PEM private key (-----BEGIN … PRIVATE KEY-----)"
                                                          : "PEM certificates (-----BEGIN CERTIFICATE-----)")
                }
                destination[keyPath: path] = file
            }
            guard (destination.clientCertificate == nil) == (destination.clientKey == nil) else {
                throw error("\(prefix).\(destination.clientCertificate == nil ? "client_key" : "client_cert")",
                            "client_cert and client_key go together", hint: "set both, or neither")
            }
            if destination.clientCertificate != nil || destination.ca != nil, scheme != "https" {
                throw error("\(prefix).url", "TLS files are set but the URL is \(scheme)://", hint: "use https://")
            }
            destination.token = self["\(prefix).token"]?.value.string
            func strings(_ key: String) -> [String] {
                self["\(prefix).\(key)"]?.value.array?.compactMap {
                    $0.string?.trimmingCharacters(in: .whitespaces)
                } ?? []
            }
            destination.callingAETitles = strings("calling_aets")
            destination.modalities = strings("modalities")
            destination.excludeModalities = strings("exclude_modalities")
            destination.sopClasses = strings("sop_classes")
            configuration.destinations.append(destination)
        }
    }

    /// Why a TLS file cannot be used, or nil: it must be a regular file holding PEM
    /// certificates (or, for a key, a PEM private key) that OpenSSL can load.
    static func pemProblem(_ path: String, isKey: Bool) -> String? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return "not a regular file" }
        if isKey {
            do {
                _ = try NIOSSLPrivateKey(file: path, format: .pem)
            } catch {
                return "not a PEM private key (\(error))"
            }
        } else {
            guard let certificates = try? NIOSSLCertificate.fromPEMFile(path), !certificates.isEmpty else {
                return "no PEM certificate in it"
            }
        }
        return nil
    }

    /// Where any key under `prefix` was written (to report a table-level mistake).
    func locationOfAny(_ prefix: String) -> LocatedValue? {
        values.filter { $0.key.hasPrefix(prefix + ".") }.min { ($0.value.line ?? 0) < ($1.value.line ?? 0) }?.value
    }
}
