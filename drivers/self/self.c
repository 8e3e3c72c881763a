/*
 * self: what the agent itself costs the board.
 *   rss          resident memory, VmRSS of /proc/self/status (bytes)
 *   threads      Threads of /proc/self/status
 *   cpu_user, cpu_system  CPU seconds since start, utime and stime of
 *                /proc/self/stat in clock ticks (USER_HZ)
 *   write_bytes  bytes the agent caused to be written to storage, from
 *                /proc/self/io; this is what wears an SD card. Kernels
 *                without task I/O accounting have no /proc/self/io, and
 *                then only this channel has no data.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "edgetel/platform.h"

enum { SELF_RSS, SELF_THREADS, SELF_CPU_USER, SELF_CPU_SYSTEM, SELF_WRITE_BYTES, SELF_N };

static const struct et_channel self_channels[] = {
    /* Resident pages are 4 KiB or a multiple; CPU time counts clock ticks
     * (100 a second); writes reach the disk in sectors. */
    [SELF_RSS] = { .name = "rss", .unit = "By", .type = ET_TYPE_I64, .resolution = 4096 },
    [SELF_THREADS] = { .name = "threads", .unit = "1", .type = ET_TYPE_I64 },
    [SELF_CPU_USER] = { .name = "cpu_user", .unit = "s", .type = ET_TYPE_F64,
                        .resolution = 0.01 },
    [SELF_CPU_SYSTEM] = { .name = "cpu_system", .unit = "s", .type = ET_TYPE_F64,
                          .resolution = 0.01 },
    [SELF_WRITE_BYTES] = { .name = "write_bytes", .unit = "By", .type = ET_TYPE_I64,
                           .resolution = 512 },
};

struct self_priv {
    int64_t rss;
    int64_t threads;
    double cpu[2];
    int64_t write_bytes;
    bool valid[SELF_N];
    long ticks_per_s;
    struct et_fs_file status, stat, io;   /* kept open between rounds */
};

static void read_status(struct self_priv *p)
{
    char text[4096];
    uint64_t v;

    if (et_fs_reread(&p->status, text, sizeof(text)) < 0)
        return;
    if (et_text_field_u64(text, "VmRSS:", &v) && v <= INT64_MAX / 1024) {
        p->rss = (int64_t)v * 1024;
        p->valid[SELF_RSS] = true;
    }
    if (et_text_field_u64(text, "Threads:", &v) && v > 0 && v <= INT64_MAX) {
        p->threads = (int64_t)v;
        p->valid[SELF_THREADS] = true;
    }
}

/* "pid (comm) state ppid ...": comm may hold spaces and ')', so fields are
 * counted from the last ')'. utime and stime are fields 14 and 15. */
static void read_stat(struct self_priv *p)
{
    char text[1024];
    const char *q;
    uint64_t v[13];
    char state[8];

    if (et_fs_reread(&p->stat, text, sizeof(text)) < 0)
        return;
    q = strrchr(text, ')');
    if (!q)
        return;
    q++;
    if (!et_scan_word(&q, state, sizeof(state)))
        return;
    /* fields 4..15; ppid, pgrp, session, tty_nr and tpgid may be -1 */
    for (size_t i = 0; i < 12; i++) {
        int64_t s;

        if (!et_scan_i64(&q, &s))
            return;
        v[i] = (uint64_t)s;
    }
    p->cpu[0] = (double)v[10] / (double)p->ticks_per_s;
    p->cpu[1] = (double)v[11] / (double)p->ticks_per_s;
    p->valid[SELF_CPU_USER] = true;
    p->valid[SELF_CPU_SYSTEM] = true;
}

static void read_io(struct self_priv *p)
{
    uint64_t v;

    if (et_self_write_bytes_kept(&p->io, &v) == 0 && v <= INT64_MAX) {
        p->write_bytes = (int64_t)v;
        p->valid[SELF_WRITE_BYTES] = true;
    }
}

static int self_fetch(struct et_dev *dev)
{
    struct self_priv *p = dev->priv;

    memset(p->valid, 0, sizeof(p->valid));
    read_status(p);
    read_stat(p);
    read_io(p);
    if (!p->valid[SELF_RSS] && !p->valid[SELF_CPU_USER])
        return et_dev_fail(dev, -ENODATA,
                           "/proc/self/status and /proc/self/stat: unreadable or malformed");
    return 0;
}

static int self_probe(struct et_dev *dev, const void *params)
{
    struct self_priv *p = dev->priv;
    int ret;

    p->status.path = "/proc/self/status";
    p->stat.path = "/proc/self/stat";
    /* USER_HZ is part of the kernel ABI (100 on arm, arm64, x86). */
    p->ticks_per_s = sysconf(_SC_CLK_TCK);
    if (p->ticks_per_s <= 0)
        p->ticks_per_s = 100;
    ret = self_fetch(dev);
    if (ret) {   /* a failed probe is not removed */
        et_fs_file_close(&p->status);
        et_fs_file_close(&p->stat);
        et_fs_file_close(&p->io);
    }
    return ret == -ENODATA ? -ENODEV : ret;
}

static void self_remove(struct et_dev *dev)
{
    struct self_priv *p = dev->priv;

    et_fs_file_close(&p->status);
    et_fs_file_close(&p->stat);
    et_fs_file_close(&p->io);
}

static int self_get(struct et_dev *dev, unsigned ch, struct et_value *out)
{
    struct self_priv *p = dev->priv;

    if (ch >= SELF_N)
        return -EINVAL;
    if (!p->valid[ch])
        return et_dev_fail(dev, -ENODATA, "%s: not readable from /proc/self this round",
                           self_channels[ch].name);
    switch (ch) {
    case SELF_RSS:
        *out = et_value_i64(p->rss);
        break;
    case SELF_THREADS:
        *out = et_value_i64(p->threads);
        break;
    case SELF_CPU_USER:
    case SELF_CPU_SYSTEM:
        *out = et_value_f64(p->cpu[ch - SELF_CPU_USER]);
        break;
    default:
        *out = et_value_i64(p->write_bytes);
        break;
    }
    return 0;
}

const struct et_driver et_driver_self = {
    .name = "self",
    .help = "the agent's own memory, threads, CPU time and bytes written to storage",
    .priv_size = sizeof(struct self_priv),
    .channels = self_channels,
    .n_channels = SELF_N,
    .probe = self_probe,
    .fetch = self_fetch,
    .get = self_get,
    .remove = self_remove,
};
