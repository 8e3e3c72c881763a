/*
 * procs: how many processes and threads the board runs.
 *   processes  numeric entries of /proc (one per process), counted from
 *              large directory reads of /proc kept open, at most every
 *              processes_every (10 s): listing /proc costs the kernel a
 *              lookup per process, the most of any channel of the default
 *              set (a quarter of the agent's kernel time at 1 s rounds).
 *              Rounds between have no processes value.
 *   threads    all kernel scheduling entities, the denominator of
 *              /proc/loadavg's "running/total"
 *   running    its numerator, the kernel's nr_running() (what /proc/stat
 *              says as procs_running)
 *   blocked    procs_blocked of /proc/stat, read with processes: the cpu
 *              collector reads /proc/stat every round already, and each
 *              read makes the kernel print every interrupt's count
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "edgetel/platform.h"

#define STAT_CAP 16384

enum { PROCS_PROCESSES, PROCS_THREADS, PROCS_RUNNING, PROCS_BLOCKED, PROCS_N };

static const struct et_channel procs_channels[] = {
    [PROCS_PROCESSES] = { .name = "processes", .unit = "1", .type = ET_TYPE_I64 },
    [PROCS_THREADS] = { .name = "threads", .unit = "1", .type = ET_TYPE_I64 },
    [PROCS_RUNNING] = { .name = "running", .unit = "1", .type = ET_TYPE_I64 },
    [PROCS_BLOCKED] = { .name = "blocked", .unit = "1", .type = ET_TYPE_I64 },
};

struct procs_params {
    int64_t every_ms;
};

static const struct et_key procs_keys[] = {
    { "processes_every", ET_KEY_DURATION, ET_KEY_FIELD(struct procs_params, every_ms), "10s", 0,
      3600 * 1000,
      .help = "how often the processes are counted (listing /proc is the costly part); "
              "0: every round" },
};

struct procs_priv {
    int64_t v[PROCS_N];
    bool valid[PROCS_N];
    bool skipped;                  /* processes not counted this round (not due) */
    int64_t every_ms;
    int64_t counted_ms;            /* when they were last counted; 0 never */
    struct et_fs_file proc_dir, loadavg_file, stat_file;   /* kept open between rounds */
    char *stat;
};

static void read_loadavg_threads(struct procs_priv *p)
{
    char text[256];
    const char *q = text;
    double avg;
    uint64_t running, total;

    if (et_fs_reread(&p->loadavg_file, text, sizeof(text)) < 0)
        return;
    if (et_scan_f64(&q, &avg) && et_scan_f64(&q, &avg) && et_scan_f64(&q, &avg) &&
        et_scan_u64(&q, &running) && *q++ == '/' && et_scan_u64(&q, &total) &&
        total <= INT64_MAX && running <= total) {
        p->v[PROCS_THREADS] = (int64_t)total;
        p->valid[PROCS_THREADS] = true;
        /* The kernel's nr_running(), as /proc/stat's procs_running. */
        p->v[PROCS_RUNNING] = (int64_t)running;
        p->valid[PROCS_RUNNING] = true;
    }
}

static void read_stat_counts(struct procs_priv *p)
{
    static const struct {
        const char *key;
        unsigned ch;
    } keys[] = { { "procs_blocked ", PROCS_BLOCKED } };
    const char *cursor = p->stat;
    const char *line;
    ssize_t n;
    size_t len;

    n = et_fs_reread(&p->stat_file, p->stat, STAT_CAP);
    if (n < 0 && n != -EFBIG)
        return;
    while ((line = et_next_line(&cursor, &len)) != NULL) {
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            const char *q = line + strlen(keys[k].key);
            uint64_t v;

            if (et_line_starts(line, len, keys[k].key) && et_scan_u64(&q, &v) && v <= INT64_MAX) {
                p->v[keys[k].ch] = (int64_t)v;
                p->valid[keys[k].ch] = true;
            }
        }
    }
}

static int procs_fetch(struct et_dev *dev)
{
    struct procs_priv *p = dev->priv;
    uint64_t count = 0;
    int ret;

    int64_t now = et_time_mono_ms();

    memset(p->valid, 0, sizeof(p->valid));
    /* Due a little early: rounds come at the interval, give or take. */
    p->skipped = p->counted_ms && p->every_ms && now - p->counted_ms < p->every_ms - 500;
    if (!p->skipped) {
        ret = et_fs_count_numeric(&p->proc_dir, &count);
        if (ret < 0)
            return et_dev_fail(dev, ret, "/proc: %s", strerror(-ret));
        p->v[PROCS_PROCESSES] = (int64_t)count;
        p->valid[PROCS_PROCESSES] = count > 0;
        p->counted_ms = now ? now : 1;
    }
    read_loadavg_threads(p);
    if (!p->skipped)
        read_stat_counts(p);
    return 0;
}

static int procs_probe(struct et_dev *dev, const void *params)
{
    const struct procs_params *prm = params;
    struct procs_priv *p = dev->priv;
    int ret;

    p->every_ms = prm ? prm->every_ms : 0;
    p->stat = malloc(STAT_CAP);
    if (!p->stat)
        return -ENOMEM;
    p->proc_dir.path = "/proc";
    p->loadavg_file.path = "/proc/loadavg";
    p->stat_file.path = "/proc/stat";
    ret = procs_fetch(dev);
    p->counted_ms = 0;   /* the first round counts too */
    if (ret == 0 && !p->valid[PROCS_PROCESSES])
        ret = et_dev_fail(dev, -ENODEV, "/proc: no process entries (procfs not mounted?)");
    else if (ret == -ENOENT)
        ret = -ENODEV;
    if (ret < 0) {
        free(p->stat);
        p->stat = NULL;
        et_fs_file_close(&p->proc_dir);
        et_fs_file_close(&p->loadavg_file);
        et_fs_file_close(&p->stat_file);
    }
    return ret;
}

static int procs_get(struct et_dev *dev, unsigned ch, struct et_value *out)
{
    struct procs_priv *p = dev->priv;

    if (ch >= PROCS_N)
        return -EINVAL;
    if ((ch == PROCS_PROCESSES || ch == PROCS_BLOCKED) && p->skipped)
        return -ENODATA;   /* not due this round: no value, no trouble */
    if (!p->valid[ch])
        return et_dev_fail(dev, -ENODATA, "%s: not readable from /proc this round",
                           procs_channels[ch].name);
    *out = et_value_i64(p->v[ch]);
    return 0;
}

static void procs_remove(struct et_dev *dev)
{
    struct procs_priv *p = dev->priv;

    free(p->stat);
    p->stat = NULL;
    et_fs_file_close(&p->proc_dir);
    et_fs_file_close(&p->loadavg_file);
    et_fs_file_close(&p->stat_file);
}

const struct et_driver et_driver_procs = {
    .name = "procs",
    .help = "number of processes and threads, running and blocked (/proc)",
    .priv_size = sizeof(struct procs_priv),
    .params = procs_keys,
    .n_params = sizeof(procs_keys) / sizeof(procs_keys[0]),
    .params_size = sizeof(struct procs_params),
    .channels = procs_channels,
    .n_channels = PROCS_N,
    .probe = procs_probe,
    .fetch = procs_fetch,
    .get = procs_get,
    .remove = procs_remove,
};
