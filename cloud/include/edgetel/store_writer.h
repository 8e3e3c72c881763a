/*
 * The store writer: the storage calls ingest makes, and nothing else.
 *
 * A backend implements struct et_store_writer_ops; ingest (cloud/ingest.c)
 * and the rules beside it (ack.c, retime.c) call the et_store_* functions
 * below, which state what each call promises. No call decides anything a
 * rule decides: the cumulative ack, which samples are re-timed and to
 * which time, whether a Status means the device was heard, are all the
 * caller's. A call stores what it is given and answers what it is asked.
 *
 * Transactions: ingest makes its calls between et_store_begin() and
 * et_store_commit() or et_store_rollback(); each sees the transaction's
 * own writes (a call outside one stands alone). begin takes the write
 * lock at once, so two aggregator instances on one store serialise
 * cleanly instead of failing to upgrade a read lock half way. A commit is
 * durable when it returns: the aggregator acknowledges a batch to its
 * device only after it, and the device then deletes the batch.
 *
 * Errors: 0 or -errno, as store.h says. After an error inside a
 * transaction the caller rolls back; the backend may already have.
 *
 * Streams: seqs count per (device, stream) (store.h); every call that
 * names a seq names its stream too, as hex ("" the legacy stream).
 *
 * The vtable only grows at the end; every member is required unless it
 * says otherwise. (batch_samples came with the PostgreSQL backend, when
 * the batch row became the claim on its key. Schema 4 gave batch_seen, ack_get, ack_set and
 * seqs_after their stream argument: what they answer changed with it, so
 * no caller may keep the old form.)
 */
#ifndef EDGETEL_STORE_WRITER_H
#define EDGETEL_STORE_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/store.h"

struct et_store_writer_ops {
    int (*begin)(struct et_store_writer *w);
    int (*commit)(struct et_store_writer *w);
    int (*rollback)(struct et_store_writer *w);
    int (*batch_seen)(struct et_store_writer *w, const char *device, const char *stream,
                      uint64_t seq, bool *seen);
    int (*device_seen)(struct et_store_writer *w, const char *device, int64_t now_ms,
                       const char *boot_id_hex, uint64_t add_samples, bool *created);
    int (*device_status)(struct et_store_writer *w, const struct et_store_status *st,
                         int64_t now_ms, struct et_store_status_was *was);
    int (*metric_id)(struct et_store_writer *w, const char *device, const char *name,
                     const char *unit, int64_t *id);
    int (*metric_tags)(struct et_store_writer *w, int64_t id, const char *tags);
    int (*insert_batch)(struct et_store_writer *w, const struct et_store_batch *b);
    int (*insert_sample)(struct et_store_writer *w, const struct et_store_sample *smp,
                         int64_t *id);
    int (*ack_get)(struct et_store_writer *w, const char *device, const char *stream,
                   uint64_t *acked_through);
    int (*ack_set)(struct et_store_writer *w, const char *device, const char *stream,
                   uint64_t acked_through);
    int (*seqs_after)(struct et_store_writer *w, const char *device, const char *stream,
                      uint64_t after, uint64_t *seqs, size_t max, size_t *n);
    int (*clock_get)(struct et_store_writer *w, const char *device, struct et_store_clock *out);
    int (*clock_set)(struct et_store_writer *w, const char *device,
                     const struct et_store_clock *clk);
    int (*unsynced_samples)(struct et_store_writer *w, const char *device,
                            const char *boot_id_hex, et_store_sample_cb cb, void *ctx);
    int (*sample_time)(struct et_store_writer *w, int64_t id, int64_t ts_ms,
                       enum et_time_quality tq);
    int (*unsynced_done)(struct et_store_writer *w, const char *device,
                         const char *boot_id_hex);
    /* Optional (NULL: none kept): the last failure in the backend's words. */
    const char *(*last_error)(struct et_store_writer *w);
    int (*stream_get)(struct et_store_writer *w, const char *device, const char *stream,
                      struct et_store_stream *out);
    int (*stream_start)(struct et_store_writer *w, const char *device, const char *stream,
                        int64_t now_ms, struct et_store_stream_was *was);
    int (*quarantine)(struct et_store_writer *w, const struct et_store_quarantined *q);
    int (*batch_samples)(struct et_store_writer *w, const char *device, const char *stream,
                         uint64_t seq, int64_t first_sample_id, int64_t last_sample_id,
                         uint32_t unsynced_samples);
    /* Schema 7: streams' metric dictionaries. Optional (NULL: the store
     * keeps none, and ingest asks a device for its dictionary whenever
     * no instance has it in memory). */
    int (*dict_put)(struct et_store_writer *w, const char *device, const char *stream,
                    uint64_t dict_id, const struct et_store_dict_entry *e);
    int (*dict_get)(struct et_store_writer *w, const char *device, const char *stream,
                    uint64_t dict_id, et_store_dict_cb cb, void *ctx);
};

/* A backend's writer starts with this; et_store_writer() hands it out. */
struct et_store_writer {
    const struct et_store_writer_ops *ops;
};

/* ---- transactions --------------------------------------------------------- */

/** Start a write transaction (takes the write lock now); -EALREADY when one is open. */
static inline int et_store_begin(struct et_store_writer *w)
{
    return w->ops->begin(w);
}

/** Make the transaction durable. On failure it is rolled back. -EINVAL when none is open. */
static inline int et_store_commit(struct et_store_writer *w)
{
    return w->ops->commit(w);
}

/** Undo the transaction; harmless when none is open. */
static inline int et_store_rollback(struct et_store_writer *w)
{
    return w->ops->rollback(w);
}

/**
 * The last failure in the backend's own words ("commit: database disk
 * image is malformed"), for the line that says the store is failing
 * (the backend does not log a writer's failures itself); "" when the
 * backend keeps none. Valid until the next call on w.
 */
static inline const char *et_store_last_error(struct et_store_writer *w)
{
    return w->ops->last_error ? w->ops->last_error(w) : "";
}

/* ---- devices ------------------------------------------------------------- */

/**
 * The device was heard from at now_ms: create its row if new (first and
 * last seen now_ms; *created, may be NULL), raise last_seen to now_ms (it
 * never goes back: instances may store out of order), set the boot id when
 * boot_id_hex is not NULL or "", and add add_samples to its stored-sample
 * count.
 */
static inline int et_store_device_seen(struct et_store_writer *w, const char *device,
                                       int64_t now_ms, const char *boot_id_hex,
                                       uint64_t add_samples, bool *created)
{
    return w->ops->device_seen(w, device, now_ms, boot_id_hex, add_samples, created);
}

/**
 * Record a Status: online state, counters, reason and the device's clock
 * at sending; the boot id and agent version when not "" (an empty one
 * keeps what is recorded). Creates the row if new (first and last seen
 * now_ms). Does not touch last_seen otherwise: whether a Status counts as
 * hearing the device is the caller's to say, with et_store_device_seen().
 * *was (may be NULL) gets what the row held before.
 */
static inline int et_store_device_status(struct et_store_writer *w,
                                         const struct et_store_status *st, int64_t now_ms,
                                         struct et_store_status_was *was)
{
    return w->ops->device_status(w, st, now_ms, was);
}

/* ---- metrics, batches, samples ------------------------------------------- */

/** The id of (device, name), created if new; the unit is replaced when it differs. */
static inline int et_store_metric_id(struct et_store_writer *w, const char *device,
                                     const char *name, const char *unit, int64_t *id)
{
    return w->ops->metric_id(w, device, name, unit, id);
}

/** Set a metric's tags (canonical "k=v,k2=v2", "" for none); a no-op when unchanged. */
static inline int et_store_metric_tags(struct et_store_writer *w, int64_t id, const char *tags)
{
    return w->ops->metric_tags(w, id, tags);
}

/**
 * Whether (device, stream, seq) is stored, or quarantined
 * (et_store_quarantine()); false for a seq above ET_STORE_SEQ_MAX.
 */
static inline int et_store_batch_seen(struct et_store_writer *w, const char *device,
                                      const char *stream, uint64_t seq, bool *seen)
{
    return w->ops->batch_seen(w, device, stream, seq, seen);
}

/**
 * Store a batch row in its stream (b->stream_hex). -EEXIST when (device,
 * stream, seq) is already stored (not logged: the caller judges); -ERANGE
 * for a seq above ET_STORE_SEQ_MAX.
 *
 * The row is the batch's claim on its key: ingest inserts it before the
 * samples (their ids 0, et_store_batch_samples() fills them in), so that
 * of two instances storing the same batch at once one gets -EEXIST and
 * stores nothing. A backend with concurrent writers must make the second
 * wait for the first's transaction to end and then answer -EEXIST (it
 * committed) or store the row (it rolled back), never fail the
 * transaction for it.
 */
static inline int et_store_insert_batch(struct et_store_writer *w,
                                        const struct et_store_batch *b)
{
    return w->ops->insert_batch(w, b);
}

/**
 * Store a sample as given; *id (may be NULL) gets its row id, higher than
 * any before it on this store. -EINVAL for an unknown value type, -ERANGE
 * for a seq above ET_STORE_SEQ_MAX.
 */
static inline int et_store_insert_sample(struct et_store_writer *w,
                                         const struct et_store_sample *smp, int64_t *id)
{
    return w->ops->insert_sample(w, smp, id);
}

/**
 * Record where the stored batch (device, stream, seq)'s samples are (the
 * ids et_store_insert_sample() gave its first and last, 0 and 0 when it
 * has none) and how many of them were stored still UNSYNCED (retime.h).
 * Inside the transaction that inserted the batch row.
 */
static inline int et_store_batch_samples(struct et_store_writer *w, const char *device,
                                         const char *stream, uint64_t seq,
                                         int64_t first_sample_id, int64_t last_sample_id,
                                         uint32_t unsynced_samples)
{
    return w->ops->batch_samples(w, device, stream, seq, first_sample_id, last_sample_id,
                                 unsynced_samples);
}

/* ---- streams and the cumulative ack's storage (the rules are ack.c's) ------ */

/**
 * What the store holds of (device, stream): when it started, its ack, its
 * highest stored seq and when that was stored. -ENOENT when the stream
 * was never recorded (et_store_stream_start()).
 */
static inline int et_store_stream_get(struct et_store_writer *w, const char *device,
                                      const char *stream, struct et_store_stream *out)
{
    return w->ops->stream_get(w, device, stream, out);
}

/**
 * Record (device, stream) as started at now_ms with nothing acked, and
 * make it the device's current stream. The device row must exist
 * (et_store_device_seen() or et_store_device_status() first): -ENOENT
 * otherwise. -EEXIST when the stream is already recorded (nothing
 * changed). *was (may be NULL) gets the device's current stream before.
 */
static inline int et_store_stream_start(struct et_store_writer *w, const char *device,
                                        const char *stream, int64_t now_ms,
                                        struct et_store_stream_was *was)
{
    return w->ops->stream_start(w, device, stream, now_ms, was);
}

/** The stream's recorded cumulative ack; -ENOENT when it was never recorded. */
static inline int et_store_ack_get(struct et_store_writer *w, const char *device,
                                   const char *stream, uint64_t *acked_through)
{
    return w->ops->ack_get(w, device, stream, acked_through);
}

/**
 * Record the stream's cumulative ack as given (at most ET_STORE_SEQ_MAX),
 * unless a higher one is recorded: instances on one store may commit
 * their walks out of order, and the ack never goes back.
 */
static inline int et_store_ack_set(struct et_store_writer *w, const char *device,
                                   const char *stream, uint64_t acked_through)
{
    return w->ops->ack_set(w, device, stream, acked_through);
}

/**
 * The stored (or quarantined) seqs of (device, stream) above after, in increasing order, at
 * most max of them, into seqs; *n gets how many. Fewer than max means there
 * are no more: a caller reads on from the last one only after a full page.
 */
static inline int et_store_seqs_after(struct et_store_writer *w, const char *device,
                                      const char *stream, uint64_t after, uint64_t *seqs,
                                      size_t max, size_t *n)
{
    return w->ops->seqs_after(w, device, stream, after, seqs, max, n);
}

/**
 * Keep a batch aside, whole (store.h, "quarantine"): from now on
 * (device, stream, seq) counts as stored for et_store_batch_seen() and
 * et_store_seqs_after(), though none of its samples is. -EEXIST when that
 * seq is already kept or stored; -ERANGE for a seq above ET_STORE_SEQ_MAX.
 */
static inline int et_store_quarantine(struct et_store_writer *w,
                                      const struct et_store_quarantined *q)
{
    return w->ops->quarantine(w, q);
}

/* ---- streams' metric dictionaries ------------------------------------------ */

/** Whether the store keeps dictionaries (a backend may not). */
static inline bool et_store_has_dicts(const struct et_store_writer *w)
{
    return w->ops->dict_put && w->ops->dict_get;
}

/**
 * Keep entry e of dictionary dict_id of (device, stream). An entry is
 * immutable: one already kept at that index is left as it is (0).
 */
static inline int et_store_dict_put(struct et_store_writer *w, const char *device,
                                    const char *stream, uint64_t dict_id,
                                    const struct et_store_dict_entry *e)
{
    return w->ops->dict_put(w, device, stream, dict_id, e);
}

/** Every kept entry of dictionary dict_id of (device, stream) to cb. */
static inline int et_store_dict_get(struct et_store_writer *w, const char *device,
                                    const char *stream, uint64_t dict_id, et_store_dict_cb cb,
                                    void *ctx)
{
    return w->ops->dict_get(w, device, stream, dict_id, cb, ctx);
}

/* ---- re-timing's storage (the rule is retime.c's) ------------------------ */

/** The device's recorded clock mapping; boot_id_hex is "" when there is none or no row. */
static inline int et_store_clock_get(struct et_store_writer *w, const char *device,
                                     struct et_store_clock *out)
{
    return w->ops->clock_get(w, device, out);
}

/** Record clk as the device's clock mapping. */
static inline int et_store_clock_set(struct et_store_writer *w, const char *device,
                                     const struct et_store_clock *clk)
{
    return w->ops->clock_set(w, device, clk);
}

/**
 * Every sample of the device's batches of boot boot_id_hex that were
 * stored with unsynced_samples > 0 and not yet passed to
 * et_store_unsynced_done(), whatever its quality, to cb. Only id,
 * metric_id, ts_ms, mono_ms, time_quality and seq are set. cb must not
 * call the writer: collect, then write.
 */
static inline int et_store_unsynced_samples(struct et_store_writer *w, const char *device,
                                            const char *boot_id_hex, et_store_sample_cb cb,
                                            void *ctx)
{
    return w->ops->unsynced_samples(w, device, boot_id_hex, cb, ctx);
}

/** Give sample id the wall time ts_ms and quality tq. */
static inline int et_store_sample_time(struct et_store_writer *w, int64_t id, int64_t ts_ms,
                                       enum et_time_quality tq)
{
    return w->ops->sample_time(w, id, ts_ms, tq);
}

/**
 * The waiting batches of (device, boot) have been dealt with:
 * et_store_unsynced_samples() returns none of them again.
 */
static inline int et_store_unsynced_done(struct et_store_writer *w, const char *device,
                                         const char *boot_id_hex)
{
    return w->ops->unsynced_done(w, device, boot_id_hex);
}

#endif
