/*
 * A fake store writer for the cloud tests: store_writer.h in memory, for
 * testing the cloud library's rules (ack.c, retime.c, ingest.c and
 * ingest_group.c) without a database. Every row is in plain arrays a test
 * can read, every call is counted, any call can be made to fail, and a
 * rollback puts back what the transaction changed.
 */
#ifndef EDGETEL_TESTS_FAKE_WRITER_H
#define EDGETEL_TESTS_FAKE_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/ingest.h"
#include "edgetel/store_writer.h"

enum fake_op {
    FAKE_BEGIN,
    FAKE_COMMIT,
    FAKE_ROLLBACK,
    FAKE_BATCH_SEEN,
    FAKE_DEVICE_SEEN,
    FAKE_DEVICE_STATUS,
    FAKE_METRIC_ID,
    FAKE_METRIC_TAGS,
    FAKE_INSERT_BATCH,
    FAKE_INSERT_SAMPLE,
    FAKE_ACK_GET,
    FAKE_ACK_SET,
    FAKE_SEQS_AFTER,
    FAKE_CLOCK_GET,
    FAKE_CLOCK_SET,
    FAKE_UNSYNCED_SAMPLES,
    FAKE_SAMPLE_TIME,
    FAKE_UNSYNCED_DONE,
    FAKE_STREAM_GET,
    FAKE_STREAM_START,
    FAKE_QUARANTINE,
    FAKE_BATCH_SAMPLES,
    FAKE_OPS
};

#define FAKE_DEVICES 8
#define FAKE_METRICS 32
#define FAKE_BATCHES 4096
#define FAKE_SAMPLES 4096
#define FAKE_STREAMS 16

struct fake_device {
    char id[ET_DEVICE_ID_MAX + 1];
    int64_t first_seen_ms, last_seen_ms;
    char boot_id_hex[2 * ET_BOOT_ID_LEN + 1];
    uint64_t samples_stored;
    bool has_status, online;
    struct et_store_clock clock;
    char stream[ET_STORE_STREAM_HEX_LEN + 1];   /* current; "" legacy */
    /* Made only for a batch row's key (a real store's batches table does
     * not refer to devices): the first device_seen or status creates it. */
    bool unseen;
};

struct fake_stream {
    int device;                /* index into devices */
    char stream[ET_STORE_STREAM_HEX_LEN + 1];
    int64_t started_ms;
    uint64_t acked_through;
};

struct fake_batch {
    int device;                /* index into devices */
    char stream[ET_STORE_STREAM_HEX_LEN + 1];
    uint64_t seq;
    int64_t received_ms;
    char boot_id_hex[2 * ET_BOOT_ID_LEN + 1];
    uint32_t unsynced;
    int64_t first_sample_id, last_sample_id;
    bool quarantined;          /* et_store_quarantine(): kept whole, no samples */
    char reason[160];
    size_t payload_len;
};

struct fake_sample {
    int64_t id, metric_id, ts_ms, mono_ms;
    enum et_time_quality time_quality;
    uint64_t seq;
};

struct fake_metric {
    int device;
    char name[128];
    char unit[32];
    char tags[ET_TAGS_TEXT_MAX];
};

/* Everything a fake store holds; a rollback puts back the copy begin took. */
struct fake_rows {
    struct fake_device devices[FAKE_DEVICES];
    size_t n_devices;
    struct fake_metric metrics[FAKE_METRICS];
    size_t n_metrics;
    struct fake_batch batches[FAKE_BATCHES];   /* in (device, stream, seq) order */
    size_t n_batches;
    struct fake_stream streams[FAKE_STREAMS];
    size_t n_streams;
    struct fake_sample samples[FAKE_SAMPLES];  /* id = index + 1 */
    size_t n_samples;
};

struct fake_writer {
    struct et_store_writer base;   /* et_store_*() take &f->base */
    struct fake_rows rows;
    struct fake_rows saved;        /* the rows when the transaction began */
    bool in_tx;
    unsigned calls[FAKE_OPS];      /* how often each call was made */
    unsigned fail_at[FAKE_OPS];    /* the call (1, 2, ...) that fails; 0 never */
    int fail_ret;                  /* what it fails with (-EIO unless set) */
};

/** A new empty fake store (asserts on failure). */
struct fake_writer *fake_writer_create(void);

/** NULL is a no-op. */
void fake_writer_destroy(struct fake_writer *f);

/** cmocka setup and teardown with a new fake writer in *state. */
int fake_writer_setup(void **state);
int fake_writer_teardown(void **state);

/** The device's row, or NULL when it has none. */
struct fake_device *fake_device(struct fake_writer *f, const char *device);

/** The (device, stream) row, or NULL when there is none. */
struct fake_stream *fake_stream(struct fake_writer *f, const char *device, const char *stream);

/**
 * Store batch rows of (device, stream) for seqs first..last (the device and
 * stream rows are made if new, the stream started at 0).
 */
void fake_add_stream_batches(struct fake_writer *f, const char *device, const char *stream,
                             uint64_t first, uint64_t last);

/** The same in the legacy stream "". */
void fake_add_batches(struct fake_writer *f, const char *device, uint64_t first, uint64_t last);

#endif
