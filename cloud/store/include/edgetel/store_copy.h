/*
 * Moving a store: every row of one store into another of either kind
 * (SQLite into PostgreSQL when a site becomes a fleet, and back), through
 * the stores' own interfaces (library et_store). What edgetelctl store copy
 * runs.
 *
 * Batches are the unit: each is claimed in the destination (its batch row,
 * store_writer.h) before its samples are written, a page of them to a
 * transaction, so a copy that is stopped and run again skips what it
 * copied and goes on, and a batch the destination already holds (copied
 * before, or stored there by an aggregator) is never stored twice.
 * Devices, streams and their acks, metrics, quarantined batches, desired
 * configs and reports are copied idempotently (counters add up only with
 * the batches that bring them). Sample ids are the destination's own.
 */
#ifndef EDGETEL_STORE_COPY_H
#define EDGETEL_STORE_COPY_H

#include <stddef.h>
#include <stdint.h>

#include "edgetel/store.h"

/* Where a copy is, for a progress line. */
struct et_store_copy_progress {
    const char *phase;          /* "devices", "batches", "quarantine", "configs", "done" */
    uint64_t batches_total;     /* in the source */
    uint64_t batches_seen;      /* read from the source so far */
    uint64_t batches_copied;    /* new in the destination */
    uint64_t batches_skipped;   /* the destination had them */
    uint64_t samples_copied;
};

typedef void (*et_store_copy_progress_fn)(void *ctx, const struct et_store_copy_progress *p);

/**
 * Copy from into to (opened for writing). progress (may be NULL) is called
 * after each page of batches and at each phase.
 * @return 0; -EPROTO when from's schema is older than this edgetel's (open
 *         it with an aggregator first) or the type cannot be read for a
 *         copy; -errno with err set otherwise. What was committed stays:
 *         run it again to go on.
 */
int et_store_copy(struct et_store *from, struct et_store *to, et_store_copy_progress_fn progress,
                  void *ctx, char *err, size_t errlen);

#endif
