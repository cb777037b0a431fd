import Logging
import Testing

@testable import Systemd

struct JournalLogHandlerTests {
    @Test(arguments: [
        ("study_uid", "PASSERELLE_STUDY_UID"),
        ("calling_ae", "PASSERELLE_CALLING_AE"),
        ("sopInstanceUID", "PASSERELLE_SOPINSTANCEUID"),
        ("peer.address", "PASSERELLE_PEER_ADDRESS"),
        ("dimse-status", "PASSERELLE_DIMSE_STATUS"),
        ("été", "PASSERELLE__T_"),
        ("a b/c:d", "PASSERELLE_A_B_C_D"),
        ("x9_Z", "PASSERELLE_X9_Z"),
        ("", "PASSERELLE_"),
    ])
    func fieldName(key: String, expected: String) {
        #expect(JournalLogHandler.fieldName(forMetadataKey: key) == expected)
    }

    @Test func fieldNameIsCutToJournalLimit() {
        let name = JournalLogHandler.fieldName(forMetadataKey: String(repeating: "k", count: 100))
        #expect(name.count == 64)
        #expect(name.hasPrefix("PASSERELLE_KKK"))
    }

    @Test(arguments: [
        (Logger.Level.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2),
    ])
    func priority(level: Logger.Level, expected: Int) {
        #expect(JournalLogHandler.priority(for: level) == expected)
    }

    @Test func entryFields() {
        var handler = JournalLogHandler(label: "passerelle.gateway", metadataProvider: nil)
        handler[metadataKey: "calling_ae"] = "CT1"
        handler[metadataKey: "study_uid"] = "1.2.3"
        let event = LogEvent(
            level: .warning, message: "instance stored", metadata: ["study_uid": "1.2.4", "bytes": "42"],
            source: nil, file: "Gateway/Reception.swift", function: "store(_:)", line: 12)
        #expect(
            handler.fields(for: event) == [
                "MESSAGE=instance stored bytes=42 calling_ae=CT1 study_uid=1.2.4",
                "PRIORITY=4",
                "CODE_FILE=Gateway/Reception.swift",
                "CODE_LINE=12",
                "CODE_FUNC=store(_:)",
                "SYSLOG_IDENTIFIER=passerelled",
                "SWIFT_LOG_LABEL=passerelle.gateway",
                "PASSERELLE_BYTES=42",
                "PASSERELLE_CALLING_AE=CT1",
                "PASSERELLE_STUDY_UID=1.2.4",
            ])
        handler.appendsMetadataToMessage = false
        #expect(handler.fields(for: event).first == "MESSAGE=instance stored")
    }

    @Test func errorAndProviderMetadata() {
        struct Failure: Error, CustomStringConvertible { var description: String { "disk full" } }
        let provider = Logger.MetadataProvider { ["association_id": "7"] }
        let handler = JournalLogHandler(label: "l", appendsMetadataToMessage: false, metadataProvider: provider)
        let event = LogEvent(
            level: .error, message: "store failed", error: Failure(), metadata: nil,
            source: nil, file: "f", function: "g", line: 1)
        let fields = handler.fields(for: event)
        #expect(fields.contains("PASSERELLE_ASSOCIATION_ID=7"))
        #expect(fields.contains("PASSERELLE_ERROR=disk full"))
    }

    /// Sending never crashes, with or without a journal socket (here usually none).
    @Test func sendDoesNotCrash() {
        var logger = Logger(label: "test") { JournalLogHandler(label: $0, metadataProvider: nil) }
        logger.logLevel = .trace
        logger.info("multi\nline", metadata: ["k": "v"])
    }
}

struct JournalStreamTests {
    @Test(arguments: [
        ("8:12345", JournalStream(device: 8, inode: 12345)),
        ("0:0", JournalStream(device: 0, inode: 0)),
        ("18446744073709551615:1", JournalStream(device: .max, inode: 1)),
    ])
    func parses(text: String, expected: JournalStream) {
        #expect(JournalStream(text) == expected)
    }

    @Test(arguments: ["", ":", "8:", ":9", "8", "8:9:10", "a:1", "-1:2", "+1:2", " 8:9", "8:9\n", "18446744073709551616:1"])
    func rejects(text: String) {
        #expect(JournalStream(text) == nil)
    }

    @Test func matchingDeviceAndInode() {
        #expect(JournalLogHandler.shouldUseJournal(journalStream: "8:12345", stderrDevice: 8, stderrInode: 12345))
    }

    @Test func nonMatchingDeviceOrInode() {
        #expect(!JournalLogHandler.shouldUseJournal(journalStream: "8:12345", stderrDevice: 8, stderrInode: 12346))
        #expect(!JournalLogHandler.shouldUseJournal(journalStream: "9:12345", stderrDevice: 8, stderrInode: 12345))
        #expect(!JournalLogHandler.shouldUseJournal(journalStream: nil, stderrDevice: 8, stderrInode: 12345))
        #expect(!JournalLogHandler.shouldUseJournal(journalStream: "garbage", stderrDevice: 8, stderrInode: 12345))
    }
}
