/*
 * Ingest: topic + payload -> store transaction -> Ack. See ingest.h.
 */
#include "ingest_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/ack.h"
#include "edgetel/budget.h"
#include "edgetel/codec.h"
#include "edgetel/log.h"

int et_ingest_create(struct et_ingest **out, struct et_store_writer *w, const char *topic_root)
{
    struct et_ingest *ig;

    *out = NULL;
    if (!w || !et_ingest_root_valid(topic_root))
        return -EINVAL;
    ig = calloc(1, sizeof(*ig));
    if (!ig)
        return -ENOMEM;
    ig->w = w;
    memcpy(ig->root, topic_root, strlen(topic_root) + 1);
    *out = ig;
    return 0;
}

void et_ingest_destroy(struct et_ingest *ig)
{
    if (!ig)
        return;
    ingest_group_free(ig);
    ingest_malformed_free(ig);
    et_budget_destroy(ig->budget);
    free(ig->mono);
    free(ig->metric_ids);
    free(ig->kinds);
    free(ig->expanded);
    ingest_dict_free(ig);
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

bool et_ingest_root_valid(const char *root)
{
    size_t n = root ? strlen(root) : 0;

    return n > 0 && n <= ET_TOPIC_ROOT_MAX && !strpbrk(root, "+#") && root[n - 1] != '/';
}

void et_ingest_set_config(struct et_ingest *ig, struct et_store_config *sc)
{
    ig->config = sc;
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

/*
 * The topic is the identity we trust (ingest.h): a message naming another
 * device than its topic's is malformed. True when it does (logged, counted).
 */
bool ingest_other_device(struct et_ingest *ig, struct et_ingest_reply *reply,
                                const char *topic, const char *what, const char *device_id)
{
    char why[128];

    if (strcmp(device_id, reply->device) == 0)
        return false;
    snprintf(why, sizeof(why), "device_id \"%.64s\" differs from the topic's", device_id);
    ingest_malformed(ig, reply, topic, what, why);
    return true;
}

/*
 * A sample's wall time is refused outside the sane window of its clock
 * (see INGEST_SYNCED_MIN_MS): -146 million years is garbage, not a time,
 * and a "synchronised" clock in 1970 or next week is lying. -EDOM: the
 * batch is quarantined, not stored.
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
    return -EDOM;
}

/*
 * What et_wire_decode_batch() does not check and this file relies on: the
 * seq fits the store's signed 64-bit column (-EBADMSG: malformed) and every
 * sample's wall time is representable and sane (-EDOM: quarantined).
 * (Metric indexes, values, seq 0 and oldest_seq are the codec's checks,
 * see codec.h.)
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
        return -EDOM;
    }
    if (ingest_grow((void **)&ig->mono, &ig->mono_cap, et_wire_batch_samples(b) + 1,
                    sizeof(*ig->mono)) < 0)
        return -ENOMEM;
    et_wire_sample_times(b, ig->mono);
    /* The compact values come first and have the batch's quality. */
    for (size_t i = 0; i < et_wire_batch_samples(b); i++) {
        if (__builtin_sub_overflow(ig->mono[i], b->base_mono_ms, &wall) ||
            __builtin_add_overflow(wall, b->base_wall_ms, &wall)) {
            snprintf(why, whylen, "sample %zu: time out of range", i);
            return -EDOM;
        }
        tq = i < b->n_values ? ET_TQ_UNSPECIFIED
                             : (int)b->samples[i - b->n_values]->time_quality;
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
bool ingest_over_budget(struct et_ingest *ig, struct et_ingest_reply *reply,
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

/*
 * Hand reply the Ack in buf (len bytes, taken over), or the encoder's
 * failure: held until the group commits when inside one.
 */
static int ingest_reply_ack(struct et_ingest *ig, struct et_ingest_reply *reply, int ret,
                            uint8_t *buf, size_t len)
{
    free(ig->ack);
    ig->ack = NULL;
    if (ret < 0)
        return ret;
    ig->ack = buf;
    reply->ack_topic = ig->ack_topic;
    reply->ack = ig->ack;
    reply->ack_len = len;
    ingest_hold_ack(ig, reply);
    return 0;
}

static int ingest_make_ack(struct et_ingest *ig, const uint8_t *stream_id,
                           struct et_ingest_reply *reply)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int ret;

    snprintf(ig->ack_topic, sizeof(ig->ack_topic), "%s/v1/%s/ack", ig->root, reply->device);
    ret = et_ack_encode(reply->device, stream_id, reply->seq, reply->acked_through, &buf, &len);
    return ingest_reply_ack(ig, reply, ret, buf, len);
}

/*
 * The Ack for a batch that was not stored for want of its dictionary: the
 * stream's cumulative ack, no selective seq, and the request.
 */
static int ingest_make_dict_ack(struct et_ingest *ig, const Edgetel__V1__Batch *b,
                                struct et_ingest_reply *reply)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int ret;

    snprintf(ig->ack_topic, sizeof(ig->ack_topic), "%s/v1/%s/ack", ig->root, reply->device);
    ret = et_wire_encode_ack_dict(reply->device, b->stream_id.len ? b->stream_id.data : NULL,
                                  reply->acked_through, b->dict_id, b->seq, &buf, &len);
    return ingest_reply_ack(ig, reply, ret, buf, len);
}

/* How a stream is named in log lines. */
const char *ingest_stream_name(const char *stream_hex)
{
    return stream_hex[0] ? stream_hex : "legacy";
}

/*
 * The device's batches or Status name a stream the store had not heard of
 * for it, now recorded as its current one: say so once (the record is
 * committed, so no instance says it again).
 */
void ingest_log_new_stream(struct et_ingest_stats *counts, const char *device,
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
int ingest_note_stream(struct et_ingest *ig, const char *device, const char *stream_hex,
                              int64_t now_ms, bool *started, struct et_store_stream_was *was)
{
    struct et_store_stream st;
    int ret = et_store_stream_get(ig->w, device, stream_hex, &st);

    *started = false;
    if (ret != -ENOENT)
        return ret;
    ret = et_store_stream_start(ig->w, device, stream_hex, now_ms, was);
    *started = ret == 0;
    /* Another instance recorded it meanwhile: its news, not ours. */
    return ret == -EEXIST ? 0 : ret;
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
    const int64_t *metric_ids = NULL;
    struct et_ingest_stats *counts;
    struct et_store_stream st;
    struct et_store_stream_was was = { .had = false };
    bool seen = false, created = false, known = true, quarantine, wanted = false;
    size_t n_samples;
    uint64_t floor;
    int ret;

    ig->pending_retimed = 0;

    ret = et_wire_decode_batch(payload, len, &b, why, sizeof(why));
    if (ret < 0)
        return ingest_malformed(ig, reply, topic, "batch", why);
    if (b->device_id[0] && ingest_other_device(ig, reply, topic, "batch", b->device_id))
        goto out;   /* ret is 0: dealt with; an empty id is the topic's */
    ret = ingest_check_batch(ig, b, now_ms, why, sizeof(why));
    if (ret == -EBADMSG) {
        ret = ingest_malformed(ig, reply, topic, "batch", why);
        goto out;
    }
    /* Impossible sample times: kept whole, acked like a stored batch. */
    quarantine = ret == -EDOM;
    if (quarantine)
        ret = 0;
    if (ret < 0) {
        ret = ingest_store_failed(ig, reply, ret, "batch");
        goto out;
    }
    n_samples = et_wire_batch_samples(b);
    if (ingest_over_budget(ig, reply, "batch", b->seq, n_samples, len))
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
    /* A new batch's samples are read now: its dictionary may be one this
     * aggregator does not know, and then nothing of it is stored. */
    if (ret == 0 && !seen && !quarantine) {
        ret = ingest_dict_read(ig, b, reply->device, stream_hex, why, sizeof(why));
        wanted = ret == -ENOKEY;
        if (wanted)
            ret = 0;
    }
    if (ret == -EBADMSG) {
        /* It contradicts its dictionary: nothing was written. */
        ret = ingest_tx_commit(ig);
        if (ret == 0) {
            ret = ingest_malformed(ig, reply, topic, "batch", why);
            goto out;
        }
    }
    /*
     * The batch's key is claimed before anything else of it is written:
     * another instance storing the same batch at this moment (a resend
     * racing the original) makes the claim wait for its commit and answer
     * -EEXIST, and then this one is a duplicate like any other. A batch
     * waiting for its dictionary claims nothing.
     */
    if (ret == 0 && !seen && !wanted) {
        ret = quarantine
            ? ingest_quarantine_batch(ig, b, reply->device, stream_hex, payload, len, why)
            : ingest_claim_batch(ig, b, reply->device, stream_hex, boot_hex, now_ms);
        if (ret == -EEXIST) {
            seen = true;
            ret = 0;
        }
    }
    if (ret == 0)
        ret = et_store_device_seen(ig->w, reply->device, now_ms, boot_hex,
                                   seen || quarantine || wanted ? 0 : n_samples, &created);
    if (ret == 0 && !known) {
        ret = et_store_stream_start(ig->w, reply->device, stream_hex, now_ms, &was);
        /* Another instance recorded it meanwhile: its news, not ours. */
        if (ret == -EEXIST) {
            known = true;
            ret = 0;
        }
    }
    if (ret == 0 && !seen && !quarantine && !wanted &&
        (ret = ingest_dict_keep(ig, b, reply->device, stream_hex, &metric_ids)) == 0)
        ret = ingest_store_rows(ig, b, metric_ids, reply->device, stream_hex, boot_hex);
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
    if (wanted) {
        reply->kind = ET_INGEST_DICT_WANTED;
        counts->dict_wanted++;
        et_debug("ingest", "device %s: seq %" PRIu64 " not stored, asking for its dictionary: "
                 "%s", reply->device, (uint64_t)b->seq, why);
        ret = ingest_make_dict_ack(ig, b, reply);
        goto out;
    } else if (seen) {
        reply->kind = ET_INGEST_DUPLICATE;
        counts->duplicates++;
        et_debug("ingest", "device %s: seq %" PRIu64 " of stream %s again (duplicate), acked "
                 "through %" PRIu64, reply->device, (uint64_t)b->seq,
                 ingest_stream_name(stream_hex), reply->acked_through);
    } else if (quarantine) {
        reply->kind = ET_INGEST_QUARANTINED;
        counts->quarantined++;
        ingest_say_malformed(ig, reply->device, "quarantined batch %" PRIu64 " of stream %s "
                             "on %s (kept whole and acknowledged, its samples not stored; "
                             "edgetelctl quarantine lists it): %s", (uint64_t)b->seq,
                             ingest_stream_name(stream_hex), topic, why);
    } else {
        reply->kind = ET_INGEST_STORED;
        counts->batches++;
        counts->samples += n_samples;
        counts->retimed += ig->pending_retimed;
        et_debug("ingest", "device %s: seq %" PRIu64 " stored (%zu samples%s), acked"
                 " through %" PRIu64, reply->device, (uint64_t)b->seq, n_samples,
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
