/*
 * memory: RAM and swap from /proc/meminfo, in bytes.
 *   available  MemAvailable (the kernel's estimate of what can be allocated
 *              without swapping); on kernels before 3.14, which lack it,
 *              MemFree + Buffers + Cached
 *   used       total - available; used_pct its share of total
 */
#include <errno.h>
#include <string.h>

#include "common.h"
#include "edgetel/platform.h"

#define MEMINFO_PATH "/proc/meminfo"

enum { MEM_TOTAL, MEM_AVAILABLE, MEM_USED, MEM_USED_PCT, MEM_SWAP_TOTAL, MEM_SWAP_USED, MEM_N };

static const struct et_channel memory_channels[] = {
    /* /proc/meminfo counts in KiB */
    [MEM_TOTAL] = { .name = "total", .unit = "By", .type = ET_TYPE_I64, .resolution = 1024 },
    [MEM_AVAILABLE] = { .name = "available", .unit = "By", .type = ET_TYPE_I64,
                        .resolution = 1024 },
    [MEM_USED] = { .name = "used", .unit = "By", .type = ET_TYPE_I64, .resolution = 1024 },
    [MEM_USED_PCT] = { .name = "used_pct", .unit = "%", .type = ET_TYPE_F64,
                       .resolution = 0.01 },
    [MEM_SWAP_TOTAL] = { .name = "swap_total", .unit = "By", .type = ET_TYPE_I64,
                         .resolution = 1024 },
    [MEM_SWAP_USED] = { .name = "swap_used", .unit = "By", .type = ET_TYPE_I64,
                        .resolution = 1024 },
};

struct memory_priv {
    struct et_fs_file meminfo;   /* kept open between rounds */
    int64_t bytes[MEM_N];
    double used_pct;
    bool swap_valid;
    bool valid;
};

/* The meminfo fields this driver reads, in kB. */
enum { MI_TOTAL, MI_FREE, MI_AVAILABLE, MI_BUFFERS, MI_CACHED, MI_SWAP_TOTAL, MI_SWAP_FREE, MI_N };
static const char *const meminfo_keys[MI_N] = {
    [MI_TOTAL] = "MemTotal:", [MI_FREE] = "MemFree:", [MI_AVAILABLE] = "MemAvailable:",
    [MI_BUFFERS] = "Buffers:", [MI_CACHED] = "Cached:", [MI_SWAP_TOTAL] = "SwapTotal:",
    [MI_SWAP_FREE] = "SwapFree:",
};

static int memory_read(struct et_dev *dev, struct memory_priv *out)
{
    char text[4096];
    uint64_t kb[MI_N] = { 0 };
    bool have[MI_N] = { false };
    const char *cursor = text;
    const char *line;
    uint64_t total, avail;
    size_t len;
    ssize_t n;

    n = et_fs_reread(&out->meminfo, text, sizeof(text));
    if (n < 0 && n != -EFBIG) /* the fields needed are near the top */
        return et_dev_fail(dev, (int)n, MEMINFO_PATH ": %s", strerror((int)-n));
    /* The fields needed are in the first twenty lines: stop at the last. */
    for (size_t found = 0; found < MI_N && (line = et_next_line(&cursor, &len)) != NULL;) {
        for (size_t k = 0; k < MI_N; k++) {
            const char *p;

            if (have[k] || !et_line_starts(line, len, meminfo_keys[k]))
                continue;
            p = line + strlen(meminfo_keys[k]);
            if (et_scan_u64(&p, &kb[k]) && kb[k] <= UINT64_MAX / 1024 / 4)
                have[k] = true;
            found++;
            break;
        }
    }
    if (!have[MI_TOTAL] || kb[MI_TOTAL] == 0)
        return et_dev_fail(dev, -ENODATA, MEMINFO_PATH ": no usable MemTotal line");
    total = kb[MI_TOTAL] * 1024;
    if (have[MI_AVAILABLE])
        avail = kb[MI_AVAILABLE] * 1024;
    else if (have[MI_FREE])
        avail = (kb[MI_FREE] + kb[MI_BUFFERS] + kb[MI_CACHED]) * 1024;
    else
        return et_dev_fail(dev, -ENODATA, MEMINFO_PATH ": neither MemAvailable nor MemFree");
    if (avail > total)
        return et_dev_fail(dev, -ENODATA,
                           MEMINFO_PATH ": available %llu bytes exceeds total %llu",
                           (unsigned long long)avail, (unsigned long long)total);
    out->bytes[MEM_TOTAL] = (int64_t)total;
    out->bytes[MEM_AVAILABLE] = (int64_t)avail;
    out->bytes[MEM_USED] = (int64_t)(total - avail);
    out->used_pct = 100.0 * (double)(total - avail) / (double)total;
    out->swap_valid = have[MI_SWAP_TOTAL] && have[MI_SWAP_FREE] &&
                      kb[MI_SWAP_FREE] <= kb[MI_SWAP_TOTAL];
    if (out->swap_valid) {
        out->bytes[MEM_SWAP_TOTAL] = (int64_t)(kb[MI_SWAP_TOTAL] * 1024);
        out->bytes[MEM_SWAP_USED] = (int64_t)((kb[MI_SWAP_TOTAL] - kb[MI_SWAP_FREE]) * 1024);
    }
    out->valid = true;
    return 0;
}

static int memory_probe(struct et_dev *dev, const void *params)
{
    struct memory_priv *p = dev->priv;
    int ret;

    p->meminfo.path = MEMINFO_PATH;
    ret = memory_read(dev, p);
    if (ret)
        et_fs_file_close(&p->meminfo);   /* a failed probe is not removed */

    if (ret == -ENOENT || ret == -ENODATA)
        return -ENODEV; /* dev->err already names the file and the cause */
    return ret;
}

static int memory_fetch(struct et_dev *dev)
{
    struct memory_priv *p = dev->priv;
    int ret;

    p->valid = false;
    ret = memory_read(dev, p);
    return ret;
}

static int memory_get(struct et_dev *dev, unsigned ch, struct et_value *out)
{
    struct memory_priv *p = dev->priv;

    if (ch >= MEM_N)
        return -EINVAL;
    if (!p->valid)
        return et_dev_fail(dev, -ENODATA, MEMINFO_PATH ": no reading this round");
    if ((ch == MEM_SWAP_TOTAL || ch == MEM_SWAP_USED) && !p->swap_valid)
        return et_dev_fail(dev, -ENODATA, MEMINFO_PATH ": no consistent SwapTotal/SwapFree");
    if (ch == MEM_USED_PCT)
        *out = et_value_f64(p->used_pct);
    else
        *out = et_value_i64(p->bytes[ch]);
    return 0;
}

static void memory_remove(struct et_dev *dev)
{
    struct memory_priv *p = dev->priv;

    et_fs_file_close(&p->meminfo);
}

const struct et_driver et_driver_memory = {
    .name = "memory",
    .help = "RAM total, available, used and swap, in bytes (/proc/meminfo)",
    .priv_size = sizeof(struct memory_priv),
    .channels = memory_channels,
    .n_channels = MEM_N,
    .probe = memory_probe,
    .fetch = memory_fetch,
    .get = memory_get,
    .remove = memory_remove,
};
