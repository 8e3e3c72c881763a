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

#endif
