import Foundation
import Spool

/// Parsers for the value syntaxes of the configuration: durations `500ms 30s 10m 2h 7d`,
/// sizes `16MiB 2GB 512KB 100`, watermarks `5%` or a size.
enum ConfigurationValues {
    static func duration(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        for (suffix, seconds) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            guard let value = Double(number), value >= 0, value.isFinite else { return nil }
            return .milliseconds(Int64((value * seconds * 1000).rounded()))
        }
        return nil
    }

    static func size(_ text: String) -> UInt64? {
        let units: [(String, Double)] = [
            ("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("TiB", 1_099_511_627_776),
            ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("B", 1),
        ]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            guard let value = Double(number), value >= 0, value.isFinite else { return nil }
            return UInt64(value * factor)
        }
        return UInt64(text)
    }

    static func watermark(_ text: String) -> DiskWatermark? {
        if text.hasSuffix("%") {
            guard let value = Double(text.dropLast().trimmingCharacters(in: .whitespaces)),
                  value >= 0, value <= 100 else { return nil }
            return .percent(value)
        }
        return size(text).map(DiskWatermark.bytes)
    }

    /// PS3.5 §6.2 AE: 1 to 16 characters of the default repertoire, no backslash or control
    /// characters, not only spaces.
    static func isValidAETitle(_ text: String) -> Bool {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        return !trimmed.isEmpty && text.utf8.count <= 16
            && text.unicodeScalars.allSatisfy { $0.isASCII && $0.value >= 0x20 && $0 != "\\" && $0.value != 0x7F }
    }
}
