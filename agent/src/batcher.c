/*
 * The batcher: the open batch, held batches, group commit and the memory
 * bound. See batcher.h.
 */
#include "batcher.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dictionary.h"
#include "edgetel/log.h"
#include "edgetel/platform.h"

/* While storing keeps failing, it is said again at most this often. */
#define TROUBLE_REMIND_MS (60LL * 60 * 1000)

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
    uint64_t limit;             /* samples in memory at most: open batch and held */
    struct et_batch *batch;
    struct et_dictionary *dict; /* the stream's metric dictionary (dictionary.h) */
    uint64_t next_seq;          /* above every batch made, stored or not */

    bool group_open;
    struct held_batch *held;    /* made and not yet durable, in seq order */
    size_t n_held, cap_held;
    size_t n_stored;            /* held[0 .. n_stored-1] are in the open group; the rest unstored */
    uint64_t held_samples;

    bool dict_failing;          /* the dictionary could not be kept: said once */

    /* The current episode of trouble storing, for the log. */
    bool failing;
    bool memory_full_said;
    int64_t failing_since_ms;
    int64_t said_ms;
    uint64_t dropped_before;        /* stats when the episode began */
    uint64_t not_persisted_before;

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
    rc = et_dictionary_open(&b->dict, et_outbox_path(outbox), et_outbox_stream_id(outbox));
    if (rc) {
        et_batch_destroy(b->batch);
        free(b);
        return rc;
    }
    et_batch_use_dict(b->batch, et_dictionary_current(b->dict));
    b->outbox = outbox;
    b->device_id = device_id;
    memcpy(b->boot_id, boot_id, ET_BOOT_ID_LEN);
    b->max_samples = max_samples;
    b->limit = (uint64_t)max_samples * ET_BATCHER_MEMORY_BATCHES;
    b->next_seq = et_outbox_next_seq(outbox);
    *out = b;
    return 0;
}

void et_batcher_set_max_samples(struct et_batcher *b, uint32_t max_samples)
{
    b->max_samples = max_samples;
    b->limit = (uint64_t)max_samples * ET_BATCHER_MEMORY_BATCHES;
}

static void held_clear(struct et_batcher *b)
{
    for (size_t i = 0; i < b->n_held; i++)
        free(b->held[i].blob);
    b->n_held = 0;
    b->n_stored = 0;
    b->held_samples = 0;
}

void et_batcher_destroy(struct et_batcher *b)
{
    if (!b)
        return;
    held_clear(b);
    free(b->held);
    et_batch_destroy(b->batch);
    et_dictionary_close(b->dict);
    free(b);
}

static void held_remove_at(struct et_batcher *b, size_t i)
{
    free(b->held[i].blob);
    b->held_samples -= b->held[i].n_samples;
    memmove(&b->held[i], &b->held[i + 1], (b->n_held - i - 1) * sizeof(b->held[0]));
    b->n_held--;
    if (i < b->n_stored)
        b->n_stored--;
}

static uint64_t unstored_samples(const struct et_batcher *b)
{
    uint64_t n = 0;

    for (size_t i = b->n_stored; i < b->n_held; i++)
        n += b->held[i].n_samples;
    return n;
}

/*
 * The loss note (et_outbox_note_held): what a crash now would lose that
 * the database does not count. While storing fails that is every sample
 * in memory: the held batches (unstored, or appended again into a group
 * that has not committed yet) and the open batch, which waits there for
 * as long as no seq can be claimed. It is written after every change made
 * while storing fails (each flush, commit and Ack that releases a batch),
 * so a crash loses uncounted only what was collected since the last
 * flush. While storing works nothing is noted: a crash then loses at most
 * the uncommitted window, as always (batcher.h), and the note costs no
 * write on a healthy card.
 */
static void note_loss(struct et_batcher *b)
{
    uint64_t n = b->failing ? b->held_samples + et_batch_samples(b->batch) : 0;

    et_outbox_note_held(b->outbox, n);
}

/* ---- saying what happens -------------------------------------------------------- */

static void fmt_mib(char *buf, size_t cap, uint64_t bytes)
{
    if (bytes == UINT64_MAX)
        snprintf(buf, cap, "unknown");
    else
        snprintf(buf, cap, "%.1f MiB", (double)bytes / (1024.0 * 1024.0));
}

/* What is wrong, for a person: what is full, how much is free, the reserve. */
static void describe_trouble(const struct et_batcher *b, int rc, char *buf, size_t cap)
{
    const char *path = et_outbox_path(b->outbox);
    struct et_outbox_stats st;
    char avail[32], reserve[32];

    et_outbox_stats(b->outbox, &st);
    fmt_mib(avail, sizeof(avail), st.fs_avail);
    fmt_mib(reserve, sizeof(reserve), st.reserve_bytes);
    if (rc == -ENOSPC && st.below_reserve)
        snprintf(buf, cap, "the filesystem holding %s is nearly full: %s free, below the "
                 "[outbox] reserve of %s", path, avail, reserve);
    else if (rc == -ENOSPC && st.fs_avail == UINT64_MAX)
        snprintf(buf, cap, "the filesystem holding %s is full (free space unknown)", path);
    else if (rc == -ENOSPC)
        snprintf(buf, cap, "the filesystem holding %s is full (%s free)", path, avail);
    else
        snprintf(buf, cap, "cannot store batches in %s: %s", path, strerror(-rc));
}

/* Loudly at the first failure, then at most hourly while it lasts. */
static void say_trouble(struct et_batcher *b, int rc)
{
    int64_t now = et_time_mono_ms();
    char what[512];

    if (b->failing && now - b->said_ms < TROUBLE_REMIND_MS)
        return;
    describe_trouble(b, rc, what, sizeof(what));
    if (!b->failing) {
        b->failing = true;
        b->memory_full_said = false;
        b->failing_since_ms = now;
        b->dropped_before = b->stats.dropped_in_memory;
        b->not_persisted_before = b->stats.not_persisted;
        et_error("outbox", "%s. New batches are not stored: while connected they are sent "
                 "from memory (counted as not persisted); while not, up to %" PRIu64
                 " samples are held in memory and the oldest beyond that are dropped (counted)",
                 what, b->limit);
    } else {
        et_error("outbox", "%s, for %" PRId64 " min now: %" PRIu64 " samples sent without "
                 "being stored and %" PRIu64 " dropped since it began", what,
                 (now - b->failing_since_ms) / 60000,
                 b->stats.not_persisted - b->not_persisted_before,
                 b->stats.dropped_in_memory - b->dropped_before);
    }
    b->said_ms = now;
}

/* Once, after a commit of batches succeeded: a good append alone proves nothing. */
static void say_recovered(struct et_batcher *b)
{
    struct et_outbox_stats st;
    char avail[32];

    b->failing = false;
    et_outbox_stats(b->outbox, &st);
    fmt_mib(avail, sizeof(avail), st.fs_avail);
    et_info("outbox", "%s: storing batches again (free space: %s); while it could not, %" PRIu64
            " samples were sent without being stored and %" PRIu64 " were dropped (counted)",
            et_outbox_path(b->outbox), avail, b->stats.not_persisted - b->not_persisted_before,
            b->stats.dropped_in_memory - b->dropped_before);
}

/* ---- dropping, counted -------------------------------------------------------- */

static void count_dropped(struct et_batcher *b, uint64_t n)
{
    b->stats.dropped_in_memory += n;
    et_outbox_count_dropped(b->outbox, n);
    if (!b->memory_full_said) {
        et_error("outbox", "memory for samples that cannot be stored is full (%" PRIu64
                 " samples): dropping samples, the oldest batches first; every one is counted",
                 b->limit);
        b->memory_full_said = true;
    }
}

/* Drop the oldest unstored batch; its seq stays used up (it may have been sent). */
static void drop_oldest_unstored(struct et_batcher *b)
{
    uint32_t n = b->held[b->n_stored].n_samples;

    held_remove_at(b, b->n_stored);
    count_dropped(b, n);
}

/* ---- storing ------------------------------------------------------------------ */

/* The outbox undoes its group on any failure inside it: follow it. */
static void sync_group(struct et_batcher *b)
{
    if (b->group_open && !et_outbox_in_group(b->outbox)) {
        b->group_open = false;
        b->n_stored = 0;
    }
}

/* Append every unstored batch, in seq order. 0, or -errno (the group undone). */
static int store_unstored(struct et_batcher *b)
{
    while (b->n_stored < b->n_held) {
        struct held_batch *h = &b->held[b->n_stored];
        int rc;

        if (!b->group_open) {
            rc = et_outbox_begin(b->outbox);
            if (rc && rc != -EALREADY)
                return rc;
            b->group_open = true;
        }
        rc = et_outbox_append(b->outbox, h->seq, h->blob, h->len, h->n_samples, h->created_ms);
        if (rc == 0 || rc == -EDQUOT) {
            /* -EDQUOT: refused by the quota, counted as dropped by the outbox. */
            b->n_stored++;
            continue;
        }
        if (et_outbox_in_group(b->outbox)) {
            /* Refused without ending the group (-EINVAL, -EOVERFLOW): this
             * batch can never be stored; holding it would block the rest. */
            uint32_t n = h->n_samples;

            et_error("outbox", "batch %" PRIu64 " cannot be stored: %s; dropping it (counted)",
                     h->seq, strerror(-rc));
            held_remove_at(b, b->n_stored);
            count_dropped(b, n);
            continue;
        }
        b->group_open = false;
        b->n_stored = 0;
        return rc;
    }
    return 0;
}

static int commit_group(struct et_batcher *b)
{
    bool had_batches = b->n_held > 0;
    int rc;

    b->group_open = false;
    rc = et_outbox_commit(b->outbox);
    if (rc) {
        b->n_stored = 0;
        return rc;
    }
    held_clear(b);
    if (b->failing && had_batches)
        say_recovered(b);
    return 0;
}

int et_batcher_commit(struct et_batcher *b)
{
    int rc = 0;

    sync_group(b);
    if (b->n_stored < b->n_held)
        rc = store_unstored(b);
    if (rc == 0 && b->group_open)
        rc = commit_group(b);
    if (rc)
        say_trouble(b, rc);
    note_loss(b);
    return rc;
}

/*
 * Room for n more samples held: the oldest unstored batches go first; a
 * group that fills memory commits first, which frees it the normal way.
 */
static void make_room(struct et_batcher *b, uint64_t n)
{
    if (b->held_samples + n > b->limit && b->group_open && b->n_stored == b->n_held)
        et_batcher_commit(b);
    while (b->held_samples + n > b->limit && b->n_stored < b->n_held)
        drop_oldest_unstored(b);
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
    b->held_samples += n_samples;
    return 0;
}

/*
 * Encode the open batch on the stream's dictionary: the entries it added
 * are made durable first (dictionary.h). When they cannot be, the batch
 * goes self-contained, with its dictionary inline, and they are forgotten
 * (the next batch that meets those metrics adds them again).
 */
static int encode_on_dict(struct et_batcher *b, const struct et_batch_meta *meta,
                          uint8_t **blob, size_t *len)
{
    size_t from = et_batch_dict_start(b->batch);
    struct et_dict *d = et_dictionary_current(b->dict);
    int rc;

    if (from == d->n && d->id)
        return et_batch_encode(b->batch, meta, blob, len);
    rc = et_dictionary_save(b->dict, from, meta->seq);
    if (rc == 0) {
        b->dict_failing = false;
        return et_batch_encode(b->batch, meta, blob, len);
    }
    if (!b->dict_failing)
        et_warn("outbox", "cannot keep the metric dictionary beside %s: %s; batches carry "
                "their own until it can", et_outbox_path(b->outbox), strerror(-rc));
    b->dict_failing = true;
    rc = et_batch_encode_inline(b->batch, meta, blob, len);
    et_dictionary_undo(b->dict, from);
    return rc;
}

int et_batcher_with_dict(const struct et_batcher *b, const uint8_t *blob, size_t len,
                         uint8_t **out, size_t *out_len)
{
    const struct et_dict *d;
    uint64_t id;

    if (et_wire_peek_dict(blob, len, &id) < 0)
        return -EBADMSG;
    d = et_dictionary_find(b->dict, id);
    if (!d)
        return -ENOENT;
    return et_batch_add_dict(blob, len, d, out, out_len);
}

/*
 * Encode the open batch with the next seq and hold it, unstored. The seq
 * is claimed first: the batch may go out from memory before it is stored.
 */
static int make_batch(struct et_batcher *b, int64_t now_ms)
{
    struct et_batch_meta meta = { 0 };
    struct et_outbox_stats st;
    uint8_t *blob = NULL;
    size_t len = 0;
    size_t n = et_batch_samples(b->batch);
    int rc;

    meta.seq = et_batcher_next_seq(b);
    rc = et_outbox_claim(b->outbox, meta.seq);
    if (rc)
        return rc;      /* the samples wait in the open batch, within the bound */
    make_room(b, n);
    /* Left out: the topic names the device (Batch.device_id). */
    meta.device_id = NULL;
    memcpy(meta.boot_id, b->boot_id, sizeof(meta.boot_id));
    meta.base_mono_ms = et_batch_first_mono_ms(b->batch);
    meta.base_wall_ms = et_clock_wall_of(meta.base_mono_ms);
    meta.time_quality = et_batch_time_quality(b->batch);
    /* The oldest seq the device still holds, in the outbox or in memory. */
    et_outbox_stats(b->outbox, &st);
    meta.oldest_seq = st.batches > 0 ? st.oldest_seq : meta.seq;
    if (b->n_held > 0 && b->held[0].seq < meta.oldest_seq)
        meta.oldest_seq = b->held[0].seq;
    meta.stream_id = et_outbox_stream_id(b->outbox);
    rc = encode_on_dict(b, &meta, &blob, &len);
    if (rc == 0)
        rc = held_push(b, meta.seq, blob, len, (uint32_t)n, now_ms);
    if (rc) {
        free(blob);
        return rc;
    }
    b->next_seq = meta.seq + 1;
    b->stats.batches_made++;
    b->stats.samples_stored += n;
    /* The entries it added are kept (or were taken back): none is new now. */
    et_dictionary_rotate(b->dict, meta.oldest_seq);
    et_batch_reset(b->batch);
    et_batch_use_dict(b->batch, et_dictionary_current(b->dict));
    return 0;
}

int et_batcher_flush(struct et_batcher *b, int64_t now_ms)
{
    int rc = 0, made = 0;

    sync_group(b);
    if (b->n_stored < b->n_held)
        rc = store_unstored(b);
    if (et_batch_samples(b->batch) > 0)
        made = make_batch(b, now_ms);
    if (rc == 0 && made == 0)
        rc = store_unstored(b);
    if (rc == 0)
        rc = made;
    if (rc) {
        say_trouble(b, rc);
        note_loss(b);
        return rc;
    }
    /* Half the memory in one group: commit early, keep the other half for the open batch. */
    if (b->group_open && b->held_samples > b->limit / 2)
        return et_batcher_commit(b);
    note_loss(b);
    return 0;
}

/* ---- samples in ----------------------------------------------------------------- */

int et_batcher_add(struct et_batcher *b, const char *metric, const char *unit,
                   const char *tags, int64_t mono_ms, const struct et_value *v,
                   enum et_time_quality tq)
{
    if (b->held_samples + et_batch_samples(b->batch) >= b->limit) {
        if (b->n_stored < b->n_held) {
            drop_oldest_unstored(b);
        } else {
            count_dropped(b, 1);    /* no batch can be made: this sample goes */
            return 0;
        }
    }
    return et_batch_add_tagged(b->batch, metric, unit, tags, mono_ms, v, tq);
}

bool et_batcher_full(const struct et_batcher *b)
{
    return et_batch_samples(b->batch) >= b->max_samples;
}

/* ---- what the uplink reads ------------------------------------------------------------ */

int et_batcher_next_unstored(const struct et_batcher *b, uint64_t after, uint64_t *seq,
                             const uint8_t **blob, size_t *len)
{
    for (size_t i = b->n_stored; i < b->n_held; i++) {
        const struct held_batch *h = &b->held[i];

        if (h->seq > after) {
            *seq = h->seq;
            *blob = h->blob;
            *len = h->len;
            return 0;
        }
    }
    return -ENOENT;
}

size_t et_batcher_ack(struct et_batcher *b, uint64_t through, const uint64_t *seqs,
                      size_t n_seqs)
{
    size_t released = 0;
    bool forgot = false;

    for (size_t i = 0; i < b->n_held;) {
        const struct held_batch *h = &b->held[i];
        bool covered = h->seq <= through;

        for (size_t k = 0; !covered && k < n_seqs; k++)
            covered = seqs[k] == h->seq;
        if (!covered) {
            i++;
            continue;
        }
        /* A stored one the outbox deletes in its group; an unstored one was
         * delivered without ever being stored. */
        if (i >= b->n_stored) {
            b->stats.not_persisted += h->n_samples;
            released++;
        }
        held_remove_at(b, i);
        forgot = true;
    }
    /* Delivered: a crash from now on must not count them as lost. */
    if (forgot)
        note_loss(b);
    return released;
}

uint64_t et_batcher_next_seq(const struct et_batcher *b)
{
    uint64_t ob = et_outbox_next_seq(b->outbox);

    return b->next_seq > ob ? b->next_seq : ob;
}

uint64_t et_batcher_unstored(const struct et_batcher *b)
{
    return b->held_samples + et_batch_samples(b->batch);
}

uint64_t et_batcher_abandon(struct et_batcher *b)
{
    uint64_t n = unstored_samples(b) + et_batch_samples(b->batch);

    /* Stored ones are left to the close, which commits an open group. */
    while (b->n_held > b->n_stored)
        held_remove_at(b, b->n_held - 1);
    et_batch_reset(b->batch);
    if (n > 0) {
        b->stats.dropped_in_memory += n;
        et_outbox_count_dropped(b->outbox, n);
    }
    et_outbox_note_held(b->outbox, 0);
    return n;
}

const struct et_batcher_stats *et_batcher_stats(const struct et_batcher *b)
{
    return &b->stats;
}
