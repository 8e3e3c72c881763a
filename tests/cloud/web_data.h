/*
 * Data for the web view's tests and benchmark, written straight through a
 * store's writer (no broker, no agent): one device with metrics sampled
 * at a steady interval over a range, with an offline gap and runs of
 * corrected and uncorrectable sample times; and a device whose id, metric
 * names, units and tags are hostile (quotes, tags, control characters,
 * bytes that are not UTF-8), as a store written by hand or by an older
 * edgetel may hold them.
 */
#ifndef EDGETEL_TESTS_WEB_DATA_H
#define EDGETEL_TESTS_WEB_DATA_H

#include <stdbool.h>
#include <stdint.h>

#include "edgetel/store_writer.h"

struct web_data {
    const char *device;
    int metrics;               /* "m0", "m1", ...: f64 sine, i64 counter, then more sines */
    int64_t from_ms;           /* first sample */
    int64_t to_ms;             /* after the last */
    int64_t interval_ms;
    int64_t gap_from_ms;       /* no samples in [gap_from, gap_to): the device was offline */
    int64_t gap_to_ms;
    int64_t corrected_from_ms; /* time quality corrected in [from, to) of this */
    int64_t corrected_to_ms;
    int64_t uncorrectable_from_ms;
    int64_t uncorrectable_to_ms;
    uint64_t outbox_batches;   /* its Status */
    uint64_t dropped_samples;
    int64_t now_ms;            /* when it was last heard */
};

/** Write d through w in transactions of at most 10,000 samples; 0 or -errno. */
int web_data_fill(struct et_store_writer *w, const struct web_data *d);

/* The hostile device's id and one of its metric names (for tests to look for). */
#define WEB_HOSTILE_DEVICE "evil\"<script>dev"
#define WEB_HOSTILE_METRIC "<img src=x onerror=\"document.title='PWNED'\">"

/**
 * Write the hostile device (online, with a Status) and its metrics; 0 or
 * -errno. With not_utf8 false the metric whose name, unit and tags are
 * not UTF-8 is left out: PostgreSQL refuses such text (a database in
 * UTF-8 holds nothing else), so no PostgreSQL store can hold it, while
 * the codec keeps it from ever reaching either store from a device.
 */
int web_data_hostile(struct et_store_writer *w, int64_t now_ms, bool not_utf8);

/* A number after "key": in a JSON text; -1 when absent. */
long long web_json_int(const char *text, const char *key);

#endif
