/*
 * The store reader: what edgetelctl (and later a web view) read from a
 * store. A backend implements struct et_store_reader_ops; callers use the
 * et_store_* functions below, which state what each call promises.
 *
 * Reads see what was committed when they start (a store opened read-only
 * beside a writing aggregator included) and never write. Rows come out
 * through callbacks (store.h): a callback's non-zero return stops the
 * read and becomes its result, and the read can be made again at once.
 *
 * Errors: 0 or -errno, as store.h says.
 *
 * The vtable only grows at the end; every member is required.
 */
#ifndef EDGETEL_STORE_READER_H
#define EDGETEL_STORE_READER_H

#include <stdint.h>

#include "edgetel/store.h"

/*
 * One metric's samples over [since_ms, until_ms) in buckets of bucket_ms:
 * bucket k holds the samples with since_ms + k * bucket_ms <= ts_ms <
 * since_ms + (k + 1) * bucket_ms. A plot asks for a bounded number of
 * buckets rather than for every sample.
 */
struct et_store_series_query {
    const char *device;
    const char *metric;
    int64_t since_ms;          /* inclusive */
    int64_t until_ms;          /* exclusive; above since_ms */
    int64_t bucket_ms;         /* at least 1 */
};

/* One bucket of a series: only buckets that hold samples come out. */
struct et_store_bucket {
    int64_t index;             /* k above */
    uint64_t samples;          /* every sample in it, strings included */
    uint64_t values;           /* of which have a number (f64 but NaN, i64, bool as 0/1) */
    double min, avg, max;      /* of those numbers; 0 when values is 0 */
    bool avg_known;            /* false when the numbers have no mean (+inf with -inf) */
    int64_t first_ts_ms;       /* its earliest and latest sample */
    int64_t last_ts_ms;
    uint64_t unsynced;         /* samples by time quality (store.h, et_time_quality): */
    uint64_t corrected;        /* re-timed once the clock was known */
    uint64_t uncorrectable;    /* a boot that never synchronised */
};

/* Samples of one device, from et_store_device_counts(). */
struct et_store_count {
    const char *device;        /* valid during the callback */
    uint64_t samples;
};

typedef int (*et_store_bucket_cb)(void *ctx, const struct et_store_bucket *b);
typedef int (*et_store_count_cb)(void *ctx, const struct et_store_count *c);

struct et_store_reader_ops {
    int (*devices)(struct et_store_reader *r, const char *only, et_store_device_cb cb,
                   void *ctx);
    int (*metrics)(struct et_store_reader *r, const char *device, et_store_metric_cb cb,
                   void *ctx);
    int (*query)(struct et_store_reader *r, const struct et_store_query *q,
                 et_store_sample_cb cb, void *ctx);
    int (*samples_after)(struct et_store_reader *r, int64_t after_id, const char *device,
                         unsigned limit, et_store_sample_cb cb, void *ctx);
    int (*last_sample_id)(struct et_store_reader *r, int64_t *id);
    int (*quarantined)(struct et_store_reader *r, const char *device,
                       et_store_quarantined_cb cb, void *ctx);
    /* The web view's reads (issue 15); see the calls below. */
    int (*metric_list)(struct et_store_reader *r, const char *device, et_store_metric_cb cb,
                       void *ctx);
    int (*series)(struct et_store_reader *r, const struct et_store_series_query *q,
                  et_store_bucket_cb cb, void *ctx);
    int (*device_counts)(struct et_store_reader *r, int64_t since_ms, int64_t after_id,
                         int64_t through_id, et_store_count_cb cb, void *ctx);
};

/* A backend's reader starts with this; et_store_reader() hands it out. */
struct et_store_reader {
    const struct et_store_reader_ops *ops;
};

/** Devices ordered by id; only != NULL restricts to that one device. */
static inline int et_store_devices(struct et_store_reader *r, const char *only,
                                   et_store_device_cb cb, void *ctx)
{
    return r->ops->devices(r, only, cb, ctx);
}

/** Metrics of one device ordered by name, with sample counts. */
static inline int et_store_metrics(struct et_store_reader *r, const char *device,
                                   et_store_metric_cb cb, void *ctx)
{
    return r->ops->metrics(r, device, cb, ctx);
}

/** Samples matching q in (ts_ms, id) order. */
static inline int et_store_query(struct et_store_reader *r, const struct et_store_query *q,
                                 et_store_sample_cb cb, void *ctx)
{
    return r->ops->query(r, q, cb, ctx);
}

/**
 * Up to limit samples with id > after_id in id order, of every device or
 * of device when not NULL. For following new data (edgetelctl tail): it
 * relies on ids becoming visible in increasing order, which SQLite's single
 * writer gives; a backend with concurrent writers (PostgreSQL sequences)
 * must keep that promise some other way or tail can skip rows.
 */
static inline int et_store_samples_after(struct et_store_reader *r, int64_t after_id,
                                         const char *device, unsigned limit,
                                         et_store_sample_cb cb, void *ctx)
{
    return r->ops->samples_after(r, after_id, device, limit, cb, ctx);
}

/** The highest sample id, 0 when there are none. */
static inline int et_store_last_sample_id(struct et_store_reader *r, int64_t *id)
{
    return r->ops->last_sample_id(r, id);
}

/**
 * Quarantined batches (store.h), oldest first (by the time they were kept,
 * then device, stream and seq), of every device or of device when not
 * NULL. A store from before quarantine has none.
 */
static inline int et_store_quarantined(struct et_store_reader *r, const char *device,
                                       et_store_quarantined_cb cb, void *ctx)
{
    return r->ops->quarantined(r, device, cb, ctx);
}

/**
 * The metrics of one device ordered by name, as et_store_metrics() gives
 * them but without counting their samples (m->samples is 0): first_ts_ms
 * and last_ts_ms come from the index, so the call costs the same for a
 * metric of a year as of a minute. 0 and 0 when it has no samples.
 */
static inline int et_store_metric_list(struct et_store_reader *r, const char *device,
                                       et_store_metric_cb cb, void *ctx)
{
    return r->ops->metric_list(r, device, cb, ctx);
}

/**
 * The buckets of q that hold samples, in increasing index. A metric the
 * device does not have gives none. Reads every sample in the range once.
 */
static inline int et_store_series(struct et_store_reader *r,
                                  const struct et_store_series_query *q,
                                  et_store_bucket_cb cb, void *ctx)
{
    return r->ops->series(r, q, cb, ctx);
}

/**
 * For each device with any, how many samples with ts_ms >= since_ms and
 * after_id < id <= through_id the store holds, in no particular order.
 * With after_id 0 the read goes by time (the samples since since_ms of
 * every metric); otherwise by id (the samples stored since after_id), so
 * a caller that keeps counts goes on from the last id it counted
 * (et_store_last_sample_id()) at the cost of the new rows only.
 */
static inline int et_store_device_counts(struct et_store_reader *r, int64_t since_ms,
                                         int64_t after_id, int64_t through_id,
                                         et_store_count_cb cb, void *ctx)
{
    return r->ops->device_counts(r, since_ms, after_id, through_id, cb, ctx);
}

#endif
