/*
 * Clocks and boot identity from the Linux kernel.
 */
/* 64-bit time_t on 32-bit ARM (glibc >= 2.34), so the clocks survive 2038.
 * _TIME_BITS=64 requires _FILE_OFFSET_BITS=64. Must come before any #include. */
#define _FILE_OFFSET_BITS 64
#define _TIME_BITS 64

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/timex.h>
#include <time.h>

#include "edgetel/platform.h"

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;

    /* CLOCK_BOOTTIME and CLOCK_REALTIME cannot fail with a valid timespec. */
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t et_time_mono_ms(void)
{
    return clock_ms(CLOCK_BOOTTIME);
}

int64_t et_time_wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

bool et_time_synced(void)
{
    struct timex tx;
    int state;

    memset(&tx, 0, sizeof(tx)); /* modes = 0: read only, needs no privilege */
    state = adjtimex(&tx);
    if (state < 0 || state == TIME_ERROR)
        return false;
    return (tx.status & STA_UNSYNC) == 0;
}

static int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void et_time_boot_id(uint8_t out[16])
{
    char text[64];
    ssize_t n;
    size_t got = 0;

    memset(out, 0, 16);
    n = et_fs_read("/proc/sys/kernel/random/boot_id", text, sizeof(text));
    if (n < 0)
        return;
    /* "8-4-4-4-12" hex digits and dashes, then a newline. */
    for (const char *p = text; *p && got < 32; p++) {
        int d;

        if (*p == '-')
            continue;
        d = hex_digit((unsigned char)*p);
        if (d < 0)
            break;
        out[got / 2] = (uint8_t)(out[got / 2] | (got % 2 ? d : d << 4));
        got++;
    }
    if (got != 32)
        memset(out, 0, 16);
}
