/*
 * What a store backend gives the front door (store.c), and the handle
 * every backend's store starts with. Private to et_store: callers see
 * struct et_store only through store.h.
 */
#ifndef EDGETEL_STORE_BACKEND_H
#define EDGETEL_STORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "edgetel/store.h"
#include "edgetel/store_config.h"
#include "edgetel/store_reader.h"
#include "edgetel/store_writer.h"

/* A stream as store copy reads it. */
struct et_store_copy_stream {
    const char *device;
    const char *stream_hex;
    int64_t started_ms;
    uint64_t acked_through;
};

typedef int (*et_store_copy_stream_cb)(void *ctx, const struct et_store_copy_stream *st);
/* A batch row, strings valid during the callback. */
typedef int (*et_store_copy_batch_cb)(void *ctx, const struct et_store_batch *b);

/*
 * What store copy (store_copy.c) reads that the reader does not give: the
 * rows of the dedupe record and the samples of one batch. Rows come out
 * through callbacks as the reader's do.
 */
struct et_store_copy_ops {
    /* Every stream, ordered by device and start. */
    int (*streams)(struct et_store *s, et_store_copy_stream_cb cb, void *ctx);
    /* Up to limit batch rows after (device, stream, seq), in that order. */
    int (*batches)(struct et_store *s, const char *device, const char *stream, uint64_t seq,
                   unsigned limit, et_store_copy_batch_cb cb, void *ctx);
    /* The samples of batch b (its device, seq and sample ids), in id order;
     * metric_id as the source store numbers it. */
    int (*batch_samples)(struct et_store *s, const struct et_store_batch *b,
                         et_store_sample_cb cb, void *ctx);
    /* How many batches and samples the store holds (for progress). */
    int (*count)(struct et_store *s, uint64_t *batches, uint64_t *samples);
};

struct et_store_backend {
    const char *type;   /* matches [store] type */
    /* As et_store_open(); target is the backend's own (a file, a URI). */
    int (*open)(struct et_store **out, const char *target, unsigned flags, char *err,
                size_t errlen);
    /* Roll back what is open and free everything; never called with NULL. */
    void (*close)(struct et_store *s);
    /* Optional (NULL: nothing to do): et_store_maintain(). */
    int (*maintain)(struct et_store *s, int64_t now_ms, int64_t retention_ms, char *err,
                    size_t errlen);
    const struct et_store_copy_ops *copy;
};

/* Every backend's store starts with this, filled in by its open. */
struct et_store {
    const struct et_store_backend *backend;
    struct et_store_writer *writer;   /* NULL when opened ET_STORE_READONLY */
    struct et_store_reader *reader;
    struct et_store_config *config;
};

extern const struct et_store_backend et_store_sqlite;
extern const struct et_store_backend et_store_postgresql;

#endif
