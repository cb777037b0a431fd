// libsystemd (libsystemd-dev): sd_notify(3), sd_watchdog_enabled(3), sd_journal_sendv(3).
#ifndef PASSERELLE_CSYSTEMD_SHIM_H
#define PASSERELLE_CSYSTEMD_SHIM_H

// The location-adding sd_journal_print/send macros cannot be imported by Swift anyway;
// JournalLogHandler passes CODE_FILE/CODE_LINE/CODE_FUNC itself.
#define SD_JOURNAL_SUPPRESS_LOCATION 1

#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#endif
