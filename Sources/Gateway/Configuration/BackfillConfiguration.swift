import Foundation
import Spool

/// `[backfill]`: how politely the migration of the site's archive runs (docs/migration.md).
/// By default nothing restrains it but the spool's own room: the site's IT team sets windows
/// and caps.
public struct BackfillSettings: Sendable, Equatable {
    /// Retrievals at a time.
    public var parallel = 2
    /// When retrievals may run; empty: always.
    public var schedule: [TimeWindow] = []
    /// 0: no cap.
    public var maxStudiesPerHour = 0
    /// Retrievals pause while the spool's file system has less free space than this.
    public var pauseBelowFree: DiskWatermark = .percent(10)
    /// Retrievals pause while more instances than this wait for upload.
    public var pauseAboveQueue = 10_000
    /// A C-FIND with this many answers is taken as capped by the PACS and split (0: only a
    /// final status other than Success says so).
    public var findLimit = 0
    /// Timeout of one C-FIND or of silence during a C-MOVE.
    public var timeout: Duration = .seconds(120)
    /// A study the PACS did not deliver is tried again after this delay, doubled each time…
    public var retryDelay: Duration = .seconds(60)
    /// …until it has been tried this many times; then it is `failed`.
    public var maxAttempts = 3
}

/// A time-of-day window, optionally on some days only: "20:00-07:00", "sat-sun 00:00-24:00",
/// "mon,wed 12:00-14:00". A window across midnight belongs to the day it starts.
public struct TimeWindow: Sendable, Equatable, CustomStringConvertible {
    public var startMinute: Int
    public var endMinute: Int
    /// 1 = Sunday … 7 = Saturday (Calendar's numbering); empty: every day.
    public var weekdays: Set<Int>
    public var text: String

    public var description: String { text }

    static let dayNames = ["sun": 1, "mon": 2, "tue": 3, "wed": 4, "thu": 5, "fri": 6, "sat": 7]

    public static func parse(_ text: String) -> TimeWindow? {
        let fields = text.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count == 1 || fields.count == 2, let range = fields.last else { return nil }
        var weekdays: Set<Int> = []
        if fields.count == 2 {
            for part in fields[0].lowercased().split(separator: ",") {
                let ends = part.split(separator: "-").map(String.init)
                guard (1...2).contains(ends.count), let first = dayNames[ends[0]],
                      let last = dayNames[ends.last!] else { return nil }
                var day = first
                while true {
                    weekdays.insert(day)
                    if day == last { break }
                    day = day % 7 + 1
                }
            }
        }
        let bounds = range.split(separator: "-")
        guard bounds.count == 2, let start = minuteOfDay(bounds[0]), let end = minuteOfDay(bounds[1]) else { return nil }
        // "00:00-24:00" is the whole day.
        guard start != end % 1440 || end == 1440 else { return nil }
        return TimeWindow(startMinute: start, endMinute: end, weekdays: weekdays, text: text)
    }

    private static func minuteOfDay(_ text: Substring) -> Int? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let hour = Int(parts[0]), let minute = Int(parts[1]),
              (0...24).contains(hour), (0..<60).contains(minute), hour * 60 + minute <= 1440 else { return nil }
        return hour * 60 + minute
    }

    /// Whether `date` (local time of `calendar`) falls in the window.
    public func contains(_ date: Date, calendar: Calendar = .current) -> Bool {
        let parts = calendar.dateComponents([.weekday, .hour, .minute], from: date)
        let minute = (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
        let day = parts.weekday ?? 1
        let previous = (day + 5) % 7 + 1
        func on(_ day: Int) -> Bool { weekdays.isEmpty || weekdays.contains(day) }
        if startMinute < endMinute {
            return on(day) && minute >= startMinute && minute < endMinute
        }
        return (on(day) && minute >= startMinute) || (on(previous) && minute < endMinute)
    }
}

extension Settings {
    func parseBackfill(into configuration: inout GatewayConfiguration) throws(ConfigurationError) {
        var settings = BackfillSettings()
        func integer(_ key: String, _ range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
            guard let value = self[key]?.value.int else { return nil }
            guard range.contains(value) else {
                throw error(key, "\(value) is out of range", hint: "\(range.lowerBound) to \(range.upperBound)")
            }
            return value
        }
        if let value = try integer("backfill.parallel", 1...16) { settings.parallel = value }
        if let value = try integer("backfill.max_studies_per_hour", 0...1_000_000) { settings.maxStudiesPerHour = value }
        if let value = try integer("backfill.pause_above_queue", 1...100_000_000) { settings.pauseAboveQueue = value }
        if let value = try integer("backfill.find_limit", 0...1_000_000) { settings.findLimit = value }
        if let value = try integer("backfill.max_attempts", 1...20) { settings.maxAttempts = value }
        if let text = self["backfill.retry_delay"]?.value.string, let value = ConfigurationValues.duration(text) {
            guard value >= .seconds(1) else {
                throw error("backfill.retry_delay", "\(text) is too short", hint: "at least 1s")
            }
            settings.retryDelay = value
        }
        if let text = self["backfill.pause_below_free"]?.value.string, let value = ConfigurationValues.watermark(text) {
            settings.pauseBelowFree = value
        }
        if let text = self["backfill.timeout"]?.value.string, let value = ConfigurationValues.duration(text) {
            guard value >= .seconds(1) else { throw error("backfill.timeout", "\(text) is too short", hint: "at least 1s") }
            settings.timeout = value
        }
        if let windows = self["backfill.schedule"]?.value.array {
            for window in windows.compactMap(\.string) {
                guard let parsed = TimeWindow.parse(window) else {
                    throw error("backfill.schedule", "cannot read \"\(window)\"",
                                hint: "write each window as \"20:00-07:00\" or \"sat-sun 00:00-24:00\"")
                }
                settings.schedule.append(parsed)
            }
        }
        configuration.backfill = settings
    }
}
