/*
 * The agent's life cycle and event loop.
 *
 * One thread does everything: poll() waits on the stop descriptor and the
 * uplink's event descriptor, with a timeout to the next scheduled job.
 * Jobs on the scheduler: a round of each collector, a flush of the open
 * batch into the outbox (batcher.h), the group commit, the agent's own
 * health metrics (health.h) and a Status every minute. After each pass the
 * uplink sends what its window allows (uplink.h); the clock is read once
 * per pass and gates the first connect (clock.h).
 */
#include "edgetel/agent.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent_internal.h"
#include "batcher.h"
#include "clock.h"
#include "collect.h"
#include "enroll.h"
#include "health.h"
#include "reconf.h"
#include "uplink.h"
#include "edgetel/log.h"
#include "edgetel/outbox.h"
#include "edgetel/platform.h"
#include "edgetel/sched.h"
#include "edgetel/version.h"

#define STATUS_INTERVAL_MS (60 * 1000)
#define HEALTH_INTERVAL_MS (30 * 1000)
/* poll() wakes at least this often to look at ack timeouts. */
#define MAX_POLL_MS 1000

/* ---- collecting ------------------------------------------------------------ */

static int agent_emit(void *ctx, const char *metric, const char *unit, const struct et_value *v)
{
    struct et_agent *a = ctx;
    int rc = et_batcher_add(a->batcher, metric, unit, a->round_tags, a->round_mono_ms, v,
                            a->round_tq);

    if (rc == -EINVAL) {
        et_warn("collector", "%s: value not accepted (string too long)", metric);
        return 0;
    }
    return rc;
}

/* Encode the open batch into the outbox; send it at once, stored or not (batcher.h). */
static void agent_flush(struct et_agent *a, int64_t now_ms)
{
    et_batcher_flush(a->batcher, now_ms);
    et_uplink_pump(a->uplink, now_ms);
}

static void collector_job(void *ctx, int64_t now_ms)
{
    struct collector_job *job = ctx;
    struct et_agent *a = job->agent;

    a->round_mono_ms = now_ms;
    a->round_tq = et_clock_quality(&a->clock);
    a->round_tags = et_collector_tags(job->collector);
    et_collector_round(job->collector, now_ms, agent_emit, a);
    a->round_tags = NULL;
    if (et_batcher_full(a->batcher))
        agent_flush(a, now_ms);
}

static void flush_job(void *ctx, int64_t now_ms)
{
    agent_flush(ctx, now_ms);
}

static void commit_job(void *ctx, int64_t now_ms)
{
    struct et_agent *a = ctx;

    et_batcher_commit(a->batcher);
}

static void health_job(void *ctx, int64_t now_ms)
{
    struct et_agent *a = ctx;
    struct et_outbox_stats ob;
    struct et_uplink_stats up;
    struct et_health_input in = {
        .outbox = &ob,
        .batcher = et_batcher_stats(a->batcher),
        .uplink = &up,
        .collectors = a->collectors,
        .n_collectors = a->n_collectors,
    };

    if (et_outbox_stats(a->outbox, &ob) != 0)
        return;
    et_uplink_stats(a->uplink, &up);
    a->round_mono_ms = now_ms;
    a->round_tq = et_clock_quality(&a->clock);
    et_health_report(&a->health, &in, agent_emit, a);
}

static void status_job(void *ctx, int64_t now_ms)
{
    struct et_agent *a = ctx;

    et_uplink_status(a->uplink, true, NULL);
}

/* The agent's part of every Status the uplink sends. */
static void status_fill(void *ctx, struct et_status *st)
{
    struct et_agent *a = ctx;
    struct et_outbox_stats ob = { 0 };

    et_outbox_stats(a->outbox, &ob);
    st->boot_id = a->boot_id;
    st->wall_ms = et_time_wall_ms();
    st->agent_version = ET_VERSION;
    st->outbox_batches = ob.batches;
    /* The outbox counts the batcher's drops too (et_outbox_count_dropped). */
    st->dropped_samples = ob.dropped_samples;
    st->clock_synced = a->clock.synced;
    st->not_persisted_samples = et_batcher_stats(a->batcher)->not_persisted;
    st->config_version = et_reconf_version(a->reconf);
    st->groups = (const char *const *)a->cfg->group_names;
    st->n_groups = a->cfg->n_groups;
}

/* ---- life cycle ------------------------------------------------------------ */

static int make_data_dir(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof(path)) {
        snprintf(err, errlen, "data_dir \"%s\" is not usable", dir);
        return -EINVAL;
    }
    memcpy(path, dir, n + 1);
    /* mkdir -p, private to the agent's user. */
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            goto fail;
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "data_dir %s: cannot create %s: %s", dir, path, strerror(errno));
    return -errno;
}

int agent_make_collectors(struct et_agent *a, int64_t now_ms, char *err, size_t errlen)
{
    const struct et_config *cfg = a->cfg;
    size_t cap = cfg->n_collectors ? cfg->n_collectors : 1;
    int rc;

    a->collectors = calloc(cap, sizeof(*a->collectors));
    a->jobs = calloc(cap, sizeof(*a->jobs));
    if (!a->collectors || !a->jobs)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->n_collectors; i++) {
        const struct et_collector_cfg *cc = &cfg->collectors[i];
        struct et_collector *c = &a->collectors[a->n_collectors];
        struct collector_job *job = &a->jobs[a->n_collectors];

        if (!cc->enabled)
            continue;
        rc = et_collector_init(c, cc);
        if (rc) {
            snprintf(err, errlen, "collector %s: driver \"%s\" is not built in", cc->name, cc->type);
            return rc;
        }
        *job = (struct collector_job){ .agent = a, .collector = c };
        a->n_collectors++;
        /* Probe now so a missing sensor is reported at start; a failed
         * probe is retried by the collector's own backoff. */
        et_collector_probe(c, now_ms);
        rc = et_sched_add(a->sched, cc->interval_ms, 0, now_ms, collector_job, job);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int open_outbox(struct et_agent *a, char *err, size_t errlen)
{
    const struct et_config *cfg = a->cfg;
    struct et_outbox_limits lim = {
        .quota_bytes = cfg->outbox_quota,
        .reserve_bytes = cfg->outbox_reserve,
        .policy = cfg->outbox_policy,
    };
    char path[4200];
    int rc;

    snprintf(path, sizeof(path), "%s/outbox.db", cfg->data_dir);
    rc = et_outbox_open(&a->outbox, path, err, errlen);
    if (rc)
        return rc;
    rc = et_outbox_set_limits(a->outbox, &lim);
    if (rc)
        snprintf(err, errlen, "[outbox] limits not accepted: %s", strerror(-rc));
    return rc;
}

int agent_add_jobs(struct et_agent *a, int64_t now_ms)
{
    const struct et_config *cfg = a->cfg;
    int rc;

    /* Health before the flush: due in the same pass, its samples go in the
     * batch of that pass instead of a batch of their own 2 s later. */
    if ((rc = et_sched_add(a->sched, HEALTH_INTERVAL_MS, HEALTH_INTERVAL_MS, now_ms,
                           health_job, a)) < 0 ||
        (rc = et_sched_add(a->sched, cfg->batch_interval_ms, cfg->batch_interval_ms, now_ms,
                           flush_job, a)) < 0 ||
        (rc = et_sched_add(a->sched, cfg->durability_window_ms, cfg->durability_window_ms,
                           now_ms, commit_job, a)) < 0 ||
        (rc = et_sched_add(a->sched, STATUS_INTERVAL_MS, STATUS_INTERVAL_MS, now_ms,
                           status_job, a)) < 0)
        return rc;
    return 0;
}

/* A SignedConfig from the uplink: kept until its dispatch returns (agent_take_push). */
static void on_config(void *ctx, const uint8_t *buf, size_t len)
{
    struct et_agent *a = ctx;
    uint8_t *copy = malloc(len ? len : 1);

    if (!copy) {
        et_error("config", "out of memory: a config push of %zu bytes is dropped (the "
                 "aggregator sends it again)", len);
        return;
    }
    memcpy(copy, buf, len);
    free(a->incoming);
    a->incoming = copy;
    a->incoming_len = len;
}

/* An answer of the issuer: enrollment takes it after this dispatch (enroll.h). */
static void on_cert(void *ctx, const uint8_t *buf, size_t len)
{
    struct et_agent *a = ctx;

    et_enroll_on_reply(a->enroll, buf, len);
}

int agent_make_uplink(struct et_agent *a, char *err, size_t errlen)
{
    const struct et_identity *id = a->enroll ? et_enroll_identity(a->enroll) : NULL;
    struct et_uplink_tls tls = { .cert_file = id ? et_identity_cert(id) : NULL,
                                 .key_file = id ? et_identity_key(id) : NULL };
    int rc;

    /* The board's own identity without a certificate yet: enrollment makes the uplink. */
    if (a->enroll && !tls.cert_file)
        return 0;
    rc = et_uplink_create(&a->uplink, a->cfg, a->enroll ? &tls : NULL, a->transport, a->outbox,
                          a->batcher, &a->clock, status_fill, a, err, errlen);
    et_uplink_on_config(a->uplink, on_config, a);
    if (rc == 0 && a->enroll)
        rc = et_uplink_on_cert(a->uplink, on_cert, a);
    a->connects_seen = 0;
    return rc;
}

/* enroll.h's hooks: the uplink anew on the identity's files, and the uplink now. */
static void remake_uplink(void *ctx, const char *why)
{
    struct et_agent *a = ctx;
    char err[512] = "";

    et_uplink_stop(a->uplink, why && *why ? why : "reconnecting");
    a->uplink = NULL;
    a->acks_at_apply = 0;
    if (agent_make_uplink(a, err, sizeof(err)) != 0)
        et_error("uplink", "cannot set up the uplink: %s", err);
}

static struct et_uplink *current_uplink(void *ctx)
{
    return ((struct et_agent *)ctx)->uplink;
}

static const struct et_enroll_hooks enroll_hooks = {
    .remake_uplink = remake_uplink,
    .uplink = current_uplink,
};

int et_agent_create(struct et_agent **out, const struct et_config *cfg,
                    const struct et_mqtt_transport *transport, char *err, size_t errlen)
{
    struct et_agent *a = calloc(1, sizeof(*a));
    char path[4200];
    int64_t now_ms = et_time_mono_ms();
    int rc = -ENOMEM;

    if (!a || !(a->device_id = strdup(cfg->device_id))) {
        free(a);
        return -ENOMEM;
    }
    a->transport = transport;
    et_time_boot_id(a->boot_id);
    if ((rc = make_data_dir(cfg->data_dir, err, errlen)))
        goto fail;
    snprintf(path, sizeof(path), "%s/clock.map", cfg->data_dir);
    rc = et_clock_init(&a->clock, path, a->boot_id);
    if (rc) {
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        goto fail;
    }
    /* Which config runs: the file, or the last push committed over it. */
    if ((rc = et_reconf_open(&a->reconf, cfg, &a->clock, err, errlen)))
        goto fail;
    a->cfg = et_reconf_running(a->reconf);
    if ((rc = open_outbox(a, err, errlen)))
        goto fail;
    /* Before the uplink exists: its last will says whether the clock is synced. */
    et_clock_observe(&a->clock, now_ms);
    if ((rc = et_batcher_create(&a->batcher, a->outbox, a->device_id, a->boot_id,
                                a->cfg->batch_max_samples)) ||
        (rc = et_sched_create(&a->sched)) ||
        (rc = agent_make_collectors(a, now_ms, err, errlen)) ||
        (rc = agent_add_jobs(a, now_ms)))
        goto fail;
    /* The board's own identity: enrollment makes the uplink once it has a certificate. */
    if (et_config_own_identity(a->cfg))
        rc = et_enroll_create(&a->enroll, a->cfg, transport, &enroll_hooks, a, err, errlen);
    else
        rc = agent_make_uplink(a, err, errlen);
    if (rc)
        goto fail;
    *out = a;
    return 0;
fail:
    if (rc == -ENOMEM && err && errlen && !err[0])
        snprintf(err, errlen, "out of memory");
    et_agent_destroy(a);
    return rc < 0 ? rc : -EINVAL;
}

/*
 * The board's own identity: once the clock gate lets it, enrollment and
 * renewal run each pass and make the uplink when there is a certificate
 * (enroll.h); a new uplink starts at once.
 */
static int own_identity_step(struct et_agent *a, int64_t now_ms)
{
    int rc;

    if (!a->enroll_gate) {
        if (!et_clock_may_connect(&a->clock, now_ms, true, a->cfg->clock_wait_ms,
                                  a->connect_note, sizeof(a->connect_note)))
            return 0;
        a->enroll_gate = true;
    }
    et_enroll_step(a->enroll, a->cfg, now_ms, et_time_wall_ms() / 1000, a->clock.synced, true);
    if (!a->uplink || et_uplink_started(a->uplink))
        return 0;
    rc = et_uplink_start(a->uplink, a->connect_note);
    a->connect_note[0] = '\0';
    return rc;
}

/* Start the uplink once the clock gate lets it (clock.h). */
static int maybe_connect(struct et_agent *a, int64_t now_ms)
{
    char note[160];

    if (a->enroll)
        return own_identity_step(a, now_ms);
    if (!a->uplink || et_uplink_started(a->uplink))
        return 0;
    if (!et_clock_may_connect(&a->clock, now_ms, !a->cfg->mqtt.insecure, a->cfg->clock_wait_ms,
                              note, sizeof(note)))
        return 0;
    return et_uplink_start(a->uplink, note);
}

int et_agent_start(struct et_agent *a)
{
    int64_t now_ms = et_time_mono_ms();
    int rc;

    et_clock_observe(&a->clock, now_ms);
    rc = maybe_connect(a, now_ms);
    if (rc)
        return rc;
    et_info("agent", "device %s: %zu collectors, outbox %s/outbox.db (next seq %" PRIu64 "), "
            "broker %s:%d%s", a->cfg->device_id, a->n_collectors, a->cfg->data_dir,
            et_outbox_next_seq(a->outbox), a->cfg->mqtt.host ? a->cfg->mqtt.host : "(none)",
            a->cfg->mqtt.port,
            a->cfg->mqtt.insecure ? " (INSECURE, no TLS)" : " (mutual TLS)");
    return 0;
}

int et_agent_step(struct et_agent *a, int stop_fd, int max_wait_ms)
{
    int64_t now_ms = et_time_mono_ms();
    int64_t next = et_sched_next_due(a->sched);
    int64_t wait = next == INT64_MAX ? max_wait_ms : next - now_ms;
    struct pollfd fds[3] = {
        { .fd = stop_fd, .events = POLLIN },
        { .fd = et_uplink_fd(a->uplink), .events = POLLIN },
        { .fd = et_enroll_fd(a->enroll), .events = POLLIN },
    };
    int rc;

    if (wait < 0)
        wait = 0;
    if (wait > max_wait_ms)
        wait = max_wait_ms;
    rc = poll(fds, 3, (int)wait);
    if (rc < 0 && errno != EINTR) {
        et_error("agent", "poll: %s", strerror(errno));
        return -errno;
    }
    if (rc > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
        return 1;
    if (rc > 0 && (fds[1].revents & POLLIN))
        et_uplink_dispatch(a->uplink);
    if (rc > 0 && (fds[2].revents & POLLIN))
        et_enroll_dispatch(a->enroll);
    now_ms = et_time_mono_ms();
    et_clock_observe(&a->clock, now_ms);
    if ((rc = maybe_connect(a, now_ms)) != 0)
        return rc;
    if ((rc = agent_config_step(a, now_ms)) != 0)
        return rc;
    et_sched_run_due(a->sched, now_ms);
    et_uplink_pump(a->uplink, now_ms);
    return 0;
}

void et_agent_stop(struct et_agent *a)
{
    const struct et_batcher_stats *bs = et_batcher_stats(a->batcher);
    struct et_outbox_stats st = { 0 };
    struct et_uplink_stats up;
    uint64_t lost;

    /* Keep what was collected, say goodbye, leave. */
    agent_flush(a, et_time_mono_ms());
    et_batcher_commit(a->batcher);
    /* The storage failed to the end: count what is lost before the last
     * Status reports the drops, and say it, never silently. */
    lost = et_batcher_abandon(a->batcher);
    if (lost)
        et_error("outbox", "stopping with %" PRIu64 " samples that could not be stored: they "
                 "are lost, and counted as dropped", lost);
    et_outbox_stats(a->outbox, &st);
    et_uplink_stats(a->uplink, &up);
    et_uplink_stop(a->uplink, "agent stopped");
    a->uplink = NULL;
    et_info("agent", "stopped: %" PRIu64 " batches made, %" PRIu64 " sent, %" PRIu64
            " acknowledged, %" PRIu64 " waiting in the outbox",
            bs->batches_made, up.batches_sent, up.batches_acked, st.batches);
}

int et_agent_run(struct et_agent *a, int stop_fd)
{
    int rc = et_agent_start(a);

    while (rc == 0)
        rc = et_agent_step(a, stop_fd, MAX_POLL_MS);
    et_agent_stop(a);
    return rc < 0 ? rc : 0;
}

void et_agent_status_line(struct et_agent *a, char *buf, size_t size)
{
    struct et_outbox_stats st = { 0 };
    struct et_uplink_stats up = { 0 };
    char link[200];

    et_outbox_stats(a->outbox, &st);
    if (!a->cfg->mqtt.host) {
        snprintf(link, sizeof(link), "no broker configured");
    } else {
        if (a->uplink)
            et_uplink_stats(a->uplink, &up);
        if (up.connected)
            snprintf(link, sizeof(link), "connected to %s:%d", a->cfg->mqtt.host,
                     a->cfg->mqtt.port);
        else
            snprintf(link, sizeof(link), "not connected to %s:%d%s%s%s", a->cfg->mqtt.host,
                     a->cfg->mqtt.port, up.last_error && up.last_error[0] ? " (" : "",
                     up.last_error ? up.last_error : "",
                     up.last_error && up.last_error[0] ? ")" : "");
    }
    snprintf(buf, size, "%s; backlog %" PRIu64 " batches, %" PRIu64 " samples", link,
             st.batches, st.samples);
}

struct et_outbox *et_agent_outbox(struct et_agent *a)
{
    return a->outbox;
}

int et_agent_outbox_stats(struct et_agent *a, struct et_outbox_stats *st)
{
    return et_outbox_stats(a->outbox, st);
}

void et_agent_destroy(struct et_agent *a)
{
    if (!a)
        return;
    et_uplink_destroy(a->uplink);
    et_enroll_destroy(a->enroll);
    agent_drop_collectors(a);
    et_batcher_destroy(a->batcher);
    et_outbox_close(a->outbox);
    et_reconf_destroy(a->reconf);
    free(a->incoming);
    free(a->device_id);
    free(a);
}
