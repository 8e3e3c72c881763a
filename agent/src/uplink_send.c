/*
 * The uplink's sending: the in-flight window, what goes next (batches in
 * memory, then live rows, then the backlog), resends after ack_timeout,
 * backlog pacing and its progress. The contract is in uplink.h.
 */
#include "uplink_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/log.h"

/* ---- the window ------------------------------------------------------------ */

static bool inflight_has(const struct et_uplink *u, uint64_t seq)
{
    for (size_t i = 0; i < u->n_inflight; i++)
        if (u->inflight[i].seq == seq)
            return true;
    return false;
}

void uplink_inflight_remove_at(struct et_uplink *u, size_t i)
{
    u->inflight[i] = u->inflight[--u->n_inflight];
}

/*
 * Make seq eligible to be sent again: move back the cursors it may be
 * found by. A batch may move between memory and the outbox while in
 * flight (stored late, or its group undone); looking twice costs nothing,
 * the window keeps a seq from going out twice at once.
 */
static void rewind_for(struct et_uplink *u, uint64_t seq)
{
    u->outbox_idle = false;
    if (u->memory_cursor >= seq)
        u->memory_cursor = seq - 1;
    if (seq >= u->live_from) {
        if (u->live_cursor >= seq)
            u->live_cursor = seq - 1;
    } else if (u->backlog_cursor >= seq) {
        u->backlog_cursor = seq - 1;
    }
}

/* ---- the resend timer (uplink_internal.h) ---------------------------------------- */

static int64_t rto_clamp(const struct et_uplink *u, int64_t ms)
{
    if (ms < UPLINK_RTO_MIN_MS)
        ms = UPLINK_RTO_MIN_MS;
    return ms > u->cfg->ack_timeout_ms ? u->cfg->ack_timeout_ms : ms;
}

void uplink_rtt_sample(struct et_uplink *u, int64_t ms)
{
    if (ms < 0)
        return;
    if (u->srtt_ms == 0) {
        u->srtt_ms = ms > 0 ? ms : 1;
        u->rttvar_ms = ms / 2;
    } else {
        int64_t err = u->srtt_ms > ms ? u->srtt_ms - ms : ms - u->srtt_ms;

        u->rttvar_ms = (3 * u->rttvar_ms + err) / 4;
        u->srtt_ms = (7 * u->srtt_ms + ms) / 8;
        if (u->srtt_ms == 0)
            u->srtt_ms = 1;
    }
    u->rto_ms = rto_clamp(u, u->srtt_ms + 4 * u->rttvar_ms);
}

void uplink_note_resent(struct et_uplink *u, uint64_t seq)
{
    u->resent[u->resent_next] = seq;
    u->resent_next = (u->resent_next + 1) % UPLINK_RESENT_RING;
}

static bool was_resent(const struct et_uplink *u, uint64_t seq)
{
    for (size_t i = 0; i < UPLINK_RESENT_RING; i++)
        if (u->resent[i] == seq && seq != 0)
            return true;
    return false;
}

static void resend_timed_out(struct et_uplink *u, int64_t now_ms)
{
    bool backed_off = false;

    for (size_t i = 0; i < u->n_inflight;) {
        if (now_ms - u->inflight[i].sent_ms < u->rto_ms) {
            i++;
            continue;
        }
        et_debug("uplink", "no ack for batch %" PRIu64 " within %" PRId64 " ms: sending again",
                 u->inflight[i].seq, u->rto_ms);
        if (!backed_off) {
            /* Once per pass: a burst of timeouts is one event, not many. */
            u->rto_ms = rto_clamp(u, 2 * u->rto_ms);
            backed_off = true;
        }
        uplink_note_resent(u, u->inflight[i].seq);
        rewind_for(u, u->inflight[i].seq);
        u->resends++;
        uplink_inflight_remove_at(u, i);
    }
}

/*
 * The next unstored batch (in memory only, nothing else holds it), copied
 * with the outbox's spare bytes. 0, -ENOENT or -ENOMEM.
 */
static int next_in_memory(struct et_uplink *u, uint64_t *seq, uint8_t **blob, size_t *len)
{
    const uint8_t *held;
    size_t n;

    while (u->batcher &&
           et_batcher_next_unstored(u->batcher, u->memory_cursor, seq, &held, &n) == 0) {
        u->memory_cursor = *seq;
        if (inflight_has(u, *seq))
            continue;
        *blob = malloc(n + ET_OUTBOX_BLOB_SPARE);
        if (!*blob)
            return -ENOMEM;
        memcpy(*blob, held, n);
        memset(*blob + n, 0, ET_OUTBOX_BLOB_SPARE);
        *len = n;
        return 0;
    }
    return -ENOENT;
}

/*
 * The next batch to send: what is only in memory first, then live rows of
 * the outbox, then the backlog. 0 or -ENOENT.
 */
static int next_to_send(struct et_uplink *u, uint64_t *seq, uint8_t **blob, size_t *len,
                        bool *historical, bool *from_memory)
{
    uint64_t after = u->live_cursor > u->live_from - 1 ? u->live_cursor : u->live_from - 1;
    int rc = next_in_memory(u, seq, blob, len);

    *from_memory = rc == 0;
    if (rc != -ENOENT) {
        *historical = rc == 0 && *seq < u->live_from;
        return rc;
    }
    if (u->outbox_idle && u->outbox_idle_seq == et_outbox_next_seq(u->outbox))
        return -ENOENT;
    for (;;) {
        rc = et_outbox_next(u->outbox, after, seq, blob, len);
        if (rc)
            break;
        u->live_cursor = *seq;
        if (!inflight_has(u, *seq)) {
            *historical = false;
            return 0;
        }
        free(*blob);
        after = *seq;
    }
    if (rc != -ENOENT)
        return rc;
    for (;;) {
        rc = et_outbox_next(u->outbox, u->backlog_cursor, seq, blob, len);
        if (rc == 0 && *seq >= u->live_from) {
            free(*blob);
            rc = -ENOENT;
        }
        if (rc == -ENOENT) {
            u->outbox_idle = true;
            u->outbox_idle_seq = et_outbox_next_seq(u->outbox);
        }
        if (rc)
            return rc;
        u->backlog_cursor = *seq;
        if (!inflight_has(u, *seq)) {
            *historical = true;
            return 0;
        }
        free(*blob);
    }
}

void uplink_dict_wanted(struct et_uplink *u, uint64_t dict_id, uint64_t seq)
{
    if (u->dict_wanted != dict_id)
        et_info("uplink", "the aggregator does not know metric dictionary %" PRIu64 ": sending "
                "it with the batches until one is stored", dict_id);
    u->dict_wanted = dict_id;
    for (size_t i = 0; i < u->n_inflight; i++) {
        if (u->inflight[i].seq != seq)
            continue;
        /* Not stored, not lost: it goes again now, with the dictionary. */
        uplink_note_resent(u, seq);
        rewind_for(u, seq);
        uplink_inflight_remove_at(u, i);
        break;
    }
}

/* ---- backlog pacing ------------------------------------------------------------ */

/* Refill the drain token bucket: drain_rate batches a second, a second's worth at most. */
static void drain_refill(struct et_uplink *u, int64_t now_ms)
{
    double rate = u->cfg->drain_rate;

    if (rate <= 0)
        return;
    if (u->drain_refill_ms == 0)
        u->drain_refill_ms = now_ms;
    u->drain_tokens += (double)(now_ms - u->drain_refill_ms) * rate / 1000.0;
    /* A burst of at most a second's worth (one batch for rates under 1/s). */
    if (u->drain_tokens > (rate > 1.0 ? rate : 1.0))
        u->drain_tokens = rate > 1.0 ? rate : 1.0;
    u->drain_refill_ms = now_ms;
}

/* Backlog rows: stored batches made before this connection, counted, not guessed from seqs. */
int uplink_backlog_rows(struct et_uplink *u, uint64_t *left)
{
    struct et_outbox_stats st;
    uint64_t live;
    int rc = et_outbox_count_from(u->outbox, u->live_from, &live);

    et_outbox_stats(u->outbox, &st);
    *left = rc == 0 && st.batches > live ? st.batches - live : 0;
    return rc;
}

/*
 * While a backlog drains: say every 10 s how many batches are left and
 * when it should end. The rate is how fast the backlog shrank over the
 * last 10 s of this connection, so no ETA is given before one was
 * measured, and a backlog gone within the first 10 s gets one line saying
 * so, not an ETA.
 */
static void drain_report(struct et_uplink *u, int64_t now_ms)
{
    uint64_t left, before = u->drain_left_at_report;
    double secs, rate;

    if (now_ms - u->drain_report_ms < DRAIN_REPORT_MS)
        return;
    if (uplink_backlog_rows(u, &left) != 0)
        return;
    secs = (double)(now_ms - u->drain_report_ms) / 1000.0;
    rate = before > left ? (double)(before - left) / secs : 0;
    if (left == 0 && before > 0)
        et_info("uplink", "backlog drained");
    else if (left > 0 && rate > 0)
        et_info("uplink", "draining backlog: %" PRIu64 " %s left, %.1f batches/s, ETA %.0f s",
                left, left == 1 ? "batch" : "batches", rate, (double)left / rate);
    else if (left > 0)
        et_info("uplink", "draining backlog: %" PRIu64 " %s left, waiting for acks", left,
                left == 1 ? "batch" : "batches");
    u->drain_left = left;
    u->drain_eta_s = left > 0 && rate > 0 ? (double)left / rate : -1;
    u->drain_report_ms = now_ms;
    u->drain_left_at_report = left;
}

/* ---- sending --------------------------------------------------------------------- */

/* Re-time (when the clock says so) and mark historical; blob may be replaced. */
static void prepare_for_wire(struct et_uplink *u, uint64_t seq, uint8_t **blob, size_t *len,
                             bool historical)
{
    uint8_t *fixed;
    size_t fixed_len;
    int rc = et_clock_retime(u->clock, *blob, *len, &fixed, &fixed_len);

    if (rc == 1) {
        free(*blob);
        *blob = fixed;
        *len = fixed_len;
    } else if (rc < 0) {
        et_warn("time", "batch %" PRIu64 ": cannot re-time (%s); sending as measured",
                seq, strerror(-rc));
    }
    rc = u->dict_wanted && u->batcher
        ? et_batcher_with_dict(u->batcher, *blob, *len, &fixed, &fixed_len) : -ENODATA;
    if (rc == 0) {
        /* Room for the historical mark, as the outbox leaves. */
        uint8_t *roomy = realloc(fixed, fixed_len + ET_OUTBOX_BLOB_SPARE);

        if (roomy) {
            free(*blob);
            *blob = roomy;
            *len = fixed_len;
        } else {
            free(fixed);
        }
    } else if (rc == -ENOENT && !u->dict_lost_said) {
        /* Its dictionary is gone (PATH.dict removed by hand): the
         * aggregator cannot read it and keeps it unacknowledged. */
        et_warn("uplink", "batch %" PRIu64 ": the aggregator asks for its metric dictionary, "
                "which this outbox no longer has; it stays unacknowledged", seq);
        u->dict_lost_said = true;
    }
    if (historical)
        *len = et_batch_mark_historical(*blob, *len);
}

void et_uplink_pump(struct et_uplink *u, int64_t now_ms)
{
    if (!u || !u->connected)
        return;
    resend_timed_out(u, now_ms);
    drain_refill(u, now_ms);
    drain_report(u, now_ms);
    while (u->n_inflight < u->cfg->max_inflight) {
        uint64_t seq;
        uint8_t *blob;
        size_t len;
        bool historical, from_memory;
        int rc = next_to_send(u, &seq, &blob, &len, &historical, &from_memory);

        if (rc) {
            if (rc != -ENOENT)
                et_error("outbox", "cannot read the next batch to send: %s", strerror(-rc));
            return;
        }
        /* What is only in memory is not paced: it is the first to be dropped. */
        if (historical && !from_memory && u->cfg->drain_rate > 0) {
            if (u->drain_tokens < 1.0) {
                /* Over the drain rate: the backlog waits, live data does not. */
                rewind_for(u, seq);
                free(blob);
                return;
            }
            u->drain_tokens -= 1.0;
        }
        prepare_for_wire(u, seq, &blob, &len, historical);
        rc = et_mqtt_publish(u->mqtt, u->topic_telemetry, blob, len, 1, false);
        free(blob);
        if (rc < 0) {
            rewind_for(u, seq);
            if (rc != -EAGAIN && rc != -ENOTCONN)
                et_warn("uplink", "publish of batch %" PRIu64 " failed: %s", seq, strerror(-rc));
            return;
        }
        u->inflight[u->n_inflight++] = (struct inflight){
            .seq = seq, .sent_ms = now_ms, .again = was_resent(u, seq),
        };
        u->batches_sent++;
    }
}
