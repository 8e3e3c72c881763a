/*
 * cpu: CPU time shares from /proc/stat, as differences between two
 * snapshots (the counters are cumulative ticks since boot).
 *
 *   usage    100 * (busy ticks) / (all ticks), busy = all - idle - iowait
 *   user     user + nice
 *   system   system + irq + softirq
 *   iowait   iowait
 *   coreN.usage  usage of each CPU online at probe
 *
 * "all" is user+nice+system+idle+iowait+irq+softirq+steal; guest time is
 * already inside user, so it is not added again. probe takes the first
 * snapshot, so the first fetch already reports a difference.
 *
 * Two snapshots within one clock tick (USER_HZ, 10 ms) hold the same
 * counters: the agent fetches right after probe, so that is most starts.
 * Such a channel has no value this round and nothing to say about it (a
 * warning per channel used to greet every start). Counters that went
 * backwards or a core that went offline are worth a line.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "edgetel/platform.h"

/* Percentages to a hundredth: finer than a tick's share of a few seconds. */
#define CPU_RESOLUTION 0.01

#define CPU_STAT_PATH "/proc/stat"
/* /proc/stat's intr line grows with the IRQ count; the cpu lines come first,
 * so a cut file still has everything this driver needs. */
#define CPU_STAT_CAP 16384

enum { CPU_USAGE, CPU_USER, CPU_SYSTEM, CPU_IOWAIT, CPU_N_TOTAL };

static const char *const cpu_total_names[CPU_N_TOTAL] = {
    [CPU_USAGE] = "usage", [CPU_USER] = "user", [CPU_SYSTEM] = "system", [CPU_IOWAIT] = "iowait",
};

/* What a channel holds after a fetch. */
enum cpu_state {
    CPU_NO_TIME = 0,     /* no tick passed between the snapshots: quietly no value */
    CPU_VALID,
    CPU_GONE,            /* offline, or its counters went back: no value, said once */
};

struct cpu_ticks {
    uint64_t all;
    uint64_t idle;     /* idle + iowait */
    uint64_t user;
    uint64_t system;
    uint64_t iowait;
    bool seen;
};

struct cpu_priv {
    struct et_chan_table chans;
    size_t n_cores;
    int *core_ids;               /* the N of cpuN for each core channel */
    struct cpu_ticks *prev;      /* [0] total, [1 + i] core i */
    struct cpu_ticks *cur;
    double *pct;                 /* CPU_N_TOTAL totals, then one per core */
    enum cpu_state *state;       /* per channel, like pct */
    struct et_fs_file stat;      /* /proc/stat, kept open */
    char *text;
};

/* Parse "cpu" or "cpuN" followed by the tick columns. *id is -1 for the total. */
static bool parse_cpu_line(const char *line, size_t len, int *id, struct cpu_ticks *t)
{
    uint64_t v[8] = { 0 };
    const char *p = line + 3;
    uint64_t core;
    size_t i;

    if (!et_line_starts(line, len, "cpu"))
        return false;
    if (*p == ' ') {
        *id = -1;
    } else {
        if (!et_scan_u64(&p, &core) || core > 4095 || *p != ' ')
            return false;
        *id = (int)core;
    }
    /* Old kernels have fewer columns: the first four are always there. */
    for (i = 0; i < 8 && p < line + len; i++)
        if (!et_scan_u64(&p, &v[i]))
            break;
    if (i < 4)
        return false;
    t->user = v[0] + v[1];
    t->system = v[2] + v[5] + v[6];
    t->iowait = v[4];
    t->idle = v[3] + v[4];
    t->all = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
    t->seen = true;
    return true;
}

static int core_index(const struct cpu_priv *p, int id)
{
    for (size_t i = 0; i < p->n_cores; i++)
        if (p->core_ids[i] == id)
            return (int)i;
    return -1;
}

/* Read /proc/stat into snap ([0] total, [1 + i] core i). */
static int read_snapshot(struct et_dev *dev, struct cpu_ticks *snap)
{
    struct cpu_priv *p = dev->priv;
    const char *cursor;
    const char *line;
    ssize_t n;
    size_t len;

    n = et_fs_reread(&p->stat, p->text, CPU_STAT_CAP);
    if (n < 0 && n != -EFBIG)
        return et_dev_fail(dev, (int)n, CPU_STAT_PATH ": %s", strerror((int)-n));
    memset(snap, 0, (1 + p->n_cores) * sizeof(*snap));
    cursor = p->text;
    while ((line = et_next_line(&cursor, &len)) != NULL) {
        struct cpu_ticks t;
        int id;
        int idx;

        if (!et_line_starts(line, len, "cpu"))
            break; /* the cpu lines are the first block */
        if (!parse_cpu_line(line, len, &id, &t))
            continue;
        if (id < 0) {
            snap[0] = t;
        } else if ((idx = core_index(p, id)) >= 0) {
            snap[1 + idx] = t;
        }
    }
    if (!snap[0].seen)
        return et_dev_fail(dev, -ENODATA, CPU_STAT_PATH ": no \"cpu\" line");
    return 0;
}

static void cpu_remove(struct et_dev *dev);

static int cpu_probe(struct et_dev *dev, const void *params)
{
    struct cpu_priv *p = dev->priv;
    const char *cursor;
    const char *line;
    size_t len;
    ssize_t n;
    int ret;

    p->text = malloc(CPU_STAT_CAP);
    if (!p->text)
        return -ENOMEM;
    p->stat.path = CPU_STAT_PATH;
    n = et_fs_reread(&p->stat, p->text, CPU_STAT_CAP);
    if (n < 0 && n != -EFBIG) {
        ret = et_dev_fail(dev, n == -ENOENT ? -ENODEV : (int)n, CPU_STAT_PATH ": %s",
                          strerror((int)-n));
        goto err;
    }
    /* Count the cores online now; each gets a channel. */
    cursor = p->text;
    while ((line = et_next_line(&cursor, &len)) != NULL) {
        struct cpu_ticks t;
        int id;
        int *grown;

        if (!et_line_starts(line, len, "cpu"))
            break;
        if (!parse_cpu_line(line, len, &id, &t) || id < 0)
            continue;
        grown = realloc(p->core_ids, (p->n_cores + 1) * sizeof(*grown));
        if (!grown) {
            ret = -ENOMEM;
            goto err;
        }
        p->core_ids = grown;
        p->core_ids[p->n_cores++] = id;
    }
    for (size_t i = 0; i < CPU_N_TOTAL; i++) {
        ret = et_chans_add(&p->chans, "%", ET_TYPE_F64, "%s", cpu_total_names[i]);
        if (ret < 0)
            goto err;
        p->chans.ch[ret].resolution = CPU_RESOLUTION;
    }
    for (size_t i = 0; i < p->n_cores; i++) {
        ret = et_chans_add(&p->chans, "%", ET_TYPE_F64, "core%d.usage", p->core_ids[i]);
        if (ret < 0)
            goto err;
        p->chans.ch[ret].resolution = CPU_RESOLUTION;
    }
    p->prev = calloc(1 + p->n_cores, sizeof(*p->prev));
    p->cur = calloc(1 + p->n_cores, sizeof(*p->cur));
    p->pct = calloc(p->chans.n, sizeof(*p->pct));
    p->state = calloc(p->chans.n, sizeof(*p->state));
    if (!p->prev || !p->cur || !p->pct || !p->state) {
        ret = -ENOMEM;
        goto err;
    }
    ret = read_snapshot(dev, p->prev);
    if (ret < 0) {
        ret = ret == -ENODATA ? -ENODEV : ret;
        goto err;
    }
    et_chans_attach(&p->chans, dev);
    return 0;

err:
    cpu_remove(dev);
    return ret;
}

static double share(uint64_t part, uint64_t all)
{
    return 100.0 * (double)part / (double)all;
}

static int cpu_fetch(struct et_dev *dev)
{
    struct cpu_priv *p = dev->priv;
    struct cpu_ticks *swap;
    int ret;

    ret = read_snapshot(dev, p->cur);
    if (ret < 0)
        return ret;
    for (size_t i = 0; i < 1 + p->n_cores; i++) {
        const struct cpu_ticks *a = &p->prev[i];
        const struct cpu_ticks *b = &p->cur[i];
        size_t first = i == 0 ? 0 : CPU_N_TOTAL + i - 1;
        size_t n = i == 0 ? CPU_N_TOTAL : 1;
        enum cpu_state state = CPU_VALID;
        uint64_t all = 0;
        uint64_t idle = 0;

        if (!b->seen)
            state = CPU_GONE;           /* offline now */
        else if (!a->seen)
            state = CPU_NO_TIME;        /* back online: this is its first snapshot */
        else if (b->all == a->all && b->idle == a->idle && b->user == a->user &&
                 b->system == a->system && b->iowait == a->iowait)
            state = CPU_NO_TIME;
        else if (b->all <= a->all || b->idle < a->idle || b->user < a->user ||
                 b->system < a->system || b->iowait < a->iowait ||
                 b->idle - a->idle > b->all - a->all)
            state = CPU_GONE;           /* counters reset or inconsistent */
        if (state == CPU_VALID) {
            all = b->all - a->all;
            idle = b->idle - a->idle;
        }
        for (size_t c = first; c < first + n; c++)
            p->state[c] = state;
        if (state != CPU_VALID)
            continue;
        if (i == 0) {
            p->pct[CPU_USAGE] = share(all - idle, all);
            p->pct[CPU_USER] = share(b->user - a->user, all);
            p->pct[CPU_SYSTEM] = share(b->system - a->system, all);
            p->pct[CPU_IOWAIT] = share(b->iowait - a->iowait, all);
        } else {
            p->pct[first] = share(all - idle, all);
        }
    }
    swap = p->prev;
    p->prev = p->cur;
    p->cur = swap;
    return 0;
}

static int cpu_get(struct et_dev *dev, unsigned ch, struct et_value *out)
{
    struct cpu_priv *p = dev->priv;

    if (ch >= p->chans.n)
        return -EINVAL;
    /* -ENODATA without a reason: nothing to report this round (driver.h). */
    if (p->state[ch] == CPU_NO_TIME)
        return -ENODATA;
    if (p->state[ch] == CPU_GONE)
        return et_dev_fail(dev, -ENODATA, "%s: the CPU went offline or its counters were reset",
                           p->chans.ch[ch].name);
    *out = et_value_f64(p->pct[ch]);
    return 0;
}

static void cpu_remove(struct et_dev *dev)
{
    struct cpu_priv *p = dev->priv;

    free(p->state);
    free(p->pct);
    free(p->cur);
    free(p->prev);
    free(p->core_ids);
    free(p->text);
    et_fs_file_close(&p->stat);
    et_chans_free(&p->chans);
    memset(p, 0, sizeof(*p));
}

const struct et_driver et_driver_cpu = {
    .name = "cpu",
    .help = "CPU usage, user, system and iowait shares, and usage per core (/proc/stat)",
    .priv_size = sizeof(struct cpu_priv),
    .probe = cpu_probe,
    .fetch = cpu_fetch,
    .get = cpu_get,
    .remove = cpu_remove,
};
