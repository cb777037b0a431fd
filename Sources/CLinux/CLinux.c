#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include "CLinux.h"

int passerelle_start_writeback(int fd, int64_t offset, int64_t count) {
    return sync_file_range(fd, offset, count, SYNC_FILE_RANGE_WRITE);
}

int passerelle_limit_malloc_arenas(int count) {
    if (getenv("MALLOC_ARENA_MAX") != NULL) return 0;
    return mallopt(M_ARENA_MAX, count);
}

void passerelle_release_free_memory(void) {
    malloc_trim(0);
}

int passerelle_set_idle_priority(int idle) {
    struct sched_param param = {0};
    return sched_setscheduler(0, idle ? SCHED_IDLE : SCHED_OTHER, &param);
}

static uint32_t crc32c_table[256];

static void crc32c_make_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t crc = i;
        for (int k = 0; k < 8; k++) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        crc32c_table[i] = crc;
    }
}

static uint32_t crc32c_portable(uint32_t crc, const uint8_t *p, size_t n) {
    while (n--) crc = crc32c_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
// One dependent chain of 8-byte steps (~2.5 bytes per cycle): ample for a journal record,
// whose bytes the disk takes far slower.
__attribute__((target("sse4.2")))
static uint32_t crc32c_hardware(uint32_t crc, const uint8_t *p, size_t n) {
    uint64_t c = crc;
    while (n > 0 && ((uintptr_t)p & 7)) { c = __builtin_ia32_crc32qi((uint32_t)c, *p++); n--; }
    while (n >= 64) {
        uint64_t w[8];
        memcpy(w, p, 64);
        c = __builtin_ia32_crc32di(c, w[0]); c = __builtin_ia32_crc32di(c, w[1]);
        c = __builtin_ia32_crc32di(c, w[2]); c = __builtin_ia32_crc32di(c, w[3]);
        c = __builtin_ia32_crc32di(c, w[4]); c = __builtin_ia32_crc32di(c, w[5]);
        c = __builtin_ia32_crc32di(c, w[6]); c = __builtin_ia32_crc32di(c, w[7]);
        p += 64; n -= 64;
    }
    while (n >= 8) { uint64_t w; memcpy(&w, p, 8); c = __builtin_ia32_crc32di(c, w); p += 8; n -= 8; }
    while (n > 0) { c = __builtin_ia32_crc32qi((uint32_t)c, *p++); n--; }
    return (uint32_t)c;
}
#endif

static int crc32c_mode;  // 0 table, 1 SSE4.2
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void) {
    crc32c_make_table();
#if defined(__x86_64__)
    __builtin_cpu_init();
    crc32c_mode = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
}

uint32_t passerelle_crc32c(uint32_t crc, const void *bytes, size_t length) {
    pthread_once(&crc32c_once, crc32c_init);
    crc = ~crc;
#if defined(__x86_64__)
    if (crc32c_mode == 1) return ~crc32c_hardware(crc, (const uint8_t *)bytes, length);
#endif
    return ~crc32c_portable(crc, (const uint8_t *)bytes, length);
}
