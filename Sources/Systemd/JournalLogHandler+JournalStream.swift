import Foundation

extension JournalLogHandler {
    /// Whether stderr is connected to the journal, per `systemd.exec(5)`, `$JOURNAL_STREAM`:
    /// systemd sets it to `device:inode` (decimal) of the stream it connected to stdout/stderr;
    /// a process should log natively to the journal only if the device and inode of its own
    /// stderr match — the variable is inherited by children whose stderr was redirected
    /// elsewhere (`passerelled … 2>file` from a shell in a unit, `systemd-run --pty`).
    public static func shouldUseJournal() -> Bool {
        var info = stat()
        guard fstat(STDERR_FILENO, &info) == 0 else { return false }
        return shouldUseJournal(
            journalStream: ProcessInfo.processInfo.environment["JOURNAL_STREAM"],
            stderrDevice: UInt64(info.st_dev),
            stderrInode: UInt64(info.st_ino))
    }

    /// The comparison behind ``shouldUseJournal()``, for a given `JOURNAL_STREAM` value and
    /// stderr identity.
    public static func shouldUseJournal(journalStream: String?, stderrDevice: UInt64, stderrInode: UInt64) -> Bool {
        guard let journalStream, let stream = JournalStream(journalStream) else { return false }
        return stream.device == stderrDevice && stream.inode == stderrInode
    }
}
