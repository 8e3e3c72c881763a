#include "collect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/log.h"

#define PROBE_RETRY_MIN_MS 5000
#define PROBE_RETRY_MAX_MS (5 * 60 * 1000)
#define FETCH_FAILURES_BEFORE_REPROBE 3

int et_collector_init(struct et_collector *c, const struct et_collector_cfg *cfg)
{
    const struct et_driver *drv = et_driver_find(cfg->type);

    memset(c, 0, sizeof(*c));
    if (!drv)
        return -ENOENT;
    c->cfg = cfg;
    c->dev.drv = drv;
    c->dev.name = cfg->name;
    c->retry_delay_ms = PROBE_RETRY_MIN_MS;
    return 0;
}

static void collector_free_names(struct et_collector *c)
{
    for (size_t i = 0; i < c->n_metric_names; i++)
        free(c->metric_names[i]);
    free(c->metric_names);
    c->metric_names = NULL;
    c->n_metric_names = 0;
}

/* Undo a successful probe. */
static void collector_remove(struct et_collector *c)
{
    if (c->state == ET_COLLECTOR_RUNNING && c->dev.drv->remove)
        c->dev.drv->remove(&c->dev);
    collector_free_names(c);
    free(c->dev.priv);
    c->dev.priv = NULL;
    c->state = ET_COLLECTOR_PROBING;
}

void et_collector_fini(struct et_collector *c)
{
    if (!c->dev.drv)
        return;
    collector_remove(c);
}

/* FNV-1a: reasons are remembered by hash, to tell a new one from a repeat. */
static uint32_t reason_hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/*
 * Log a failure reason once: every reason said since the collector last
 * worked is remembered (several channels can fail at once, each with its
 * own reason), and a repeat goes to debug only.
 */
static void collector_report_failure(struct et_collector *c, const char *what, int rc)
{
    char reason[sizeof(c->logged_err)];
    const char *detail = c->dev.err[0] ? c->dev.err : strerror(-rc);
    size_t wl = strlen(what);
    uint32_t h;

    /* Drivers often start their reason with the channel's name already. */
    if (strncmp(detail, what, wl) == 0 && detail[wl] == ':')
        snprintf(reason, sizeof(reason), "%.220s", detail);
    else
        snprintf(reason, sizeof(reason), "%.60s: %.160s", what, detail);
    c->failing = true;
    memcpy(c->logged_err, reason, sizeof(reason));
    h = reason_hash(reason);
    for (size_t i = 0; i < c->n_said; i++) {
        if (c->said[i] == h) {
            et_debug("collector", "[%s:%s] still failing: %s", c->dev.drv->name, c->cfg->name,
                     reason);
            return;
        }
    }
    if (c->n_said < sizeof(c->said) / sizeof(c->said[0]))
        c->said[c->n_said++] = h;
    if (rc == -ENODEV && c->state == ET_COLLECTOR_PROBING && c->rounds_ok == 0)
        /* Hardware this board does not have (Pi firmware flags on a PC): say
         * so once, quietly; a later probe still finds it if it appears. */
        et_info("collector", "[%s:%s] not present: %s", c->dev.drv->name, c->cfg->name, detail);
    else
        et_warn("collector", "[%s:%s] %s (will retry; logged once until it changes)",
                c->dev.drv->name, c->cfg->name, reason);
}

static void collector_report_ok(struct et_collector *c)
{
    if (c->failing && c->n_said)
        et_info("collector", "[%s:%s] recovered", c->dev.drv->name, c->cfg->name);
    c->failing = false;
    c->logged_err[0] = '\0';
    c->n_said = 0;
}

static int collector_build_names(struct et_collector *c)
{
    c->metric_names = calloc(c->dev.n_channels ? c->dev.n_channels : 1, sizeof(char *));
    if (!c->metric_names)
        return -ENOMEM;
    for (size_t i = 0; i < c->dev.n_channels; i++) {
        size_t n = strlen(c->cfg->name) + strlen(c->dev.channels[i].name) + 2;

        c->metric_names[i] = malloc(n);
        if (!c->metric_names[i])
            return -ENOMEM;
        snprintf(c->metric_names[i], n, "%s.%s", c->cfg->name, c->dev.channels[i].name);
        c->n_metric_names = i + 1;
    }
    return 0;
}

int et_collector_probe(struct et_collector *c, int64_t now_ms)
{
    const struct et_driver *drv = c->dev.drv;
    int rc;

    c->dev.err[0] = '\0';
    c->dev.channels = drv->channels;
    c->dev.n_channels = drv->n_channels;
    if (drv->priv_size) {
        c->dev.priv = calloc(1, drv->priv_size);
        if (!c->dev.priv)
            return -ENOMEM;
    }
    rc = drv->probe ? drv->probe(&c->dev, c->cfg->params) : 0;
    c->probe_rc = rc;
    if (rc) {
        free(c->dev.priv);
        c->dev.priv = NULL;
        collector_report_failure(c, "probe failed", rc);
        c->retry_at_ms = now_ms + c->retry_delay_ms;
        c->retry_delay_ms *= 2;
        if (c->retry_delay_ms > PROBE_RETRY_MAX_MS)
            c->retry_delay_ms = PROBE_RETRY_MAX_MS;
        return rc;
    }
    c->state = ET_COLLECTOR_RUNNING;
    rc = collector_build_names(c);
    if (rc) {
        collector_remove(c);
        return rc;
    }
    c->retry_delay_ms = PROBE_RETRY_MIN_MS;
    c->fetch_failures = 0;
    et_debug("collector", "[%s:%s] probed, %zu channels", drv->name, c->cfg->name,
             c->dev.n_channels);
    return 0;
}

int et_collector_round(struct et_collector *c, int64_t now_ms, et_collector_emit emit, void *ctx)
{
    const struct et_driver *drv = c->dev.drv;
    struct et_value v;
    int rc, emitted = 0;
    bool channel_trouble = false;

    if (c->state == ET_COLLECTOR_PROBING) {
        if (now_ms < c->retry_at_ms)
            return -EAGAIN;
        rc = et_collector_probe(c, now_ms);
        if (rc) {
            c->rounds_failed++;
            return rc;
        }
    }

    c->dev.err[0] = '\0';
    rc = drv->fetch(&c->dev);
    if (rc) {
        c->rounds_failed++;
        collector_report_failure(c, "read failed", rc);
        if (++c->fetch_failures >= FETCH_FAILURES_BEFORE_REPROBE) {
            /* Probably unplugged: start over with a probe after a delay. */
            collector_remove(c);
            c->retry_at_ms = now_ms + c->retry_delay_ms;
        }
        return rc;
    }
    c->fetch_failures = 0;

    for (size_t i = 0; i < c->dev.n_channels; i++) {
        c->dev.err[0] = '\0';
        rc = drv->get(&c->dev, (unsigned)i, &v);
        if (rc == -ENODATA && !c->dev.err[0])
            continue;   /* nothing to say this round (an interface that is gone) */
        if (rc) {
            /* A value that failed its check, a bad CRC: skip it, say it once. */
            collector_report_failure(c, c->dev.channels[i].name, rc);
            channel_trouble = true;
            continue;
        }
        v.resolution = c->dev.channels[i].resolution;
        rc = emit(ctx, c->metric_names[i], c->dev.channels[i].unit, &v);
        if (rc)
            return rc;
        emitted++;
    }
    c->rounds_ok++;
    if (!channel_trouble)
        collector_report_ok(c);
    return emitted;
}

bool et_collector_built_in(const struct et_collector *c)
{
    return c->dev.drv != NULL;
}

bool et_collector_absent(const struct et_collector *c)
{
    return c->state != ET_COLLECTOR_RUNNING && c->probe_rc == -ENODEV && c->rounds_ok == 0;
}

bool et_collector_running(const struct et_collector *c)
{
    return c->state == ET_COLLECTOR_RUNNING;
}

bool et_collector_ok(const struct et_collector *c)
{
    return c->state == ET_COLLECTOR_RUNNING && !c->failing;
}

const char *et_collector_reason(const struct et_collector *c)
{
    if (et_collector_absent(c))
        return c->dev.err[0] ? c->dev.err : strerror(ENODEV);
    return c->logged_err;
}

const char *et_collector_tags(const struct et_collector *c)
{
    return c->cfg->tags;
}

const char *et_collector_name(const struct et_collector *c)
{
    return c->cfg->name;
}
