/*
 * The agent's event loop and its uplink policy.
 *
 * One thread does everything: poll() waits on the stop descriptor and the
 * MQTT seam's event descriptor, with a timeout to the next scheduled job.
 * Collector rounds add samples to the open batch; the batch job encodes
 * the batch and appends it to the outbox; the pump publishes outbox rows
 * through a window of in-flight batches; an Ack from the aggregator
 * deletes rows. Only an Ack deletes: a broker PUBACK means nothing here.
 *
 * Live first: batches made since the current connection came up go out
 * before the backlog; backlog batches are marked historical on the way
 * out and fill what the window leaves.
 */
#include "edgetel/agent.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "collect.h"
#include "timefix.h"
#include "edgetel/codec.h"
#include "edgetel/log.h"
#include "edgetel/mqtt.h"
#include "edgetel/outbox.h"
#include "edgetel/platform.h"
#include "edgetel/sched.h"
#include "edgetel/version.h"

#define TOPIC_MAX 256
/* When the outbox cannot be written (full disk, I/O error) samples stay in
 * memory, up to this many batches' worth; beyond it the oldest are dropped
 * and counted. */
#define MEMORY_HOLD_BATCHES 10
#define STATUS_INTERVAL_MS (60 * 1000)
#define SELF_METRICS_INTERVAL_MS (30 * 1000)
/* poll() wakes at least this often to look at ack timeouts. */
#define MAX_POLL_MS 1000
#define SHUTDOWN_TIMEOUT_MS 2000

struct inflight {
    uint64_t seq;
    int64_t sent_ms;
};

/* An encoded batch whose bytes the agent keeps until its group commits. */
struct held_batch {
    uint64_t seq;
    uint8_t *blob;
    size_t len;
    uint32_t n_samples;
    int64_t created_ms;
};

struct agent_collector {
    struct et_agent *agent;
    struct et_collector c;
};

struct et_agent {
    const struct et_config *cfg;
    const struct et_mqtt_transport *transport;
    struct et_outbox *outbox;
    struct et_mqtt *mqtt;
    struct et_sched *sched;
    struct et_batch *batch;
    struct agent_collector *collectors;
    size_t n_collectors;
    uint8_t boot_id[ET_BOOT_ID_LEN];
    struct et_timefix timefix;
    char topic_telemetry[TOPIC_MAX];
    char topic_ack[TOPIC_MAX];
    char topic_status[TOPIC_MAX];

    /* The round being collected: every sample of it gets this time. */
    int64_t round_mono_ms;
    enum et_time_quality round_tq;
    const char *round_tags;   /* the collector's tags, NULL for the agent's own */

    /* Uplink. */
    bool connected;
    struct inflight *inflight;
    size_t n_inflight;
    uint64_t live_from;       /* seqs >= this were made during this connection */
    uint64_t live_cursor;     /* highest live seq handed to MQTT */
    uint64_t backlog_cursor;  /* highest backlog seq handed to MQTT */
    char last_disconnect[160];
    int64_t last_disconnect_log_ms;
    bool mqtt_started;
    int64_t clock_wait_began;  /* mono ms when the wait for clock sync began; 0: none */
    bool clock_synced;         /* adjtimex's answer, read once per loop pass */
    char connect_note[160];    /* said in the birth Status: why connecting was late */

    /* Backlog drain pacing and progress. */
    double drain_tokens;       /* historical batches that may go now */
    int64_t drain_refill_ms;
    int64_t drain_report_ms;
    uint64_t drain_acked_at_report;
    uint64_t drain_left;       /* last estimate, for the agent's metrics */
    double drain_eta_s;        /* -1 when unknown */

    /* Group commit and storage trouble. */
    bool group_open;
    struct held_batch *held;  /* made since the last commit, in seq order */
    size_t n_held, cap_held;
    size_t n_held_stored;     /* held[0 .. n_held_stored-1] are in the open group */
    bool store_failing;
    uint64_t dropped_in_memory;

    /* Counters for the log and the agent's own metrics. */
    uint64_t batches_made;
    uint64_t samples_stored;  /* samples in batches appended to the outbox */
    uint64_t io_written_prev; /* /proc/self/io write_bytes at the last report */
    uint64_t io_samples_prev;
    uint64_t batches_sent;
    uint64_t batches_acked;
    uint64_t resends;
};

/* ---- batches ------------------------------------------------------------ */

/* The clock state as of the current loop pass (clock_observe() reads it once). */
static enum et_time_quality current_tq(const struct et_agent *a)
{
    return a->clock_synced ? ET_TQ_SYNCED : ET_TQ_UNSYNCED;
}

static void uplink_pump(struct et_agent *a, int64_t now_ms);

/*
 * Group commit. Appends (and acks) share one SQLite transaction for a
 * durability window: one commit and one write of each page per window
 * instead of per batch. Until the commit the batches are readable (and
 * sent) but not durable, so the agent keeps their bytes in `held` until the
 * commit lands. When an append or the commit fails, the outbox undoes the
 * whole group and the held batches are appended again, in seq order and
 * with the same seqs, before any new batch is made.
 */
static void held_clear(struct et_agent *a)
{
    for (size_t i = 0; i < a->n_held; i++)
        free(a->held[i].blob);
    a->n_held = 0;
    a->n_held_stored = 0;
}

static int held_push(struct et_agent *a, uint64_t seq, uint8_t *blob, size_t len,
                     uint32_t n_samples, int64_t created_ms)
{
    if (a->n_held == a->cap_held) {
        size_t cap = a->cap_held ? a->cap_held * 2 : 16;
        struct held_batch *h = realloc(a->held, cap * sizeof(*h));

        if (!h)
            return -ENOMEM;
        a->held = h;
        a->cap_held = cap;
    }
    a->held[a->n_held++] = (struct held_batch){
        .seq = seq, .blob = blob, .len = len, .n_samples = n_samples, .created_ms = created_ms,
    };
    return 0;
}

static void store_trouble(struct et_agent *a, uint64_t seq, int rc)
{
    if (!a->store_failing)
        et_error("outbox", "cannot store batch %" PRIu64 ": %s; keeping samples in memory "
                 "(up to %d batches' worth) and retrying", seq, strerror(-rc),
                 MEMORY_HOLD_BATCHES);
    a->store_failing = true;
}

/* Append every held batch not yet in the outbox. 0, or -errno (group undone). */
static int held_store(struct et_agent *a)
{
    while (a->n_held_stored < a->n_held) {
        struct held_batch *h = &a->held[a->n_held_stored];
        int rc;

        if (!a->group_open) {
            rc = et_outbox_begin(a->outbox);
            if (rc && rc != -EALREADY) {
                store_trouble(a, h->seq, rc);
                return rc;
            }
            a->group_open = true;
        }
        rc = et_outbox_append(a->outbox, h->seq, h->blob, h->len, h->n_samples, h->created_ms);
        if (rc == 0 || rc == -EDQUOT) {
            /* -EDQUOT: refused by the quota, counted as dropped by the outbox. */
            a->n_held_stored++;
            continue;
        }
        /* The outbox undid the group: everything held goes in again later. */
        a->group_open = false;
        a->n_held_stored = 0;
        store_trouble(a, h->seq, rc);
        return rc;
    }
    if (a->store_failing && a->n_held)
        et_info("outbox", "storing batches again (from seq %" PRIu64 ")", a->held[0].seq);
    a->store_failing = false;
    return 0;
}

/* End the durability window: commit the group, forget the held bytes. */
static int agent_commit(struct et_agent *a)
{
    int rc;

    if (a->n_held_stored < a->n_held && (rc = held_store(a)) != 0)
        return rc;
    if (!a->group_open)
        return 0;
    a->group_open = false;
    rc = et_outbox_commit(a->outbox);
    if (rc) {
        a->n_held_stored = 0;
        store_trouble(a, a->n_held ? a->held[0].seq : 0, rc);
        return rc;
    }
    held_clear(a);
    return 0;
}

/*
 * Encode the open batch and append it to the outbox. When the outbox
 * cannot take it, samples stay in memory and the next flush tries again;
 * past MEMORY_HOLD_BATCHES batches' worth the newest samples are dropped,
 * counted (the held batches keep their seqs, so they cannot be skipped).
 */
static int agent_flush(struct et_agent *a, int64_t now_ms)
{
    struct et_batch_meta meta = { 0 };
    struct et_outbox_stats st;
    uint8_t *blob = NULL;
    size_t len = 0;
    size_t n = et_batch_samples(a->batch);
    int rc;

    rc = held_store(a);
    if (rc == 0 && n > 0) {
        meta.device_id = a->cfg->device_id;
        meta.seq = et_outbox_next_seq(a->outbox);
        memcpy(meta.boot_id, a->boot_id, sizeof(meta.boot_id));
        meta.base_mono_ms = et_batch_first_mono_ms(a->batch);
        meta.base_wall_ms = et_time_wall_ms() - (et_time_mono_ms() - meta.base_mono_ms);
        meta.time_quality = et_batch_time_quality(a->batch);
        rc = et_outbox_stats(a->outbox, &st);
        meta.oldest_seq = (rc == 0 && st.batches > 0) ? st.oldest_seq : meta.seq;
        rc = et_batch_encode(a->batch, &meta, &blob, &len);
        if (rc == 0)
            rc = held_push(a, meta.seq, blob, len, (uint32_t)n, now_ms);
        if (rc == 0) {
            a->batches_made++;
            a->samples_stored += n;
            et_batch_reset(a->batch);
            rc = held_store(a);
        } else {
            free(blob);
        }
    }
    if (rc && et_batch_samples(a->batch) >= (size_t)a->cfg->batch_max_samples * MEMORY_HOLD_BATCHES) {
        et_error("outbox", "memory hold full: dropping %zu samples", et_batch_samples(a->batch));
        a->dropped_in_memory += et_batch_samples(a->batch);
        et_batch_reset(a->batch);
    }
    if (rc == 0)
        uplink_pump(a, now_ms);
    return rc;
}

static int agent_emit(void *ctx, const char *metric, const char *unit, const struct et_value *v)
{
    struct et_agent *a = ctx;
    int rc = et_batch_add_tagged(a->batch, metric, unit, a->round_tags, a->round_mono_ms, v,
                                 a->round_tq);

    if (rc == -EINVAL) {
        et_warn("collector", "%s: value not accepted (string too long)", metric);
        return 0;
    }
    return rc;
}

static void collector_job(void *ctx, int64_t now_ms)
{
    struct agent_collector *ac = ctx;
    struct et_agent *a = ac->agent;

    a->round_mono_ms = now_ms;
    a->round_tq = current_tq(a);
    a->round_tags = ac->c.cfg->tags;
    et_collector_round(&ac->c, now_ms, agent_emit, a);
    a->round_tags = NULL;
    if (et_batch_samples(a->batch) >= a->cfg->batch_max_samples)
        agent_flush(a, now_ms);
}

static void flush_job(void *ctx, int64_t now_ms)
{
    agent_flush(ctx, now_ms);
}

static void commit_job(void *ctx, int64_t now_ms)
{
    agent_commit(ctx);
}

/* Bytes this process caused to be written to storage (/proc/self/io). */
static int self_write_bytes(uint64_t *out)
{
    char buf[1024];
    const char *p;

    if (et_fs_read("/proc/self/io", buf, sizeof(buf)) < 0)
        return -ENOENT;
    p = strstr(buf, "\nwrite_bytes:");
    if (!p || sscanf(p + 13, "%" SCNu64, out) != 1)
        return -EBADMSG;
    return 0;
}

/* The agent's own health, as metrics beside the collectors'. */
static void self_metrics_job(void *ctx, int64_t now_ms)
{
    struct et_agent *a = ctx;
    struct et_outbox_stats st;
    struct et_value v;

    if (et_outbox_stats(a->outbox, &st) != 0)
        return;
    a->round_mono_ms = now_ms;
    a->round_tq = current_tq(a);
    v = et_value_i64((int64_t)st.batches);
    agent_emit(a, "agent.outbox_batches", "1", &v);
    v = et_value_i64((int64_t)st.bytes);
    agent_emit(a, "agent.outbox_bytes", "By", &v);
    v = et_value_i64((int64_t)(st.dropped_samples + a->dropped_in_memory));
    agent_emit(a, "agent.dropped_samples", "1", &v);
    v = et_value_i64((int64_t)a->n_inflight);
    agent_emit(a, "agent.inflight_batches", "1", &v);
    v = et_value_bool(a->connected);
    agent_emit(a, "agent.connected", "1", &v);

    /* Each collector's health: agent.collector.<name>.ok. Hardware this
     * board does not have is left out rather than reported failing. */
    int64_t failing = 0;

    for (size_t i = 0; i < a->n_collectors; i++) {
        const struct et_collector *c = &a->collectors[i].c;
        char name[96];

        if (c->state != ET_COLLECTOR_RUNNING && c->probe_rc == -ENODEV && c->rounds_ok == 0)
            continue;
        bool ok = c->state == ET_COLLECTOR_RUNNING && !c->failing;

        failing += !ok;
        snprintf(name, sizeof(name), "agent.collector.%s.ok", c->cfg->name);
        v = et_value_bool(ok);
        agent_emit(a, name, "1", &v);
    }
    v = et_value_i64(failing);
    agent_emit(a, "agent.collectors_failing", "1", &v);
    if (a->connected && a->drain_left > 0) {
        v = et_value_i64((int64_t)a->drain_left);
        agent_emit(a, "agent.backlog_batches", "1", &v);
        if (a->drain_eta_s >= 0) {
            v = et_value_f64(a->drain_eta_s);
            agent_emit(a, "agent.backlog_eta", "s", &v);
        }
    }

    /* SD card wear: bytes written per sample stored since the last report. */
    uint64_t written;

    if (self_write_bytes(&written) == 0) {
        uint64_t samples = a->samples_stored - a->io_samples_prev;

        v = et_value_i64((int64_t)written);
        agent_emit(a, "agent.bytes_written", "By", &v);
        if (samples > 0 && a->io_written_prev > 0) {
            v = et_value_f64((double)(written - a->io_written_prev) / (double)samples);
            agent_emit(a, "agent.bytes_written_per_sample", "By", &v);
        }
        a->io_written_prev = written;
        a->io_samples_prev = a->samples_stored;
    }
}

/* ---- status --------------------------------------------------------------- */

static int status_encode(struct et_agent *a, bool online, const char *reason,
                         uint8_t **out, size_t *len)
{
    Edgetel__V1__Status s = EDGETEL__V1__STATUS__INIT;
    struct et_outbox_stats st = { 0 };

    if (a->outbox)
        et_outbox_stats(a->outbox, &st);
    s.device_id = a->cfg->device_id;
    s.online = online;
    s.boot_id.data = a->boot_id;
    s.boot_id.len = sizeof(a->boot_id);
    s.wall_ms = et_time_wall_ms();
    s.agent_version = ET_VERSION;
    s.outbox_batches = st.batches;
    s.dropped_samples = st.dropped_samples + a->dropped_in_memory;
    s.clock_synced = et_time_synced();
    s.reason = (char *)(reason ? reason : "");
    *len = edgetel__v1__status__get_packed_size(&s);
    *out = malloc(*len ? *len : 1);
    if (!*out)
        return -ENOMEM;
    edgetel__v1__status__pack(&s, *out);
    return 0;
}

static void status_publish(struct et_agent *a, bool online, const char *reason)
{
    uint8_t *buf;
    size_t len;

    if (!a->connected || status_encode(a, online, reason, &buf, &len) != 0)
        return;
    int rc = et_mqtt_publish(a->mqtt, a->topic_status, buf, len, 1, true);

    if (rc < 0)
        et_debug("uplink", "status not published: %s", strerror(-rc));
    free(buf);
}

static void status_job(void *ctx, int64_t now_ms)
{
    status_publish(ctx, true, NULL);
}

/* ---- uplink --------------------------------------------------------------- */

static bool inflight_has(const struct et_agent *a, uint64_t seq)
{
    for (size_t i = 0; i < a->n_inflight; i++)
        if (a->inflight[i].seq == seq)
            return true;
    return false;
}

static void inflight_remove_at(struct et_agent *a, size_t i)
{
    a->inflight[i] = a->inflight[--a->n_inflight];
}

/* Make seq eligible to be sent again: move the cursor it came from back. */
static void rewind_for(struct et_agent *a, uint64_t seq)
{
    if (seq >= a->live_from) {
        if (a->live_cursor >= seq)
            a->live_cursor = seq - 1;
    } else if (a->backlog_cursor >= seq) {
        a->backlog_cursor = seq - 1;
    }
}

static void resend_timed_out(struct et_agent *a, int64_t now_ms)
{
    for (size_t i = 0; i < a->n_inflight;) {
        if (now_ms - a->inflight[i].sent_ms < a->cfg->ack_timeout_ms) {
            i++;
            continue;
        }
        et_debug("uplink", "no ack for batch %" PRIu64 " within %" PRId64 " ms: sending again",
                 a->inflight[i].seq, a->cfg->ack_timeout_ms);
        rewind_for(a, a->inflight[i].seq);
        a->resends++;
        inflight_remove_at(a, i);
    }
}

/* The next batch to send: live ones first, then the backlog. 0 or -ENOENT. */
static int next_to_send(struct et_agent *a, uint64_t *seq, uint8_t **blob, size_t *len,
                        bool *historical)
{
    uint64_t after = a->live_cursor > a->live_from - 1 ? a->live_cursor : a->live_from - 1;
    int rc;

    for (;;) {
        rc = et_outbox_next(a->outbox, after, seq, blob, len);
        if (rc)
            break;
        a->live_cursor = *seq;
        if (!inflight_has(a, *seq)) {
            *historical = false;
            return 0;
        }
        free(*blob);
        after = *seq;
    }
    if (rc != -ENOENT)
        return rc;
    for (;;) {
        rc = et_outbox_next(a->outbox, a->backlog_cursor, seq, blob, len);
        if (rc)
            return rc;
        if (*seq >= a->live_from) {
            free(*blob);
            return -ENOENT;
        }
        a->backlog_cursor = *seq;
        if (!inflight_has(a, *seq)) {
            *historical = true;
            return 0;
        }
        free(*blob);
    }
}

/* Refill the drain token bucket: drain_rate batches a second, a second's worth at most. */
static void drain_refill(struct et_agent *a, int64_t now_ms)
{
    double rate = a->cfg->drain_rate;

    if (rate <= 0)
        return;
    if (a->drain_refill_ms == 0)
        a->drain_refill_ms = now_ms;
    a->drain_tokens += (double)(now_ms - a->drain_refill_ms) * rate / 1000.0;
    /* A burst of at most a second's worth (one batch for rates under 1/s). */
    if (a->drain_tokens > (rate > 1.0 ? rate : 1.0))
        a->drain_tokens = rate > 1.0 ? rate : 1.0;
    a->drain_refill_ms = now_ms;
}

/* While a backlog drains: say every 10 s how much is left and when it ends. */
static void drain_report(struct et_agent *a, int64_t now_ms)
{
    struct et_outbox_stats st;

    if (now_ms - a->drain_report_ms < 10000)
        return;
    if (et_outbox_stats(a->outbox, &st) != 0 || st.batches == 0 || st.oldest_seq >= a->live_from) {
        a->drain_report_ms = now_ms;
        a->drain_acked_at_report = a->batches_acked;
        return;
    }
    uint64_t left = a->live_from > st.oldest_seq ? a->live_from - st.oldest_seq : 0;
    double secs = (double)(now_ms - a->drain_report_ms) / 1000.0;
    double rate = secs > 0 ? (double)(a->batches_acked - a->drain_acked_at_report) / secs : 0;

    if (a->drain_report_ms != 0 && left > 0) {
        if (rate > 0)
            et_info("uplink", "draining backlog: about %" PRIu64 " batches left, %.1f batches/s, "
                    "ETA %.0f s", left, rate, (double)left / rate);
        else
            et_info("uplink", "draining backlog: about %" PRIu64 " batches left, waiting for acks",
                    left);
    }
    a->drain_left = left;
    a->drain_eta_s = rate > 0 ? (double)left / rate : -1;
    a->drain_report_ms = now_ms;
    a->drain_acked_at_report = a->batches_acked;
}

static void uplink_pump(struct et_agent *a, int64_t now_ms)
{
    if (!a->connected)
        return;
    resend_timed_out(a, now_ms);
    drain_refill(a, now_ms);
    drain_report(a, now_ms);
    while (a->n_inflight < a->cfg->max_inflight) {
        uint64_t seq;
        uint8_t *blob;
        size_t len;
        bool historical;
        int rc = next_to_send(a, &seq, &blob, &len, &historical);

        if (rc) {
            if (rc != -ENOENT)
                et_error("outbox", "cannot read the next batch to send: %s", strerror(-rc));
            return;
        }
        if (historical && a->cfg->drain_rate > 0) {
            if (a->drain_tokens < 1.0) {
                /* Over the drain rate: the backlog waits, live data does not. */
                rewind_for(a, seq);
                free(blob);
                return;
            }
            a->drain_tokens -= 1.0;
        }
        uint8_t *fixed;
        size_t fixed_len;

        /* Samples taken before the clock synced go out re-timed. */
        rc = et_timefix_apply(&a->timefix, blob, len, &fixed, &fixed_len);
        if (rc == 1) {
            free(blob);
            blob = fixed;
            len = fixed_len;
        } else if (rc < 0) {
            et_warn("time", "batch %" PRIu64 ": cannot re-time (%s); sending as measured",
                    seq, strerror(-rc));
        }
        if (historical)
            len = et_batch_mark_historical(blob, len);
        rc = et_mqtt_publish(a->mqtt, a->topic_telemetry, blob, len, 1, false);
        free(blob);
        if (rc < 0) {
            rewind_for(a, seq);
            if (rc != -EAGAIN && rc != -ENOTCONN)
                et_warn("uplink", "publish of batch %" PRIu64 " failed: %s", seq, strerror(-rc));
            return;
        }
        a->inflight[a->n_inflight++] = (struct inflight){ .seq = seq, .sent_ms = now_ms };
        a->batches_sent++;
    }
}

static void handle_ack(struct et_agent *a, const void *payload, size_t len, int64_t now_ms)
{
    Edgetel__V1__Ack *ack;
    char err[160];
    int deleted;

    if (et_wire_decode_ack(payload, len, &ack, err, sizeof(err)) != 0) {
        et_warn("uplink", "ignoring malformed ack on %s: %s", a->topic_ack, err);
        return;
    }
    if (strcmp(ack->device_id, a->cfg->device_id) != 0) {
        et_warn("uplink", "ignoring ack for device \"%s\" on %s", ack->device_id, a->topic_ack);
        goto out;
    }
    deleted = et_outbox_ack(a->outbox, ack->acked_through, ack->seqs, ack->n_seqs);
    if (deleted < 0) {
        et_error("outbox", "cannot delete acknowledged batches: %s", strerror(-deleted));
        goto out;
    }
    a->batches_acked += (uint64_t)deleted;
    for (size_t i = 0; i < a->n_inflight;) {
        uint64_t seq = a->inflight[i].seq;
        bool covered = seq <= ack->acked_through;

        for (size_t k = 0; !covered && k < ack->n_seqs; k++)
            covered = ack->seqs[k] == seq;
        if (covered)
            inflight_remove_at(a, i);
        else
            i++;
    }
    et_debug("uplink", "ack through %" PRIu64 " (+%zu): %d batches deleted",
             (uint64_t)ack->acked_through, ack->n_seqs, deleted);
    uplink_pump(a, now_ms);
out:
    edgetel__v1__ack__free_unpacked(ack, NULL);
}

static void on_mqtt_event(void *ctx, const struct et_mqtt_event *ev)
{
    struct et_agent *a = ctx;
    int64_t now_ms = et_time_mono_ms();
    struct et_outbox_stats st = { 0 };

    switch (ev->type) {
    case ET_MQTT_CONNECTED:
        a->connected = true;
        a->n_inflight = 0;
        a->live_from = et_outbox_next_seq(a->outbox);
        a->live_cursor = 0;
        a->backlog_cursor = 0;
        a->last_disconnect[0] = '\0';
        a->last_disconnect_log_ms = 0;
        et_outbox_stats(a->outbox, &st);
        et_info("uplink", "connected to %s:%d; %" PRIu64 " batches waiting", a->cfg->host,
                a->cfg->port, st.batches);
        status_publish(a, true, a->connect_note[0] ? a->connect_note : NULL);
        uplink_pump(a, now_ms);
        break;
    case ET_MQTT_DISCONNECTED: {
        const char *why = ev->reason ? ev->reason : "unknown reason";

        /* Each retry reports again, and a refused handshake may alternate
         * between two reasons: say a new reason at once, then at most once
         * a minute until the connection is up again. */
        if (a->connected || (strcmp(why, a->last_disconnect) != 0 &&
                             now_ms - a->last_disconnect_log_ms >= 60000) ||
            a->last_disconnect_log_ms == 0) {
            et_warn("uplink", "%s %s:%d: %s (retrying with backoff)",
                    a->connected ? "lost connection to" : "cannot connect to",
                    a->cfg->host, a->cfg->port, why);
            a->last_disconnect_log_ms = now_ms;
        } else {
            et_debug("uplink", "cannot connect to %s:%d: %s", a->cfg->host, a->cfg->port, why);
        }
        snprintf(a->last_disconnect, sizeof(a->last_disconnect), "%s", why);
        a->connected = false;
        a->n_inflight = 0;
        break;
    }
    case ET_MQTT_MESSAGE:
        if (ev->topic && strcmp(ev->topic, a->topic_ack) == 0)
            handle_ack(a, ev->payload, ev->len, now_ms);
        else
            et_debug("uplink", "ignoring message on %s", ev->topic ? ev->topic : "?");
        break;
    case ET_MQTT_PUBLISHED:
        break;
    case ET_MQTT_PUBLISH_FAILED:
        /* The batch stays in the outbox; the ack timeout sends it again. */
        et_debug("uplink", "publish %d failed: %s", ev->token, ev->reason ? ev->reason : "?");
        break;
    }
}

/* ---- life cycle ----------------------------------------------------------- */

static int check_key_file(const char *path, char *err, size_t errlen)
{
    struct stat st;

    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "key %s: %s", path, strerror(errno));
        return -errno;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen, "key %s is readable by others (mode %04o): run chmod 600 %s",
                 path, (unsigned)(st.st_mode & 07777), path);
        return -EPERM;
    }
    return 0;
}

static int check_readable(const char *what, const char *path, char *err, size_t errlen)
{
    if (access(path, R_OK) != 0) {
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        return -errno;
    }
    return 0;
}

static int make_topics(struct et_agent *a, char *err, size_t errlen)
{
    const char *root = a->cfg->topic_root, *dev = a->cfg->device_id;
    int n1 = snprintf(a->topic_telemetry, TOPIC_MAX, "%s/v1/%s/telemetry", root, dev);
    int n2 = snprintf(a->topic_ack, TOPIC_MAX, "%s/v1/%s/ack", root, dev);
    int n3 = snprintf(a->topic_status, TOPIC_MAX, "%s/v1/%s/status", root, dev);

    if (n1 >= TOPIC_MAX || n2 >= TOPIC_MAX || n3 >= TOPIC_MAX) {
        snprintf(err, errlen, "topic root \"%s\" is too long", root);
        return -EINVAL;
    }
    return 0;
}

static int make_uplink(struct et_agent *a, char *err, size_t errlen)
{
    const struct et_config *cfg = a->cfg;
    struct et_mqtt_cfg mc = {
        .host = cfg->host,
        .port = cfg->port,
        .client_id = cfg->device_id,
        .tls = !cfg->insecure,
        .ca_file = cfg->ca_file,
        .cert_file = cfg->cert_file,
        .key_file = cfg->key_file,
        .keepalive_s = (int)(cfg->keepalive_ms / 1000),
        .min_backoff_ms = (int)cfg->backoff_min_ms,
        .max_backoff_ms = (int)cfg->backoff_max_ms,
        .max_inflight = (int)cfg->max_inflight + 4,   /* room for status beside batches */
        .will_topic = a->topic_status,
        .will_retain = true,
    };
    uint8_t *will = NULL;
    size_t will_len = 0;
    int rc;

    if (!cfg->host || !*cfg->host) {
        /* A board may collect before it has a broker: all goes to the
         * outbox, within its quota, until a host is configured. */
        et_warn("uplink", "[mqtt] host is not set: collecting into the outbox only, "
                "sending nothing");
        return 0;
    }
    if (cfg->insecure) {
        et_warn("uplink", "[mqtt] insecure = true: telemetry goes to %s:%d as PLAIN TEXT, "
                "without authentication. Use only on a closed test network.",
                cfg->host, cfg->port);
    } else {
        if ((rc = check_readable("CA certificate", cfg->ca_file, err, errlen)) ||
            (rc = check_readable("certificate", cfg->cert_file, err, errlen)) ||
            (rc = check_key_file(cfg->key_file, err, errlen)))
            return rc;
    }
    rc = status_encode(a, false, "connection lost (last will)", &will, &will_len);
    if (rc)
        return rc;
    mc.will_payload = will;
    mc.will_len = will_len;
    rc = et_mqtt_create(&a->mqtt, a->transport, &mc);
    free(will);
    if (rc) {
        snprintf(err, errlen, "cannot set up MQTT client for %s:%d: %s", cfg->host, cfg->port,
                 strerror(-rc));
        return rc;
    }
    rc = et_mqtt_subscribe(a->mqtt, a->topic_ack, 1);
    if (rc)
        snprintf(err, errlen, "cannot subscribe to %s: %s", a->topic_ack, strerror(-rc));
    return rc;
}

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

static int make_collectors(struct et_agent *a, int64_t now_ms, char *err, size_t errlen)
{
    const struct et_config *cfg = a->cfg;
    int rc;

    a->collectors = calloc(cfg->n_collectors ? cfg->n_collectors : 1, sizeof(*a->collectors));
    if (!a->collectors)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->n_collectors; i++) {
        const struct et_collector_cfg *cc = &cfg->collectors[i];
        struct agent_collector *ac = &a->collectors[a->n_collectors];

        if (!cc->enabled)
            continue;
        rc = et_collector_init(&ac->c, cc);
        if (rc) {
            snprintf(err, errlen, "collector %s: driver \"%s\" is not built in", cc->name, cc->type);
            return rc;
        }
        ac->agent = a;
        a->n_collectors++;
        /* Probe now so a missing sensor is reported at start; a failed
         * probe is retried by the collector's own backoff. */
        et_collector_probe(&ac->c, now_ms);
        rc = et_sched_add(a->sched, cc->interval_ms, 0, now_ms, collector_job, ac);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int et_agent_create(struct et_agent **out, const struct et_config *cfg,
                    const struct et_mqtt_transport *transport, char *err, size_t errlen)
{
    struct et_agent *a = calloc(1, sizeof(*a));
    char path[4200];
    int64_t now_ms = et_time_mono_ms();
    int rc = -ENOMEM;

    if (!a)
        return -ENOMEM;
    a->cfg = cfg;
    a->transport = transport;
    et_time_boot_id(a->boot_id);
    a->inflight = calloc(cfg->max_inflight ? cfg->max_inflight : 1, sizeof(*a->inflight));
    if (!a->inflight)
        goto fail;
    rc = make_topics(a, err, errlen);
    if (rc)
        goto fail;
    rc = make_data_dir(cfg->data_dir, err, errlen);
    if (rc)
        goto fail;
    snprintf(path, sizeof(path), "%s/outbox.db", cfg->data_dir);
    rc = et_outbox_open(&a->outbox, path, err, errlen);
    if (rc)
        goto fail;
    struct et_outbox_limits lim = {
        .quota_bytes = cfg->outbox_quota,
        .reserve_bytes = cfg->outbox_reserve,
        .policy = cfg->outbox_policy,
    };

    rc = et_outbox_set_limits(a->outbox, &lim);
    if (rc) {
        snprintf(err, errlen, "[outbox] limits not accepted: %s", strerror(-rc));
        goto fail;
    }
    snprintf(path, sizeof(path), "%s/clock.map", cfg->data_dir);
    rc = et_timefix_init(&a->timefix, path, a->boot_id);
    if (rc) {
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        goto fail;
    }
    if ((rc = et_batch_create(&a->batch)) || (rc = et_sched_create(&a->sched)))
        goto fail;
    rc = make_collectors(a, now_ms, err, errlen);
    if (rc)
        goto fail;
    if ((rc = et_sched_add(a->sched, cfg->batch_interval_ms, cfg->batch_interval_ms, now_ms,
                           flush_job, a)) < 0 ||
        (rc = et_sched_add(a->sched, cfg->durability_window_ms, cfg->durability_window_ms,
                           now_ms, commit_job, a)) < 0 ||
        (rc = et_sched_add(a->sched, SELF_METRICS_INTERVAL_MS, SELF_METRICS_INTERVAL_MS, now_ms,
                           self_metrics_job, a)) < 0 ||
        (rc = et_sched_add(a->sched, STATUS_INTERVAL_MS, STATUS_INTERVAL_MS, now_ms,
                           status_job, a)) < 0)
        goto fail;
    rc = make_uplink(a, err, errlen);
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

static void clock_observe(struct et_agent *a, int64_t now_ms)
{
    a->clock_synced = et_time_synced();
    if (et_timefix_observe(&a->timefix, a->clock_synced, now_ms, et_time_wall_ms()))
        et_info("time", "wall clock synchronised: samples of this boot taken before now "
                "will be sent with corrected times");
}

static int uplink_start(struct et_agent *a)
{
    int rc = et_mqtt_start(a->mqtt);

    if (rc) {
        et_error("uplink", "cannot start MQTT client: %s", strerror(-rc));
        return rc;
    }
    a->mqtt_started = true;
    return 0;
}

/*
 * With an unsynchronised wall clock the broker's certificate looks not yet
 * valid (or expired) and TLS fails. So the agent waits for the clock before
 * it connects, collecting all along, for at most clock_wait; then it tries
 * anyway (the clock may be right without NTP saying so).
 */
static int clock_gate(struct et_agent *a, int64_t now_ms)
{
    if (a->mqtt_started)
        return 0;
    if (a->clock_synced) {
        if (a->clock_wait_began) {
            snprintf(a->connect_note, sizeof(a->connect_note),
                     "waited %" PRId64 " s for the wall clock to synchronise",
                     (now_ms - a->clock_wait_began) / 1000);
            et_info("time", "wall clock synchronised: connecting now");
        }
        return uplink_start(a);
    }
    if (a->clock_wait_began == 0) {
        a->clock_wait_began = now_ms;
        et_warn("time", "wall clock not synchronised (adjtimex reports unsynced): not connecting "
                "yet, as TLS certificate checks would fail with a wrong clock; collecting into "
                "the outbox; waiting up to %" PRId64 " s for NTP ([mqtt] clock_wait)",
                a->cfg->clock_wait_ms / 1000);
    }
    if (now_ms - a->clock_wait_began >= a->cfg->clock_wait_ms) {
        snprintf(a->connect_note, sizeof(a->connect_note),
                 "wall clock still not synchronised after %" PRId64 " s; connecting anyway",
                 a->cfg->clock_wait_ms / 1000);
        et_warn("time", "%s", a->connect_note);
        return uplink_start(a);
    }
    return 0;
}

int et_agent_start(struct et_agent *a)
{
    int64_t now_ms = et_time_mono_ms();
    int rc = 0;

    clock_observe(a, now_ms);
    if (!a->mqtt)
        ;   /* no broker configured */
    else if (a->cfg->insecure || a->cfg->clock_wait_ms <= 0)
        rc = uplink_start(a);
    else
        rc = clock_gate(a, now_ms);
    if (rc)
        return rc;
    et_info("agent", "device %s: %zu collectors, outbox %s/outbox.db (next seq %" PRIu64 "), "
            "broker %s:%d%s", a->cfg->device_id, a->n_collectors, a->cfg->data_dir,
            et_outbox_next_seq(a->outbox), a->cfg->host ? a->cfg->host : "(none)", a->cfg->port,
            a->cfg->insecure ? " (INSECURE, no TLS)" : " (mutual TLS)");
    return 0;
}

int et_agent_step(struct et_agent *a, int stop_fd, int max_wait_ms)
{
    int64_t now_ms = et_time_mono_ms();
    int64_t next = et_sched_next_due(a->sched);
    int64_t wait = next == INT64_MAX ? max_wait_ms : next - now_ms;
    struct pollfd fds[2] = {
        { .fd = stop_fd, .events = POLLIN },
        { .fd = a->mqtt ? et_mqtt_fd(a->mqtt) : -1, .events = POLLIN },
    };
    int rc;

    if (wait < 0)
        wait = 0;
    if (wait > max_wait_ms)
        wait = max_wait_ms;
    rc = poll(fds, 2, (int)wait);
    if (rc < 0 && errno != EINTR) {
        et_error("agent", "poll: %s", strerror(errno));
        return -errno;
    }
    if (rc > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
        return 1;
    if (rc > 0 && (fds[1].revents & POLLIN))
        et_mqtt_dispatch(a->mqtt, on_mqtt_event, a);
    now_ms = et_time_mono_ms();
    clock_observe(a, now_ms);
    if (a->mqtt && !a->mqtt_started && (rc = clock_gate(a, now_ms)) != 0)
        return rc;
    et_sched_run_due(a->sched, now_ms);
    uplink_pump(a, now_ms);
    return 0;
}

void et_agent_stop(struct et_agent *a)
{
    struct et_outbox_stats st = { 0 };

    /* Keep what was collected, say goodbye, leave. */
    agent_flush(a, et_time_mono_ms());
    agent_commit(a);
    if (a->n_held || et_batch_samples(a->batch)) {
        uint64_t lost = et_batch_samples(a->batch);

        for (size_t i = 0; i < a->n_held; i++)
            lost += a->held[i].n_samples;
        /* The storage failed to the end: say what is lost, never silently. */
        et_error("outbox", "stopping with %" PRIu64 " samples that could not be stored; they "
                 "are lost", lost);
    }
    et_outbox_stats(a->outbox, &st);
    status_publish(a, false, "agent stopped");
    et_mqtt_destroy(a->mqtt, SHUTDOWN_TIMEOUT_MS);
    a->mqtt = NULL;
    a->connected = false;
    et_info("agent", "stopped: %" PRIu64 " batches made, %" PRIu64 " sent, %" PRIu64
            " acknowledged, %" PRIu64 " waiting in the outbox",
            a->batches_made, a->batches_sent, a->batches_acked, st.batches);
}

int et_agent_run(struct et_agent *a, int stop_fd)
{
    int rc = et_agent_start(a);

    while (rc == 0)
        rc = et_agent_step(a, stop_fd, MAX_POLL_MS);
    et_agent_stop(a);
    return rc < 0 ? rc : 0;
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
    et_mqtt_destroy(a->mqtt, SHUTDOWN_TIMEOUT_MS);
    for (size_t i = 0; i < a->n_collectors; i++)
        et_collector_fini(&a->collectors[i].c);
    free(a->collectors);
    et_sched_destroy(a->sched);
    et_batch_destroy(a->batch);
    et_outbox_close(a->outbox);
    held_clear(a);
    free(a->held);
    free(a->inflight);
    free(a);
}

/* ---- --once --print --------------------------------------------------------- */

static const char *unit_for_person(const char *unit)
{
    if (strcmp(unit, "Cel") == 0)
        return "°C";
    if (strcmp(unit, "By") == 0)
        return "B";
    if (strcmp(unit, "1") == 0)
        return "";
    return unit;
}

static int print_value(void *ctx, const char *metric, const char *unit, const struct et_value *v)
{
    FILE *out = ctx;
    const char *dot = strchr(metric, '.');
    const char *chan = dot ? dot + 1 : metric;
    const char *u = unit_for_person(unit ? unit : "");
    double bytes = v->type == ET_TYPE_I64 ? (double)v->u.i64 : v->type == ET_TYPE_F64 ? v->u.f64 : 0;

    if (unit && strcmp(unit, "By") == 0 && bytes >= 1024.0) {
        static const char *const prefixes[] = { "KiB", "MiB", "GiB", "TiB" };
        int k = -1;

        while (bytes >= 1024.0 && k < 3) {
            bytes /= 1024.0;
            k++;
        }
        fprintf(out, "  %-28s %14.2f %s\n", chan, bytes, prefixes[k]);
        return 0;
    }
    switch (v->type) {
    case ET_TYPE_F64:
        fprintf(out, "  %-28s %14.3f %s\n", chan, v->u.f64, u);
        break;
    case ET_TYPE_I64:
        fprintf(out, "  %-28s %14" PRId64 " %s\n", chan, v->u.i64, u);
        break;
    case ET_TYPE_BOOL:
        fprintf(out, "  %-28s %14s %s\n", chan, v->u.b ? "yes" : "no", u);
        break;
    case ET_TYPE_STR:
        fprintf(out, "  %-28s %14s %s\n", chan, v->u.str, u);
        break;
    }
    return 0;
}

int et_agent_print_once(const struct et_config *cfg, FILE *out)
{
    struct et_collector *cs = calloc(cfg->n_collectors ? cfg->n_collectors : 1, sizeof(*cs));
    int failed = 0;
    int64_t now_ms = et_time_mono_ms();
    const struct timespec settle = { .tv_sec = 0, .tv_nsec = 250 * 1000 * 1000 };

    if (!cs)
        return 1;
    /* Probe everything first, then give rate-style collectors (CPU) a
     * quarter second to have something to measure. */
    for (size_t i = 0; i < cfg->n_collectors; i++) {
        if (!cfg->collectors[i].enabled || et_collector_init(&cs[i], &cfg->collectors[i]) != 0)
            continue;
        et_collector_probe(&cs[i], now_ms);
    }
    nanosleep(&settle, NULL);
    now_ms = et_time_mono_ms();
    for (size_t i = 0; i < cfg->n_collectors; i++) {
        const struct et_collector_cfg *cc = &cfg->collectors[i];

        if (!cc->enabled) {
            fprintf(out, "%s (%s): disabled\n\n", cc->name, cc->type);
            continue;
        }
        if (!cs[i].dev.drv) {
            fprintf(out, "%s (%s): FAILED: driver not built in\n\n", cc->name, cc->type);
            failed = 1;
            continue;
        }
        if (cs[i].state != ET_COLLECTOR_RUNNING && cs[i].probe_rc == -ENODEV) {
            /* Absent hardware is a fact about the board, not a failure. */
            fprintf(out, "%s (%s): not present: %s\n\n", cc->name, cc->type,
                     cs[i].dev.err[0] ? cs[i].dev.err : strerror(ENODEV));
            continue;
        }
        if (cs[i].state != ET_COLLECTOR_RUNNING) {
            fprintf(out, "%s (%s): FAILED: %s\n\n", cc->name, cc->type, cs[i].logged_err);
            failed = 1;
            continue;
        }
        fprintf(out, "%s (%s, every %.1fs%s%s)\n", cc->name, cc->type, cc->interval_ms / 1000.0,
                cc->tags ? "; " : "", cc->tags ? cc->tags : "");
        int rc = et_collector_round(&cs[i], now_ms, print_value, out);

        if (rc < 0) {
            fprintf(out, "  FAILED: %s\n", cs[i].logged_err);
            failed = 1;
        } else if (cs[i].failing) {
            fprintf(out, "  PROBLEM: %s\n", cs[i].logged_err);
            failed = 1;
        }
        fputc('\n', out);
    }
    for (size_t i = 0; i < cfg->n_collectors; i++)
        et_collector_fini(&cs[i]);
    free(cs);
    return failed;
}
