/*
 * The batcher: the open batch, held batches and group commit. See batcher.h.
 */
#include "batcher.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "edgetel/log.h"

/* An encoded batch whose bytes are kept until its group commits. */
struct held_batch {
    uint64_t seq;
    uint8_t *blob;
    size_t len;
    uint32_t n_samples;
    int64_t created_ms;
};

struct et_batcher {
    struct et_outbox *outbox;
    const char *device_id;
    uint8_t boot_id[ET_BOOT_ID_LEN];
    uint32_t max_samples;
    struct et_batch *batch;

    bool group_open;
    struct held_batch *held;    /* made since the last commit, in seq order */
    size_t n_held, cap_held;
    size_t n_held_stored;       /* held[0 .. n_held_stored-1] are in the open group */
    bool store_failing;

    struct et_batcher_stats stats;
};

int et_batcher_create(struct et_batcher **out, struct et_outbox *outbox, const char *device_id,
                      const uint8_t boot_id[ET_BOOT_ID_LEN], uint32_t max_samples)
{
    struct et_batcher *b = calloc(1, sizeof(*b));
    int rc;

    *out = NULL;
    if (!b)
        return -ENOMEM;
    rc = et_batch_create(&b->batch);
    if (rc) {
        free(b);
        return rc;
    }
    b->outbox = outbox;
    b->device_id = device_id;
    memcpy(b->boot_id, boot_id, ET_BOOT_ID_LEN);
    b->max_samples = max_samples;
    *out = b;
    return 0;
}

static void held_clear(struct et_batcher *b)
{
    for (size_t i = 0; i < b->n_held; i++)
        free(b->held[i].blob);
    b->n_held = 0;
    b->n_held_stored = 0;
}

void et_batcher_destroy(struct et_batcher *b)
{
    if (!b)
        return;
    held_clear(b);
    free(b->held);
    et_batch_destroy(b->batch);
    free(b);
}

int et_batcher_add(struct et_batcher *b, const char *metric, const char *unit,
                   const char *tags, int64_t mono_ms, const struct et_value *v,
                   enum et_time_quality tq)
{
    return et_batch_add_tagged(b->batch, metric, unit, tags, mono_ms, v, tq);
}

bool et_batcher_full(const struct et_batcher *b)
{
    return et_batch_samples(b->batch) >= b->max_samples;
}

static int held_push(struct et_batcher *b, uint64_t seq, uint8_t *blob, size_t len,
                     uint32_t n_samples, int64_t created_ms)
{
    if (b->n_held == b->cap_held) {
        size_t cap = b->cap_held ? b->cap_held * 2 : 16;
        struct held_batch *h = realloc(b->held, cap * sizeof(*h));

        if (!h)
            return -ENOMEM;
        b->held = h;
        b->cap_held = cap;
    }
    b->held[b->n_held++] = (struct held_batch){
        .seq = seq, .blob = blob, .len = len, .n_samples = n_samples, .created_ms = created_ms,
    };
    return 0;
}

static void store_trouble(struct et_batcher *b, uint64_t seq, int rc)
{
    if (!b->store_failing)
        et_error("outbox", "cannot store batch %" PRIu64 ": %s; keeping samples in memory "
                 "(up to %d batches' worth) and retrying", seq, strerror(-rc),
                 ET_BATCHER_MEMORY_BATCHES);
    b->store_failing = true;
}

/* Append every held batch not yet in the outbox. 0, or -errno (group undone). */
static int held_store(struct et_batcher *b)
{
    while (b->n_held_stored < b->n_held) {
        struct held_batch *h = &b->held[b->n_held_stored];
        int rc;

        if (!b->group_open) {
            rc = et_outbox_begin(b->outbox);
            if (rc && rc != -EALREADY) {
                store_trouble(b, h->seq, rc);
                return rc;
            }
            b->group_open = true;
        }
        rc = et_outbox_append(b->outbox, h->seq, h->blob, h->len, h->n_samples, h->created_ms);
        if (rc == 0 || rc == -EDQUOT) {
            /* -EDQUOT: refused by the quota, counted as dropped by the outbox. */
            b->n_held_stored++;
            continue;
        }
        /* The outbox undid the group: everything held goes in again later. */
        b->group_open = false;
        b->n_held_stored = 0;
        store_trouble(b, h->seq, rc);
        return rc;
    }
    if (b->store_failing && b->n_held)
        et_info("outbox", "storing batches again (from seq %" PRIu64 ")", b->held[0].seq);
    b->store_failing = false;
    return 0;
}

int et_batcher_commit(struct et_batcher *b)
{
    int rc;

    if (b->n_held_stored < b->n_held && (rc = held_store(b)) != 0)
        return rc;
    if (!b->group_open)
        return 0;
    b->group_open = false;
    rc = et_outbox_commit(b->outbox);
    if (rc) {
        b->n_held_stored = 0;
        store_trouble(b, b->n_held ? b->held[0].seq : 0, rc);
        return rc;
    }
    held_clear(b);
    return 0;
}

/* Encode the open batch with the next seq and hold it. */
static int encode_open_batch(struct et_batcher *b, int64_t now_ms)
{
    struct et_batch_meta meta = { 0 };
    struct et_outbox_stats st;
    uint8_t *blob = NULL;
    size_t len = 0;
    size_t n = et_batch_samples(b->batch);
    int rc;

    meta.device_id = b->device_id;
    meta.seq = et_outbox_next_seq(b->outbox);
    memcpy(meta.boot_id, b->boot_id, sizeof(meta.boot_id));
    meta.base_mono_ms = et_batch_first_mono_ms(b->batch);
    meta.base_wall_ms = et_clock_wall_of(meta.base_mono_ms);
    meta.time_quality = et_batch_time_quality(b->batch);
    rc = et_outbox_stats(b->outbox, &st);
    meta.oldest_seq = (rc == 0 && st.batches > 0) ? st.oldest_seq : meta.seq;
    meta.stream_id = et_outbox_stream_id(b->outbox);
    rc = et_batch_encode(b->batch, &meta, &blob, &len);
    if (rc == 0)
        rc = held_push(b, meta.seq, blob, len, (uint32_t)n, now_ms);
    if (rc) {
        free(blob);
        return rc;
    }
    b->stats.batches_made++;
    b->stats.samples_stored += n;
    et_batch_reset(b->batch);
    return 0;
}

int et_batcher_flush(struct et_batcher *b, int64_t now_ms)
{
    int rc = held_store(b);

    if (rc == 0 && et_batch_samples(b->batch) > 0) {
        rc = encode_open_batch(b, now_ms);
        if (rc == 0)
            rc = held_store(b);
    }
    if (rc && et_batch_samples(b->batch) >= (size_t)b->max_samples * ET_BATCHER_MEMORY_BATCHES) {
        et_error("outbox", "memory hold full: dropping %zu samples", et_batch_samples(b->batch));
        b->stats.dropped_in_memory += et_batch_samples(b->batch);
        et_batch_reset(b->batch);
    }
    return rc;
}

uint64_t et_batcher_unstored(const struct et_batcher *b)
{
    uint64_t n = et_batch_samples(b->batch);

    for (size_t i = 0; i < b->n_held; i++)
        n += b->held[i].n_samples;
    return n;
}

const struct et_batcher_stats *et_batcher_stats(const struct et_batcher *b)
{
    return &b->stats;
}
