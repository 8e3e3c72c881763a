/*
 * load: the load averages and task counts of /proc/loadavg,
 * "0.52 0.58 0.59 2/345 6789": load over 1, 5 and 15 minutes, runnable
 * tasks / all tasks, last pid.
 */
#include <errno.h>
#include <string.h>

#include "common.h"
#include "edgetel/platform.h"

#define LOADAVG_PATH "/proc/loadavg"

enum { LOAD_1, LOAD_5, LOAD_15, LOAD_RUNNING, LOAD_TASKS, LOAD_N };

static const struct et_channel load_channels[] = {
    /* /proc/loadavg gives two decimals */
    [LOAD_1] = { .name = "load1", .unit = "1", .type = ET_TYPE_F64, .resolution = 0.01 },
    [LOAD_5] = { .name = "load5", .unit = "1", .type = ET_TYPE_F64, .resolution = 0.01 },
    [LOAD_15] = { .name = "load15", .unit = "1", .type = ET_TYPE_F64, .resolution = 0.01 },
    [LOAD_RUNNING] = { .name = "running", .unit = "1", .type = ET_TYPE_I64 },
    [LOAD_TASKS] = { .name = "tasks", .unit = "1", .type = ET_TYPE_I64 },
};

struct load_priv {
    struct et_fs_file loadavg;   /* kept open between rounds */
    double avg[3];
    uint64_t running;
    uint64_t tasks;
    bool valid;
};

static int load_read(struct et_dev *dev, struct load_priv *out)
{
    char text[256];
    const char *p = text;
    ssize_t n;

    n = et_fs_reread(&out->loadavg, text, sizeof(text));
    if (n < 0)
        return et_dev_fail(dev, (int)n, LOADAVG_PATH ": %s", strerror((int)-n));
    if (!et_scan_f64(&p, &out->avg[0]) || !et_scan_f64(&p, &out->avg[1]) ||
        !et_scan_f64(&p, &out->avg[2]) || !et_scan_u64(&p, &out->running) || *p++ != '/' ||
        !et_scan_u64(&p, &out->tasks))
        return et_dev_fail(dev, -ENODATA, LOADAVG_PATH ": not \"l1 l5 l15 run/all pid\"");
    if (out->running > out->tasks || out->tasks > INT64_MAX)
        return et_dev_fail(dev, -ENODATA, LOADAVG_PATH ": %llu running of %llu tasks",
                           (unsigned long long)out->running, (unsigned long long)out->tasks);
    out->valid = true;
    return 0;
}

static int load_probe(struct et_dev *dev, const void *params)
{
    struct load_priv *p = dev->priv;
    int ret;

    p->loadavg.path = LOADAVG_PATH;
    ret = load_read(dev, p);
    if (ret)
        et_fs_file_close(&p->loadavg);   /* a failed probe is not removed */

    if (ret == -ENOENT || ret == -ENODATA)
        return -ENODEV;
    return ret;
}

static int load_fetch(struct et_dev *dev)
{
    struct load_priv *p = dev->priv;

    p->valid = false;
    return load_read(dev, p);
}

static int load_get(struct et_dev *dev, unsigned ch, struct et_value *out)
{
    struct load_priv *p = dev->priv;

    if (ch >= LOAD_N)
        return -EINVAL;
    if (!p->valid)
        return et_dev_fail(dev, -ENODATA, LOADAVG_PATH ": no reading this round");
    switch (ch) {
    case LOAD_RUNNING:
        *out = et_value_i64((int64_t)p->running);
        break;
    case LOAD_TASKS:
        *out = et_value_i64((int64_t)p->tasks);
        break;
    default:
        *out = et_value_f64(p->avg[ch - LOAD_1]);
        break;
    }
    return 0;
}

static void load_remove(struct et_dev *dev)
{
    struct load_priv *p = dev->priv;

    et_fs_file_close(&p->loadavg);
}

const struct et_driver et_driver_load = {
    .name = "load",
    .help = "load averages over 1, 5 and 15 minutes, running and total tasks (/proc/loadavg)",
    .priv_size = sizeof(struct load_priv),
    .channels = load_channels,
    .n_channels = LOAD_N,
    .probe = load_probe,
    .fetch = load_fetch,
    .get = load_get,
    .remove = load_remove,
};
