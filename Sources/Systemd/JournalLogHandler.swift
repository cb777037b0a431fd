import CSystemd
import Foundation
import Logging

/// A swift-log handler writing structured entries to the systemd journal (`sd_journal_sendv(3)`).
///
/// Each entry carries `MESSAGE`, `PRIORITY` (syslog level, from ``priority(for:)``),
/// `CODE_FILE`, `CODE_LINE`, `CODE_FUNC`, `SYSLOG_IDENTIFIER` (`passerelled`),
/// `SWIFT_LOG_LABEL` (the logger's label) and one field per metadata key, named by
/// ``fieldName(forMetadataKey:)``: `study_uid` → `PASSERELLE_STUDY_UID`, so that
/// `journalctl PASSERELLE_STUDY_UID=1.2.3` finds every line about a study. An `error` passed
/// to the logger becomes `PASSERELLE_ERROR`.
///
/// Use it only when stderr *is* the journal (``shouldUseJournal()``); otherwise keep
/// swift-log's `StreamLogHandler`:
///
/// ```swift
/// let useJournal = JournalLogHandler.shouldUseJournal()
/// LoggingSystem.bootstrap { label in
///     var handler: any LogHandler = useJournal
///         ? JournalLogHandler(label: label)
///         : StreamLogHandler.standardError(label: label)
///     handler.logLevel = level
///     return handler
/// }
/// ```
public struct JournalLogHandler: LogHandler {
    public let label: String
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    /// `SYSLOG_IDENTIFIER=`, what `journalctl -t` selects and the short output shows.
    public var syslogIdentifier: String
    /// Appends ` key=value …` to `MESSAGE` too, so the default `journalctl` output (which shows
    /// only `MESSAGE`) keeps the context. The structured fields are sent either way.
    public var appendsMetadataToMessage: Bool

    public init(
        label: String,
        syslogIdentifier: String = "passerelled",
        appendsMetadataToMessage: Bool = true,
        metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider
    ) {
        self.label = label
        self.syslogIdentifier = syslogIdentifier
        self.appendsMetadataToMessage = appendsMetadataToMessage
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let fields = self.fields(for: event)
        Self.send(fields)
    }

    /// The journal fields of one entry, `NAME=value`, in order (exposed for tests).
    func fields(for event: LogEvent) -> [String] {
        var merged = metadata
        if let provided = metadataProvider?.get() {
            merged.merge(provided) { _, new in new }
        }
        if let explicit = event.metadata {
            merged.merge(explicit) { _, new in new }
        }
        if let error = event.error {
            merged["error"] = "\(error)"
        }
        let sorted = merged.sorted { $0.key < $1.key }

        var message = event.message.description
        if appendsMetadataToMessage && !sorted.isEmpty {
            message += " " + sorted.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        var fields = [
            "MESSAGE=" + message,
            "PRIORITY=\(Self.priority(for: event.level))",
            "CODE_FILE=" + event.file,
            "CODE_LINE=\(event.line)",
            "CODE_FUNC=" + event.function,
            "SYSLOG_IDENTIFIER=" + syslogIdentifier,
            "SWIFT_LOG_LABEL=" + label,
        ]
        for (key, value) in sorted {
            fields.append(Self.fieldName(forMetadataKey: key) + "=" + "\(value)")
        }
        return fields
    }

    /// The syslog priority (`PRIORITY=`, `syslog(3)`) of a swift-log level. swift-log has no
    /// `alert`/`emerg`; `trace` and `debug` are both `debug` (7).
    public static func priority(for level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7  // LOG_DEBUG
        case .info: 6  // LOG_INFO
        case .notice: 5  // LOG_NOTICE
        case .warning: 4  // LOG_WARNING
        case .error: 3  // LOG_ERR
        case .critical: 2  // LOG_CRIT
        }
    }

    /// The journal field of a metadata key: `PASSERELLE_` + the key uppercased, every character
    /// outside `[A-Z0-9_]` replaced by `_`, cut to the journal's 64-character limit
    /// (`systemd.journal-fields(7)`: names are `[A-Z0-9_]`, start with a letter, not `_`).
    public static func fieldName(forMetadataKey key: String) -> String {
        let prefix = "PASSERELLE_"
        var name = prefix
        for scalar in key.uppercased().unicodeScalars {
            switch scalar {
            case "A"..."Z", "0"..."9", "_": name.unicodeScalars.append(scalar)
            default: name.unicodeScalars.append("_")
            }
        }
        return String(name.prefix(64))
    }

    /// Sends one entry; a failure (journal socket unreachable) is dropped, as a log line must
    /// never stop the daemon.
    static func send(_ fields: [String]) {
        // All fields in one buffer, then one iovec per field pointing into it; values may hold
        // newlines and any byte (sd_journal_sendv is binary-safe).
        var buffer: [UInt8] = []
        var ranges: [Range<Int>] = []
        buffer.reserveCapacity(fields.reduce(0) { $0 + $1.utf8.count })
        ranges.reserveCapacity(fields.count)
        for field in fields {
            let start = buffer.count
            buffer.append(contentsOf: field.utf8)
            ranges.append(start..<buffer.count)
        }
        buffer.withUnsafeMutableBytes { bytes in
            guard let base = bytes.baseAddress else { return }
            var iovecs = ranges.map { range in
                iovec(iov_base: base + range.lowerBound, iov_len: range.count)
            }
            _ = sd_journal_sendv(&iovecs, Int32(iovecs.count))
        }
    }
}
