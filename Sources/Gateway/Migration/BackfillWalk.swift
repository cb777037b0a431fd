import DICOMCore
import DICOMweb
import Foundation
import Spool

/// How the walk of a PACS narrows a query whose answer came back capped, and the days it
/// covers (pure; docs/migration.md).
enum BackfillWalk {
    /// The narrower queries that together cover a capped one: a day → by hour → by ten
    /// minutes; nil when it cannot be narrowed further.
    ///
    /// Never by modality: with ModalitiesInStudy as a matching key, Orthanc counts its
    /// `LimitFindResults` on series and cuts the answer silently (status Success), so a
    /// modality-narrowed query cannot be trusted; modalities are filtered on the answers.
    /// Ranges are written "08-085959.999999": TM values compare as text at some PACS, and
    /// "0800", "08" or "085959.5" are all valid StudyTimes of the 8 o'clock hour.
    static func narrower(timeRange: String) -> [String]? {
        if timeRange.isEmpty {
            return (0..<24).map { hour in String(format: "%02d-%02d5959.999999", hour, hour) }
        }
        // "HH-HH5959.999999" → ten-minute ranges "HHM0-HHM959.999999"; those are not split again.
        guard timeRange.count == 16, timeRange.dropFirst(2).hasPrefix("-"), let hour = Int(timeRange.prefix(2)) else {
            return nil
        }
        return (0..<6).map { tens in String(format: "%02d%d0-%02d%d959.999999", hour, tens, hour, tens) }
    }

    /// Whether a study answered belongs to a job narrowed to `modalities` (a study whose
    /// modalities the PACS did not return is kept: better retrieved than missed).
    static func selected(_ study: FoundStudy, modalities: [String]) -> Bool {
        modalities.isEmpty || study.modalities.isEmpty || study.modalities.contains { modalities.contains($0) }
    }

    /// Days from `since` to `until` (YYYYMMDD, inclusive), oldest first.
    static func days(since: String, until: String) -> [String] {
        guard let start = date(since), let end = date(until), start <= end else { return [] }
        var days: [String] = []
        var day = start
        while day <= end {
            days.append(text(day))
            day = calendar.date(byAdding: .day, value: 1, to: day)!
        }
        return days
    }

    /// "2024-01-31" or "20240131" → "20240131"; nil when not a date.
    static func normalizedDate(_ text: String) -> String? {
        let digits = text.replacingOccurrences(of: "-", with: "")
        guard digits.count == 8, digits.allSatisfy(\.isASCIIDigit), let parsed = date(digits) else { return nil }
        return Self.text(parsed) == digits ? digits : nil
    }

    static func today(_ now: Date = Date()) -> String { text(now) }

    private static let calendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    private static func date(_ text: String) -> Date? {
        guard text.count == 8, let year = Int(text.prefix(4)), let month = Int(text.dropFirst(4).prefix(2)),
              let day = Int(text.suffix(2)) else { return nil }
        return calendar.date(from: DateComponents(year: year, month: month, day: day))
    }

    private static func text(_ date: Date) -> String {
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d%02d%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
    }

    /// The share of a week the windows open (1 without windows), for estimates.
    static func openFraction(_ windows: [TimeWindow]) -> Double {
        guard !windows.isEmpty else { return 1 }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let monday = calendar.date(from: DateComponents(year: 2024, month: 1, day: 1))!
        var open = 0
        let samples = 7 * 24 * 6
        for step in 0..<samples {
            let date = monday.addingTimeInterval(Double(step) * 600)
            if windows.contains(where: { $0.contains(date, calendar: calendar) }) { open += 1 }
        }
        return Double(open) / Double(samples)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

/// What the archive holds, by QIDO-RS.
extension DICOMwebClient {
    /// Study Instance UID → number of instances of the studies of one day at the archive.
    func studiesAtArchive(on day: String) async throws(DICOMwebError) -> [String: Int] {
        var result: [String: Int] = [:]
        let page = 1000
        var offset = 0
        while true {
            let answers = try await search("studies", parameters: [
                ("StudyDate", day), ("includefield", "00201208"), ("limit", String(page)), ("offset", String(offset)),
            ])
            for answer in answers {
                guard let uid = answer.string(Tag.studyInstanceUID) else { continue }
                result[uid] = answer.string(Tag.numberOfStudyRelatedInstances).flatMap { Int($0) } ?? 0
            }
            guard answers.count == page else { return result }
            offset += page
        }
    }
}
