// Linux and x86-64 facilities that Swift does not reach on its own: calls Glibc's overlay
// does not import (they need _GNU_SOURCE), and the SSE4.2 CRC-32C instruction.
#ifndef PASSERELLE_CLINUX_H
#define PASSERELLE_CLINUX_H

#include <stddef.h>
#include <stdint.h>

/// sync_file_range(2) with SYNC_FILE_RANGE_WRITE: starts writeback of a range, does not wait.
int passerelle_start_writeback(int fd, int64_t offset, int64_t count);

/// Continues a CRC-32C (Castagnoli) over `length` bytes: pass 0 first, then the previous
/// result. Uses the SSE4.2 instruction when the CPU has it, a table otherwise.
uint32_t passerelle_crc32c(uint32_t crc, const void *bytes, size_t length);

/// Moves the calling thread to SCHED_IDLE (`idle` non-zero: it runs only on a core nothing
/// else wants) or back to SCHED_OTHER. Returns 0, or -1 with errno.
int passerelle_set_idle_priority(int idle);

/// Caps glibc's malloc arenas at `count` (mallopt M_ARENA_MAX) unless MALLOC_ARENA_MAX is set
/// in the environment. Returns 1 when set, 0 otherwise.
int passerelle_limit_malloc_arenas(int count);

/// Returns the free pages of every malloc arena to the system (malloc_trim(0)).
void passerelle_release_free_memory(void);

#endif
