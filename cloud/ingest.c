/*
 * Ingest: topic + payload -> store transaction -> Ack. See ingest.h.
 */
#include "ingest_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edgetel/ack.h"
#include "edgetel/budget.h"
#include "edgetel/codec.h"
#include "edgetel/log.h"
#include "edgetel/retime.h"

/* Largest |base_mono_ms| and |base_wall_ms| accepted (see ingest_check_batch). */
#define INGEST_TIME_LIMIT (INT64_C(1) << 62)
/*
 * The sane window of a sample's wall time (ingest_check_times): a clock
 * that says it is synchronised (or corrected, or says nothing) reads
 * from 2000-01-01 to a day ahead of the aggregator's clock; a clock that
 * says it is not (UNSYNCED, UNCORRECTABLE: a board without a real-time
 * clock before NTP, which reads 1970 plus its uptime or the time it last
 * saved) still reads between 1970 and 2100, beyond which it is no clock.
 */
#define INGEST_SYNCED_MIN_MS INT64_C(946684800000)      /* 2000-01-01T00:00:00Z */
#define INGEST_AHEAD_MAX_MS (INT64_C(24) * 3600 * 1000)
#define INGEST_UNSYNCED_MIN_MS INT64_C(0)               /* 1970-01-01T00:00:00Z */
#define INGEST_UNSYNCED_MAX_MS INT64_C(4102444800000)   /* 2100-01-01T00:00:00Z */
/* A store that keeps failing is reminded of at most this often. */
#define INGEST_REMIND_MS 60000

int et_ingest_create(struct et_ingest **out, struct et_store_writer *w, const char *topic_root)
{
    struct et_ingest *ig;
    size_t n;

    *out = NULL;
    if (!w || !topic_root)
        return -EINVAL;
    n = strlen(topic_root);
    if (n == 0 || n > ET_TOPIC_ROOT_MAX || strpbrk(topic_root, "+#") ||
        topic_root[n - 1] == '/')
        return -EINVAL;
    ig = calloc(1, sizeof(*ig));
    if (!ig)
        return -ENOMEM;
    ig->w = w;
    memcpy(ig->root, topic_root, n + 1);
    *out = ig;
    return 0;
}

void et_ingest_destroy(struct et_ingest *ig)
{
    if (!ig)
        return;
    ingest_group_free(ig);
    et_budget_destroy(ig->budget);
    free(ig->mono);
    free(ig->metric_ids);
    free(ig->ack);
    free(ig);
}

const struct et_ingest_stats *et_ingest_stats(const struct et_ingest *ig)
{
    return &ig->stats;
}

int et_ingest_set_budget(struct et_ingest *ig, const struct et_budget_cfg *cfg)
{
    struct et_budget *b = NULL;
    int ret;

    if (cfg && (cfg->samples_per_s || cfg->bytes_per_s)) {
        ret = et_budget_create(&b, cfg);
        if (ret < 0)
            return ret;
    }
    et_budget_destroy(ig->budget);
    ig->budget = b;
    if (b)
        ig->budget_cfg = *cfg;
    return 0;
}

int et_ingest_parse_topic(const char *root, const char *topic, char *device,
                          const char **leaf)
{
    size_t rlen = strlen(root);
    const char *dev, *slash;
    size_t dlen;

    if (strncmp(topic, root, rlen) != 0 || strncmp(topic + rlen, "/v1/", 4) != 0)
        return -ENOENT;
    dev = topic + rlen + 4;
    slash = strchr(dev, '/');
    if (!slash)
        return -EINVAL;
    dlen = (size_t)(slash - dev);
    if (dlen == 0 || dlen > ET_DEVICE_ID_MAX)
        return -EINVAL;
    memcpy(device, dev, dlen);
    device[dlen] = '\0';
    if (!et_device_id_valid(device)) {
        device[0] = '\0';
        return -EINVAL;
    }
    *leaf = slash + 1;
    return 0;
}

static int grow(void **buf, size_t *cap, size_t need, size_t elem)
{
    void *p;

    if (need <= *cap)
        return 0;
    p = realloc(*buf, need * elem);
    if (!p)
        return -ENOMEM;
    *buf = p;
    *cap = need;
    return 0;
}

static int ingest_malformed(struct et_ingest *ig, struct et_ingest_reply *reply,
                            const char *topic, const char *what, const char *why)
{
    ig->stats.malformed++;
    reply->kind = ET_INGEST_MALFORMED;
    if (reply->device[0])
        et_warn("ingest", "device %s: dropped a malformed %s on %s: %s",
                reply->device, what, topic, why);
    else
        et_warn("ingest", "dropped a malformed %s on %s: %s", what, topic, why);
    return 0;
}

/*
 * The topic is the identity we trust (ingest.h): a message naming another
 * device than its topic's is malformed. True when it does (logged, counted).
 */
static bool ingest_other_device(struct et_ingest *ig, struct et_ingest_reply *reply,
                                const char *topic, const char *what, const char *device_id)
{
    char why[128];

    if (strcmp(device_id, reply->device) == 0)
        return false;
    snprintf(why, sizeof(why), "device_id \"%.64s\" differs from the topic's", device_id);
    ingest_malformed(ig, reply, topic, what, why);
    return true;
}

/* ---- the store's health --------------------------------------------------- */

/* Unix ms as ISO 8601 UTC, whole seconds or with ms; a number when out of range. */
static void ingest_iso(int64_t ms, bool with_ms, char *buf, size_t len)
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : -1);
    struct tm tm;
    size_t n;

    if (ms < 0 || ms > INGEST_UNSYNCED_MAX_MS * 4 || !gmtime_r(&secs, &tm)) {
        snprintf(buf, len, "%" PRId64 " ms", ms);
        return;
    }
    n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    if (with_ms)
        snprintf(buf + n, len - n, ".%03dZ", (int)(ms % 1000));
    else
        snprintf(buf + n, len - n, "Z");
}

/*
 * The store failed (count messages not stored). A store that fails every
 * batch must be said once, clearly, not once a batch: the first failure
 * is one error line with since when, why, and what it means for the
 * devices; then a reminder at most once a minute with the count; and one
 * line when it works again. -ECANCELED is a group already spoiled by a
 * failure reported before: counted, the reason kept.
 */
static void ingest_store_trouble(struct et_ingest *ig, int err, const char *what, uint64_t count)
{
    struct ingest_health *h = &ig->health;
    const char *detail = et_store_last_error(ig->w);
    char since[40];

    if (err != -ECANCELED || !h->reason[0])
        snprintf(h->reason, sizeof(h->reason), "%s: %s", what,
                 detail && detail[0] ? detail : strerror(-err));
    if (!h->failing) {
        h->failing = true;
        h->since_ms = ig->now_ms;
        h->failed = count;
        h->next_remind_ms = ig->now_ms + INGEST_REMIND_MS;
        ingest_iso(h->since_ms, false, since, sizeof(since));
        et_error("ingest", "store is failing since %s: %s; batches are not stored and not "
                 "acknowledged (the devices keep them and send them again)", since, h->reason);
        return;
    }
    h->failed += count;
    if (ig->now_ms >= h->next_remind_ms) {
        h->next_remind_ms = ig->now_ms + INGEST_REMIND_MS;
        ingest_iso(h->since_ms, false, since, sizeof(since));
        et_error("ingest", "store still failing since %s (%" PRId64 " s): %" PRIu64 " batches "
                 "and statuses not stored and not acknowledged since; last reason: %s", since,
                 (ig->now_ms - h->since_ms) / 1000, h->failed, h->reason);
    }
}

/* A commit succeeded: if the store was failing, say once that it works again. */
static void ingest_store_works(struct et_ingest *ig)
{
    struct ingest_health *h = &ig->health;

    if (!h->failing)
        return;
    et_info("ingest", "store works again after failing for %" PRId64 " s: %" PRIu64 " batches "
            "and statuses were not stored meanwhile; their devices send them again",
            (ig->now_ms - h->since_ms) / 1000, h->failed);
    *h = (struct ingest_health){ .failing = false };
}

/* The store (or memory) failed: undo, count, and tell the caller not to ack. */
static int ingest_store_failed(struct et_ingest *ig, struct et_ingest_reply *reply,
                               int err, const char *what)
{
    ingest_tx_rollback(ig);
    ig->stats.store_errors++;
    reply->kind = ET_INGEST_NONE;
    et_debug("ingest", "device %s: %s not stored: %s (the device will send it again)",
             reply->device, what, strerror(-err));
    ingest_store_trouble(ig, err, what, 1);
    return err;
}

/*
 * Where a message's counts go: the stats, or inside a group the pending
 * counts that become stats only when the group commits.
 */
static struct et_ingest_stats *ingest_counts(struct et_ingest *ig)
{
    if (!ig->group.open)
        return &ig->stats;
    ig->pending_msgs++;
    return &ig->pending;
}

/* The message's transaction committed (outside a group, the store works). */
static void ingest_committed(struct et_ingest *ig)
{
    if (!ig->group.open)
        ingest_store_works(ig);
}

void ingest_group_settled(struct et_ingest *ig, int ret)
{
    struct et_ingest_stats *st = &ig->stats;
    const struct et_ingest_stats *p = &ig->pending;

    if (ret == 0) {
        st->batches += p->batches;
        st->samples += p->samples;
        st->retimed += p->retimed;
        st->duplicates += p->duplicates;
        st->statuses += p->statuses;
        st->new_devices += p->new_devices;
        st->new_streams += p->new_streams;
        if (ig->pending_msgs)
            ingest_store_works(ig);
    } else if (ig->pending_msgs) {
        st->store_errors += ig->pending_msgs;
        ingest_store_trouble(ig, ret, "commit", ig->pending_msgs);
    }
    ig->pending = (struct et_ingest_stats){ 0 };
    ig->pending_msgs = 0;
}

/*
 * A sample's wall time is refused outside the sane window of its clock
 * (see INGEST_SYNCED_MIN_MS): -146 million years is garbage, not a time,
 * and a "synchronised" clock in 1970 or next week is lying.
 */
static int ingest_check_time(int64_t wall, int tq, int64_t now_ms, size_t i, char *why,
                             size_t whylen)
{
    char when[48];
    bool unreliable = tq == ET_TQ_UNSYNCED || tq == ET_TQ_UNCORRECTABLE;

    if (unreliable && wall >= INGEST_UNSYNCED_MIN_MS && wall < INGEST_UNSYNCED_MAX_MS)
        return 0;
    if (!unreliable && wall >= INGEST_SYNCED_MIN_MS && wall <= now_ms + INGEST_AHEAD_MAX_MS)
        return 0;
    ingest_iso(wall, true, when, sizeof(when));
    if (unreliable)
        snprintf(why, whylen, "sample %zu: wall time %s is outside 1970-01-01..2100-01-01, "
                 "which even an unsynchronised clock reads", i, when);
    else if (wall < INGEST_SYNCED_MIN_MS)
        snprintf(why, whylen, "sample %zu: wall time %s is before 2000-01-01 on a synchronised "
                 "clock", i, when);
    else
        snprintf(why, whylen, "sample %zu: wall time %s is more than a day ahead of the "
                 "aggregator's clock", i, when);
    return -EBADMSG;
}

/*
 * What et_wire_decode_batch() does not check and this file relies on: the
 * seq fits the store's signed 64-bit column and every sample's wall time is
 * representable and sane. (Metric indexes, values, seq 0 and oldest_seq
 * are the codec's checks, see codec.h.)
 */
static int ingest_check_batch(struct et_ingest *ig, const Edgetel__V1__Batch *b,
                              int64_t now_ms, char *why, size_t whylen)
{
    int ret, tq;

    int64_t wall;

    if (b->seq > (uint64_t)INT64_MAX) {
        snprintf(why, whylen, "seq %" PRIu64 " is above the largest the store keeps (%"
                 PRId64 ")", (uint64_t)b->seq, INT64_MAX);
        return -EBADMSG;
    }
    /* The codec bounds each delta and the number of samples, so their sum
     * stays far below 2^62; bounding the bases too keeps the running sum in
     * et_wire_sample_times() from overflowing. No real clock is near this. */
    if (b->base_mono_ms > INGEST_TIME_LIMIT || b->base_mono_ms < -INGEST_TIME_LIMIT ||
        b->base_wall_ms > INGEST_TIME_LIMIT || b->base_wall_ms < -INGEST_TIME_LIMIT) {
        snprintf(why, whylen, "base time out of range (mono %" PRId64 ", wall %" PRId64 ")",
                 b->base_mono_ms, b->base_wall_ms);
        return -EBADMSG;
    }
    if (grow((void **)&ig->mono, &ig->mono_cap, b->n_samples, sizeof(*ig->mono)) < 0)
        return -ENOMEM;
    et_wire_sample_times(b, ig->mono);
    for (size_t i = 0; i < b->n_samples; i++) {
        if (__builtin_sub_overflow(ig->mono[i], b->base_mono_ms, &wall) ||
            __builtin_add_overflow(wall, b->base_wall_ms, &wall)) {
            snprintf(why, whylen, "sample %zu: time out of range", i);
            return -EBADMSG;
        }
        tq = (int)b->samples[i]->time_quality;
        ret = ingest_check_time(wall, tq != ET_TQ_UNSPECIFIED ? tq : (int)b->time_quality,
                                now_ms, i, why, whylen);
        if (ret < 0)
            return ret;
    }
    return 0;
}

/*
 * Charge a message to its device's budget (budget.h). Over it: refused
 * before the store sees it, not acknowledged, logged once a minute per
 * device, counted. True when refused.
 */
static bool ingest_over_budget(struct et_ingest *ig, struct et_ingest_reply *reply,
                               const char *what, uint64_t seq, uint64_t samples, size_t len)
{
    struct et_budget_verdict v;
    char seq_text[32] = "";

    if (!ig->budget)
        return false;
    et_budget_charge(ig->budget, reply->device, samples, len, ig->now_ms, &v);
    if (!v.over)
        return false;
    ig->stats.over_budget++;
    reply->kind = ET_INGEST_OVER_BUDGET;
    if (v.log) {
        if (seq)
            snprintf(seq_text, sizeof(seq_text), " seq %" PRIu64, seq);
        et_warn("ingest", "device %s is over its budget of %s (%" PRIu64 " samples/s, burst %"
                PRIu64 "; %" PRIu64 " bytes/s, burst %" PRIu64 "): %s%s (%" PRIu64 " samples, "
                "%zu bytes) not stored and not acknowledged; the device keeps it and sends it "
                "again. %" PRIu64 " refused since the last such line",
                reply->device, v.which, ig->budget_cfg.samples_per_s,
                ig->budget_cfg.sample_burst, ig->budget_cfg.bytes_per_s,
                ig->budget_cfg.byte_burst, what, seq_text, samples, len, v.refused);
    }
    return true;
}

static void ingest_value(const Edgetel__V1__Sample *s, struct et_store_value *v)
{
    switch (s->value_case) {
    case EDGETEL__V1__SAMPLE__VALUE_F64:
        v->type = ET_TYPE_F64;
        v->u.f64 = s->f64;
        break;
    case EDGETEL__V1__SAMPLE__VALUE_I64:
        v->type = ET_TYPE_I64;
        v->u.i64 = s->i64;
        break;
    case EDGETEL__V1__SAMPLE__VALUE_B:
        v->type = ET_TYPE_BOOL;
        v->u.b = s->b;
        break;
    default:   /* STR; the codec refuses a sample without a value */
        v->type = ET_TYPE_STR;
        v->u.str = s->str;
        break;
    }
}

static void ingest_boot_hex(const ProtobufCBinaryData *boot_id, char *out)
{
    if (boot_id->len == ET_BOOT_ID_LEN)
        et_store_hex(boot_id->data, boot_id->len, out);
    else
        out[0] = '\0';
}

/* Keep a metric's tags as its latest batch has them ("k=v,k2=v2"). The
 * decoder checked every tag (no '=' or ',' inside, lengths bounded). */
static int ingest_metric_tags(struct et_ingest *ig, const Edgetel__V1__Metric *m, int64_t id)
{
    char tags[ET_TAGS_TEXT_MAX];
    size_t used = 0;

    tags[0] = '\0';
    for (size_t t = 0; t < m->n_tags && used < sizeof(tags); t++)
        used += (size_t)snprintf(tags + used, sizeof(tags) - used, "%s%s=%s", t ? "," : "",
                                 m->tags[t]->key, m->tags[t]->value);
    return et_store_metric_tags(ig->w, id, tags);
}

/*
 * Store the batch's rows; the transaction is open. Each sample gets the
 * wall time re-timing gives it, or keeps the one it was measured with and
 * is counted in the batch row when it still waits for its boot's clock
 * (retime.h).
 */
static int ingest_store_rows(struct et_ingest *ig, const Edgetel__V1__Batch *b,
                             const char *device, const char *stream_hex, const char *boot_hex,
                             int64_t now_ms)
{
    struct et_store_batch row = {
        .device = device,
        .stream_hex = stream_hex,
        .seq = b->seq,
        .received_ms = now_ms,
        .n_samples = (uint32_t)b->n_samples,
        .historical = b->historical,
        .boot_id_hex = boot_hex,
        .time_quality = (enum et_time_quality)b->time_quality,
    };
    struct et_store_clock own = {
        .base_wall_ms = b->base_wall_ms, .base_mono_ms = b->base_mono_ms,
    };
    struct et_retime rt;
    uint64_t retimed = 0, earlier = 0;
    int64_t id;
    int ret;

    if (grow((void **)&ig->metric_ids, &ig->metric_cap, b->n_metrics,
             sizeof(*ig->metric_ids)) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < b->n_metrics; i++) {
        ret = et_store_metric_id(ig->w, device, b->metrics[i]->name, b->metrics[i]->unit,
                                 &ig->metric_ids[i]);
        if (ret < 0)
            return ret;
        ret = ingest_metric_tags(ig, b->metrics[i], ig->metric_ids[i]);
        if (ret < 0)
            return ret;
    }
    snprintf(own.boot_id_hex, sizeof(own.boot_id_hex), "%s", boot_hex);
    ret = et_retime_clock(ig->w, device, &own,
                          b->time_quality == EDGETEL__V1__TIME_QUALITY__TIME_QUALITY_SYNCED, &rt);
    if (ret < 0)
        return ret;
    for (size_t i = 0; i < b->n_samples; i++) {
        const Edgetel__V1__Sample *s = b->samples[i];
        struct et_store_sample smp = {
            .metric_id = ig->metric_ids[s->metric],
            /* Overflow was ruled out by ingest_check_batch(). */
            .ts_ms = b->base_wall_ms + (ig->mono[i] - b->base_mono_ms),
            .mono_ms = ig->mono[i],
            .time_quality = s->time_quality != EDGETEL__V1__TIME_QUALITY__TIME_QUALITY_UNSPECIFIED
                ? (enum et_time_quality)s->time_quality
                : (enum et_time_quality)b->time_quality,
            .seq = b->seq,
        };

        if (et_retime_sample(&rt, smp.mono_ms, smp.time_quality, &smp.ts_ms)) {
            smp.time_quality = ET_TQ_CORRECTED;
            retimed++;
        } else if (smp.time_quality == ET_TQ_UNSYNCED) {
            row.unsynced_samples++;
        }
        ingest_value(s, &smp.value);
        ret = et_store_insert_sample(ig->w, &smp, &id);
        if (ret < 0)
            return ret;
        if (i == 0)
            row.first_sample_id = id;
        row.last_sample_id = id;
    }
    ret = et_store_insert_batch(ig->w, &row);
    if (ret < 0)
        return ret;
    /* A batch of a synchronised clock: what earlier batches of its boot
     * left unsynced can be re-timed now, and later ones will use it. */
    ret = et_retime_boot(ig->w, device, &rt, &earlier);
    if (ret < 0)
        return ret;
    if (earlier)
        et_info("ingest", "device %s: re-timed %" PRIu64 " samples of boot %s measured "
                "before its clock was synchronised", device, earlier, boot_hex);
    ig->pending_retimed = retimed + earlier;
    return 0;
}

static int ingest_make_ack(struct et_ingest *ig, const uint8_t *stream_id,
                           struct et_ingest_reply *reply)
{
    size_t len;
    int ret;

    snprintf(ig->ack_topic, sizeof(ig->ack_topic), "%s/v1/%s/ack", ig->root, reply->device);
    free(ig->ack);
    ig->ack = NULL;
    ret = et_ack_encode(reply->device, stream_id, reply->seq, reply->acked_through, &ig->ack,
                        &len);
    if (ret < 0)
        return ret;
    reply->ack_topic = ig->ack_topic;
    reply->ack = ig->ack;
    reply->ack_len = len;
    ingest_hold_ack(ig, reply);
    return 0;
}

/* How a stream is named in log lines. */
static const char *ingest_stream_name(const char *stream_hex)
{
    return stream_hex[0] ? stream_hex : "legacy";
}

/*
 * The device's batches or Status name a stream the store had not heard of
 * for it, now recorded as its current one: say so once (the record is
 * committed, so no instance says it again).
 */
static void ingest_log_new_stream(struct et_ingest_stats *counts, const char *device,
                                  const char *stream_hex, const struct et_store_stream_was *was)
{
    counts->new_streams++;
    if (was->had)
        et_info("ingest", "device %s started a new stream %s (was %s, acked through %" PRIu64
                ")", device, ingest_stream_name(stream_hex), ingest_stream_name(was->stream_hex),
                was->acked_through);
    else
        et_info("ingest", "device %s started stream %s (its first)", device,
                ingest_stream_name(stream_hex));
}

/*
 * Inside the open transaction: record (device, stream) when the store has
 * not heard of it, as the device's current stream; *started says whether
 * it did, *was what it replaced.
 */
static int ingest_note_stream(struct et_ingest *ig, const char *device, const char *stream_hex,
                              int64_t now_ms, bool *started, struct et_store_stream_was *was)
{
    struct et_store_stream st;
    int ret = et_store_stream_get(ig->w, device, stream_hex, &st);

    *started = false;
    if (ret != -ENOENT)
        return ret;
    ret = et_store_stream_start(ig->w, device, stream_hex, now_ms, was);
    *started = ret == 0;
    return ret;
}

/*
 * Whether b's seq and oldest_seq are plausible for its stream (ack.h, "Seq
 * poisoning"): st is what the store holds of the stream, NULL when it has
 * never heard of it. When not, why says so with the numbers.
 */
static bool ingest_seq_plausible(const Edgetel__V1__Batch *b, const struct et_store_stream *st,
                                 const char *stream_hex, int64_t now_ms, char *why,
                                 size_t whylen)
{
    uint64_t limit = et_ack_seq_limit(st, now_ms);
    uint64_t top;

    if (b->seq <= limit && b->oldest_seq <= limit)
        return true;
    top = st ? (st->top_seq > st->acked_through ? st->top_seq : st->acked_through) : 0;
    if (top == 0)
        snprintf(why, whylen, "seq %" PRIu64 " (oldest_seq %" PRIu64 ") of stream %s: a "
                 "stream's first batch starts at most at %" PRIu64 "; refused, neither "
                 "stored nor acked", (uint64_t)b->seq, (uint64_t)b->oldest_seq,
                 ingest_stream_name(stream_hex), limit);
    else
        snprintf(why, whylen, "seq %" PRIu64 " (oldest_seq %" PRIu64 ") of stream %s jumps "
                 "implausibly far ahead of its highest seq %" PRIu64 " (at most %" PRIu64
                 " now); refused, neither stored nor acked", (uint64_t)b->seq,
                 (uint64_t)b->oldest_seq, ingest_stream_name(stream_hex), top, limit);
    return false;
}

static int ingest_batch(struct et_ingest *ig, const char *topic, const void *payload,
                        size_t len, int64_t now_ms, struct et_ingest_reply *reply)
{
    char why[320];
    char boot_hex[2 * ET_BOOT_ID_LEN + 1];
    char stream_hex[ET_STORE_STREAM_HEX_LEN + 1];
    Edgetel__V1__Batch *b = NULL;
    struct et_ingest_stats *counts;
    struct et_store_stream st;
    struct et_store_stream_was was = { .had = false };
    bool seen = false, created = false, known = true;
    uint64_t floor;
    int ret;

    ig->pending_retimed = 0;

    ret = et_wire_decode_batch(payload, len, &b, why, sizeof(why));
    if (ret < 0)
        return ingest_malformed(ig, reply, topic, "batch", why);
    if (ingest_other_device(ig, reply, topic, "batch", b->device_id))
        goto out;   /* ret is 0: dealt with */
    ret = ingest_check_batch(ig, b, now_ms, why, sizeof(why));
    if (ret == -EBADMSG) {
        ret = ingest_malformed(ig, reply, topic, "batch", why);
        goto out;
    }
    if (ret < 0) {
        ret = ingest_store_failed(ig, reply, ret, "batch");
        goto out;
    }
    if (ingest_over_budget(ig, reply, "batch", b->seq, b->n_samples, len))
        goto out;   /* ret is 0: dealt with */
    ingest_boot_hex(&b->boot_id, boot_hex);
    et_store_hex(b->stream_id.data, b->stream_id.len, stream_hex);
    reply->seq = b->seq;
    floor = b->oldest_seq > 0 ? b->oldest_seq - 1 : 0;

    ret = ingest_tx_begin(ig);
    if (ret == 0) {
        ret = et_store_stream_get(ig->w, reply->device, stream_hex, &st);
        known = ret == 0;
        if (ret == -ENOENT)
            ret = 0;
    }
    if (ret == 0 && !ingest_seq_plausible(b, known ? &st : NULL, stream_hex, now_ms, why,
                                          sizeof(why))) {
        /* Nothing was written: end the transaction as it is (a rollback
         * would spoil a group for the other devices' batches). */
        ret = ingest_tx_commit(ig);
        if (ret == 0) {
            ret = ingest_malformed(ig, reply, topic, "batch", why);
            goto out;
        }
    }
    if (ret == 0)
        ret = et_store_batch_seen(ig->w, reply->device, stream_hex, b->seq, &seen);
    if (ret == 0)
        ret = et_store_device_seen(ig->w, reply->device, now_ms, boot_hex,
                                   seen ? 0 : b->n_samples, &created);
    if (ret == 0 && !known)
        ret = et_store_stream_start(ig->w, reply->device, stream_hex, now_ms, &was);
    if (ret == 0 && !seen)
        ret = ingest_store_rows(ig, b, reply->device, stream_hex, boot_hex, now_ms);
    if (ret == 0)
        ret = et_ack_advance(ig->w, reply->device, stream_hex, floor, &reply->acked_through);
    if (ret == 0)
        ret = ingest_tx_commit(ig);
    if (ret < 0) {
        ret = ingest_store_failed(ig, reply, ret, "batch");
        goto out;
    }

    ingest_committed(ig);
    counts = ingest_counts(ig);
    reply->new_device = created;
    if (created) {
        counts->new_devices++;
        counts->new_streams++;
        et_info("ingest", "new device %s (first batch seq %" PRIu64 ", stream %s)",
                reply->device, (uint64_t)b->seq, ingest_stream_name(stream_hex));
    } else if (!known) {
        ingest_log_new_stream(counts, reply->device, stream_hex, &was);
    }
    if (seen) {
        reply->kind = ET_INGEST_DUPLICATE;
        counts->duplicates++;
        et_debug("ingest", "device %s: seq %" PRIu64 " of stream %s again (duplicate), acked "
                 "through %" PRIu64, reply->device, (uint64_t)b->seq,
                 ingest_stream_name(stream_hex), reply->acked_through);
    } else {
        reply->kind = ET_INGEST_STORED;
        counts->batches++;
        counts->samples += b->n_samples;
        counts->retimed += ig->pending_retimed;
        et_debug("ingest", "device %s: seq %" PRIu64 " stored (%zu samples%s), acked"
                 " through %" PRIu64, reply->device, (uint64_t)b->seq, b->n_samples,
                 b->historical ? ", historical" : "", reply->acked_through);
    }
    ret = ingest_make_ack(ig, b->stream_id.len ? b->stream_id.data : NULL, reply);
    if (ret < 0)
        et_error("ingest", "device %s: encoding the ack for seq %" PRIu64 ": %s",
                 reply->device, (uint64_t)b->seq, strerror(-ret));
out:
    et_wire_free_batch(b);
    return ret;
}

static int ingest_status(struct et_ingest *ig, const char *topic, const void *payload,
                         size_t len, int64_t now_ms, struct et_ingest_reply *reply)
{
    char why[256];
    char boot_hex[2 * ET_BOOT_ID_LEN + 1];
    Edgetel__V1__Status *st = NULL;
    struct et_store_status row;
    char stream_hex[ET_STORE_STREAM_HEX_LEN + 1];
    struct et_store_status_was was = { .created = false };
    struct et_ingest_stats *counts;
    struct et_store_stream_was stream_was = { .had = false };
    bool created = false, new_stream = false;
    int ret;

    if (len == 0) {
        /* Someone cleared the retained status (a device taken out of
         * service); the device's row keeps its last state. */
        reply->kind = ET_INGEST_IGNORED;
        ig->stats.ignored++;
        et_debug("ingest", "device %s: retained status cleared", reply->device);
        return 0;
    }
    ret = et_wire_decode_status(payload, len, &st, why, sizeof(why));
    if (ret < 0)
        return ingest_malformed(ig, reply, topic, "status", why);
    if (ingest_other_device(ig, reply, topic, "status", st->device_id))
        goto out;   /* ret is 0: dealt with */
    if (ingest_over_budget(ig, reply, "status", 0, 0, len))
        goto out;
    ingest_boot_hex(&st->boot_id, boot_hex);
    row = (struct et_store_status){
        .device = reply->device,
        .online = st->online,
        .boot_id_hex = boot_hex,
        .agent_version = st->agent_version,
        .outbox_batches = st->outbox_batches,
        .dropped_samples = st->dropped_samples,
        .clock_synced = st->clock_synced,
        .reason = st->reason,
        .device_wall_ms = st->wall_ms,
    };
    et_store_hex(st->stream_id.data, st->stream_id.len, stream_hex);
    ret = ingest_tx_begin(ig);
    /* Only an online Status is the device being heard (see ingest.h). */
    if (ret == 0 && st->online)
        ret = et_store_device_seen(ig->w, reply->device, now_ms, boot_hex, 0, &created);
    if (ret == 0)
        ret = et_store_device_status(ig->w, &row, now_ms, &was);
    /* The birth Status names the stream before any batch of it arrives;
     * an agent from before streams names none. */
    if (ret == 0 && stream_hex[0])
        ret = ingest_note_stream(ig, reply->device, stream_hex, now_ms, &new_stream,
                                 &stream_was);
    if (ret == 0)
        ret = ingest_tx_commit(ig);
    if (ret < 0) {
        ret = ingest_store_failed(ig, reply, ret, "status");
        goto out;
    }
    ingest_committed(ig);
    counts = ingest_counts(ig);
    created = created || was.created;
    reply->changed = !was.had_status || was.online != row.online;
    reply->kind = ET_INGEST_STATUS;
    reply->new_device = created;
    counts->statuses++;
    if (created) {
        counts->new_devices++;
        counts->new_streams += new_stream;
        et_info("ingest", "new device %s (first heard in a status%s%s)", reply->device,
                new_stream ? ", stream " : "", new_stream ? stream_hex : "");
    } else if (new_stream) {
        ingest_log_new_stream(counts, reply->device, stream_hex, &stream_was);
    }
    /* A starting aggregator is replayed every device's retained status:
     * only a change is news. */
    et_log(reply->changed ? ET_LOG_INFO : ET_LOG_DEBUG, "ingest", "device %s %s%s%s%s%s",
           reply->device, st->online ? "online" : "offline",
           st->agent_version[0] ? ", agent " : "", st->agent_version,
           st->reason[0] ? ": " : "", st->reason);
out:
    edgetel__v1__status__free_unpacked(st, NULL);
    return ret;
}

int et_ingest_message(struct et_ingest *ig, const char *topic, const void *payload,
                      size_t len, int64_t now_ms, struct et_ingest_reply *reply)
{
    const char *leaf = NULL;
    int ret;

    *reply = (struct et_ingest_reply){ .kind = ET_INGEST_NONE };
    ig->now_ms = now_ms;
    ret = et_ingest_parse_topic(ig->root, topic, reply->device, &leaf);
    if (ret == -ENOENT) {
        reply->kind = ET_INGEST_IGNORED;
        ig->stats.ignored++;
        et_debug("ingest", "ignored a message on %s (not under %s/v1/)", topic, ig->root);
        return 0;
    }
    if (ret < 0)
        return ingest_malformed(ig, reply, topic, "message",
                                "the topic has no valid device id level");
    if (strcmp(leaf, "telemetry") == 0)
        return ingest_batch(ig, topic, payload, len, now_ms, reply);
    if (strcmp(leaf, "status") == 0)
        return ingest_status(ig, topic, payload, len, now_ms, reply);
    reply->kind = ET_INGEST_IGNORED;
    ig->stats.ignored++;
    et_debug("ingest", "ignored a message on %s", topic);
    return 0;
}
