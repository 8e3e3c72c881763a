/*
 * diskio: cumulative I/O counters of each whole block device from
 * /proc/diskstats. Counters, not rates: they only grow (until a reboot or
 * a 32-bit wrap on old kernels), and the receiver takes differences, so a
 * lost sample loses no I/O.
 *
 * Whole disks are the names listed in /sys/block (partitions are not);
 * loop and ram devices are skipped. The device set is fixed at probe.
 * Per device:
 *   <dev>.read_bytes, <dev>.write_bytes   sectors * 512 (diskstats' sector
 *                                         is always 512 bytes)
 *   <dev>.reads, <dev>.writes             completed requests
 *   <dev>.io_time                         ms the device had I/O in flight
 * Param `devices`: comma-separated device names (default: every disk).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "edgetel/platform.h"

#define DISKSTATS_PATH "/proc/diskstats"
#define DISKSTATS_CAP 65536

enum { IO_READ_BYTES, IO_WRITE_BYTES, IO_READS, IO_WRITES, IO_TIME, IO_N };

static const char *const io_names[IO_N] = {
    [IO_READ_BYTES] = "read_bytes", [IO_WRITE_BYTES] = "write_bytes",
    [IO_READS] = "reads", [IO_WRITES] = "writes", [IO_TIME] = "io_time",
};
static const char *const io_units[IO_N] = {
    [IO_READ_BYTES] = "By", [IO_WRITE_BYTES] = "By", [IO_READS] = "1",
    [IO_WRITES] = "1", [IO_TIME] = "ms",
};

struct diskio_dev {
    char name[32];
    int64_t v[IO_N];
    bool valid;
};

struct diskio_priv {
    struct et_chan_table chans;
    struct diskio_dev *devs;
    size_t n_devs;
    struct et_fs_file diskstats;   /* kept open between rounds */
    char *text;
};

/* What the config gives probe (driver.h). */
struct diskio_params {
    char *devices;
};

static const struct et_key diskio_keys[] = {
    { "devices", ET_KEY_LIST, ET_KEY_FIELD(struct diskio_params, devices), NULL,
      .help = "block devices, e.g. mmcblk0, sda (default: whole disks, not loop or ram)" },
};

/* A diskstats line's "major minor name"; *rest points past the name. */
static bool parse_name(const char *line, char *name, size_t cap, const char **rest)
{
    const char *q = line;
    uint64_t major, minor;

    if (!et_scan_u64(&q, &major) || !et_scan_u64(&q, &minor) || !et_scan_word(&q, name, cap))
        return false;
    *rest = q;
    return true;
}

/* The 11 counters after the name. */
static bool parse_counters(const char *q, uint64_t f[11])
{
    for (size_t i = 0; i < 11; i++)
        if (!et_scan_u64(&q, &f[i]))
            return false;
    return true;
}

/* One diskstats line: "major minor name" then at least 11 counters. */
static bool parse_line(const char *line, char *name, size_t cap, uint64_t f[11])
{
    const char *rest;

    return parse_name(line, name, cap, &rest) && parse_counters(rest, f);
}

static bool is_whole_disk(const struct et_name_list *sys_block, const char *name)
{
    if (!sys_block) /* no /sys/block to ask: take every device */
        return true;
    for (size_t i = 0; i < sys_block->n; i++)
        if (strcmp(sys_block->names[i], name) == 0)
            return true;
    return false;
}

static void diskio_remove(struct et_dev *dev)
{
    struct diskio_priv *p = dev->priv;

    free(p->devs);
    free(p->text);
    et_fs_file_close(&p->diskstats);
    et_chans_free(&p->chans);
    memset(p, 0, sizeof(*p));
}

static int diskio_probe(struct et_dev *dev, const void *params)
{
    const struct diskio_params *prm = params;
    struct diskio_priv *p = dev->priv;
    const char *list = prm->devices;
    struct et_name_list sys_block;
    bool have_sys_block;
    const char *cursor;
    const char *line;
    size_t len;
    ssize_t n;
    int ret;

    p->text = malloc(DISKSTATS_CAP);
    if (!p->text)
        return -ENOMEM;
    p->diskstats.path = DISKSTATS_PATH;
    n = et_fs_reread(&p->diskstats, p->text, DISKSTATS_CAP);
    if (n < 0 && n != -EFBIG) {
        ret = et_dev_fail(dev, n == -ENOENT ? -ENODEV : (int)n, DISKSTATS_PATH ": %s",
                          strerror((int)-n));
        goto err;
    }
    have_sys_block = et_list_names("/sys/block", "", &sys_block) == 0;
    cursor = p->text;
    ret = 0;
    while ((line = et_next_line(&cursor, &len)) != NULL) {
        struct diskio_dev *grown;
        uint64_t f[11];
        char name[32];

        if (!parse_line(line, name, sizeof(name), f))
            continue;
        if (list ? !et_list_has(list, name)
                 : (strncmp(name, "loop", 4) == 0 || strncmp(name, "ram", 3) == 0 ||
                    !is_whole_disk(have_sys_block ? &sys_block : NULL, name)))
            continue;
        grown = realloc(p->devs, (p->n_devs + 1) * sizeof(*grown));
        if (!grown) {
            ret = -ENOMEM;
            break;
        }
        p->devs = grown;
        memset(&p->devs[p->n_devs], 0, sizeof(p->devs[0]));
        snprintf(p->devs[p->n_devs].name, sizeof(p->devs[0].name), "%s", name);
        p->n_devs++;
        et_name_sanitize(name);
        for (size_t c = 0; c < IO_N && ret >= 0; c++) {
            ret = et_chans_add(&p->chans, io_units[c], ET_TYPE_I64, "%s.%s", name, io_names[c]);
            /* Bytes are sectors of 512 (/proc/diskstats) */
            if (ret >= 0 && strcmp(io_units[c], "By") == 0)
                p->chans.ch[ret].resolution = 512;
        }
        if (ret < 0)
            break;
    }
    if (have_sys_block)
        et_name_list_free(&sys_block);
    if (ret < 0)
        goto err;
    if (p->n_devs == 0) {
        ret = list ? et_dev_fail(dev, -ENODEV, "none of the devices \"%s\" is in " DISKSTATS_PATH,
                                 list)
                   : et_dev_fail(dev, -ENODEV, DISKSTATS_PATH ": no disks besides loop and ram");
        goto err;
    }
    et_chans_attach(&p->chans, dev);
    return 0;

err:
    diskio_remove(dev);
    return ret;
}

static int diskio_fetch(struct et_dev *dev)
{
    struct diskio_priv *p = dev->priv;
    const char *cursor;
    const char *line;
    size_t len;
    ssize_t n;

    for (size_t i = 0; i < p->n_devs; i++)
        p->devs[i].valid = false;
    n = et_fs_reread(&p->diskstats, p->text, DISKSTATS_CAP);
    if (n < 0 && n != -EFBIG)
        return et_dev_fail(dev, (int)n, DISKSTATS_PATH ": %s", strerror((int)-n));
    cursor = p->text;
    while ((line = et_next_line(&cursor, &len)) != NULL) {
        const char *rest;
        uint64_t f[11];
        char name[32];

        /* Counters are read for the devices taken only (not every partition and loop). */
        if (!parse_name(line, name, sizeof(name), &rest))
            continue;
        for (size_t i = 0; i < p->n_devs; i++) {
            struct diskio_dev *d = &p->devs[i];

            if (strcmp(d->name, name) != 0)
                continue;
            if (!parse_counters(rest, f))
                break;
            /* fields: 0 reads, 2 sectors read, 4 writes, 6 sectors written, 9 io ms */
            if (f[2] > INT64_MAX / 512 || f[6] > INT64_MAX / 512 || f[0] > INT64_MAX ||
                f[4] > INT64_MAX || f[9] > INT64_MAX)
                break;
            d->v[IO_READS] = (int64_t)f[0];
            d->v[IO_READ_BYTES] = (int64_t)f[2] * 512;
            d->v[IO_WRITES] = (int64_t)f[4];
            d->v[IO_WRITE_BYTES] = (int64_t)f[6] * 512;
            d->v[IO_TIME] = (int64_t)f[9];
            d->valid = true;
            break;
        }
    }
    return 0;
}

static int diskio_get(struct et_dev *dev, unsigned ch, struct et_value *out)
{
    struct diskio_priv *p = dev->priv;
    const struct diskio_dev *d;

    if (ch >= p->chans.n)
        return -EINVAL;
    d = &p->devs[ch / IO_N];
    if (!d->valid)
        return et_dev_fail(dev, -ENODATA, "%s: not in " DISKSTATS_PATH " (removed?)", d->name);
    *out = et_value_i64(d->v[ch % IO_N]);
    return 0;
}

const struct et_driver et_driver_diskio = {
    .name = "diskio",
    .help = "bytes and requests read and written, and busy time, per disk (/proc/diskstats)",
    .priv_size = sizeof(struct diskio_priv),
    .params = diskio_keys,
    .n_params = sizeof(diskio_keys) / sizeof(diskio_keys[0]),
    .params_size = sizeof(struct diskio_params),
    .probe = diskio_probe,
    .fetch = diskio_fetch,
    .get = diskio_get,
    .remove = diskio_remove,
};
