/*
 * The cloud's store: the rows that go in and come out, and the one front
 * door that opens a store of a given type.
 *
 * A store is storage only. It is reached through two small interfaces:
 *   store_writer.h  what ingest writes, in transactions (edgetel-aggregator)
 *   store_reader.h  what edgetelctl, and later a web view, read
 * The rules that decide what to write (dedupe, the cumulative ack, which
 * samples get which wall time) are written once, in C, in the cloud
 * library (ingest.c, ack.c, retime.c) over those calls. A backend runs the
 * statements it is told and decides nothing, so the SQLite backend of one
 * site and a PostgreSQL backend of a fleet differ in their SQL only.
 * Neither interface knows any database library: rows go in as plain
 * structs and come out through callbacks.
 *
 * Data model (the SQLite schema is in cloud/store/store_sqlite_open.c):
 *   devices  one row per device ever heard from: online state and counters
 *            from its Status, last time heard, its current stream, the
 *            last clock mapping of a synchronised batch.
 *   streams  one row per (device, stream) ever heard of: when it started,
 *            its cumulative ack. A stream is one data directory of the
 *            device (Batch.stream_id, 32 hex digits here); "" is the
 *            legacy stream of agents from before streams, and of every
 *            row stored before the store had streams.
 *   batches  one row per stored (device, stream, seq): the dedupe key.
 *   quarantine  one row per batch kept aside, whole, because it cannot be
 *            stored as samples (impossible sample times): device, stream,
 *            seq, why, its bytes. Dealt with like a stored batch for
 *            dedupe and the ack, so its device deletes it and stops
 *            sending it; an operator reads it with edgetelctl quarantine.
 *   metrics  (device, name) -> id, unit, tags.
 *   samples  one row per measured value, wall time and monotonic time,
 *            typed value, time quality, the seq it came in.
 *
 * Threads: a store belongs to the thread that opened it. Several stores
 * (processes, threads) may be open on one database at once.
 *
 * Errors: calls return 0 or -errno. -EBUSY means another writer held the
 * store longer than the busy timeout; -EIO a database error (logged with
 * the database's own message under component "store").
 */
#ifndef EDGETEL_STORE_H
#define EDGETEL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/codec.h"
#include "edgetel/value.h"

/* Where the aggregator keeps its SQLite store unless [store] path says
 * otherwise, and where edgetelctl looks unless --store says otherwise. */
#define ET_STORE_DEFAULT_PATH "/var/lib/edgetel/aggregator.db"
#define ET_STORE_DEFAULT_TYPE "sqlite"

/* Open flags. */
#define ET_STORE_READONLY 0x1u  /* never create or write; for edgetelctl */

/* The largest seq a store keeps: seqs are unsigned 64-bit on the wire and
 * signed 64-bit integers in SQL. */
#define ET_STORE_SEQ_MAX ((uint64_t)INT64_MAX)

/* A stream id as stored: lower-case hex; "" is the legacy stream. */
#define ET_STORE_STREAM_HEX_LEN (2 * ET_STREAM_ID_LEN)

/* A value as stored: like struct et_value, but a string is borrowed. */
struct et_store_value {
    enum et_type type;
    union {
        double f64;
        int64_t i64;
        bool b;
        const char *str;
    } u;
};

/* One stored batch (the dedupe record). */
struct et_store_batch {
    const char *device;
    uint64_t seq;
    int64_t received_ms;      /* aggregator's clock when it was stored */
    uint32_t n_samples;
    bool historical;          /* sent from the device's backlog */
    const char *boot_id_hex;  /* 32 hex chars, or "" when the batch had none */
    enum et_time_quality time_quality; /* batch-wide default */
    /* Its samples: the ids et_store_insert_sample() gave the first and the
     * last (0, 0 when none), and how many were stored still UNSYNCED,
     * waiting for their boot's clock (see retime.h). */
    int64_t first_sample_id;
    int64_t last_sample_id;
    uint32_t unsynced_samples;
    const char *stream_hex;   /* the stream seq counts in; "" or NULL: legacy */
};

/* What a store holds of one (device, stream), from et_store_stream_get(). */
struct et_store_stream {
    int64_t started_ms;       /* when the store first heard of it */
    uint64_t acked_through;   /* its cumulative ack */
    uint64_t top_seq;         /* its highest stored seq; 0 when none */
    int64_t top_received_ms;  /* when that batch was stored; 0 when none */
};

/* A device's current stream, as et_store_stream_start() found it. */
struct et_store_stream_was {
    bool had;                 /* the device had a current stream */
    char stream_hex[ET_STORE_STREAM_HEX_LEN + 1];  /* "" the legacy stream */
    uint64_t acked_through;
};

/*
 * How a device's monotonic clock maps to true wall time in one boot, from a
 * batch made while its clock was synchronised:
 * wall = base_wall_ms + (mono - base_mono_ms).
 */
struct et_store_clock {
    char boot_id_hex[2 * ET_BOOT_ID_LEN + 1];   /* "" when none is known */
    int64_t base_wall_ms;
    int64_t base_mono_ms;
};

/*
 * One sample. On insert: metric_id, ts_ms, mono_ms, value, time_quality,
 * seq are read. From queries every field is set; the strings are valid
 * during the callback only.
 */
struct et_store_sample {
    int64_t id;               /* increases as rows land (tail follows it) */
    int64_t metric_id;
    const char *device;
    const char *metric;
    const char *unit;
    int64_t ts_ms;            /* wall time, Unix epoch ms, as the device had it */
    int64_t mono_ms;          /* the device's monotonic time of the sample */
    struct et_store_value value;
    enum et_time_quality time_quality;
    uint64_t seq;             /* the batch it came in */
};

/* A device's Status message, as the aggregator records it. */
struct et_store_status {
    const char *device;
    bool online;
    const char *boot_id_hex;   /* "" when absent */
    const char *agent_version; /* "" when absent */
    uint64_t outbox_batches;
    uint64_t dropped_samples;
    bool clock_synced;
    const char *reason;        /* "" when absent */
    int64_t device_wall_ms;    /* the device's clock when it sent it */
};

/* What a devices row held before et_store_device_status() wrote to it. */
struct et_store_status_was {
    bool created;              /* there was no row: it is new */
    bool had_status;           /* a Status had been recorded */
    bool online;               /* the online state recorded (false when none) */
};

/* A devices row, from et_store_devices(); strings valid during the callback. */
struct et_store_device {
    const char *id;
    bool online;
    int64_t first_seen_ms;
    int64_t last_seen_ms;      /* last batch or online status received */
    const char *boot_id_hex;   /* "" unknown */
    const char *agent_version; /* "" unknown */
    uint64_t acked_through;    /* of its current stream */
    uint64_t samples_stored;
    uint64_t batches_stored;   /* of all its streams */
    bool has_status;           /* the fields below come from a Status */
    uint64_t outbox_batches;
    uint64_t dropped_samples;
    bool clock_synced;
    const char *reason;
    bool has_stream;           /* the fields below name its current stream */
    const char *stream_hex;    /* "" the legacy stream */
    int64_t stream_started_ms; /* when the store first heard of it */
};

/* A metrics row with its sample count, from et_store_metrics(). */
struct et_store_metric {
    int64_t id;
    const char *device;
    const char *name;
    const char *unit;
    uint64_t samples;
    int64_t first_ts_ms;       /* 0 when samples == 0 */
    int64_t last_ts_ms;
    const char *tags;          /* canonical "k=v,k2=v2", "" when none */
};

/* Samples of one metric of one device, in time order. */
struct et_store_query {
    const char *device;
    const char *metric;
    int64_t since_ms;          /* inclusive; INT64_MIN for no lower bound */
    int64_t until_ms;          /* exclusive; INT64_MAX for no upper bound */
};

/*
 * Row callbacks: return 0 to go on, anything else to stop; the call that
 * runs them then returns that value. A callback must not call the store.
 */
/* A quarantined batch: written by ingest, listed by et_store_quarantined()
 * (there, strings and payload valid during the callback). */
struct et_store_quarantined {
    const char *device;
    const char *stream_hex;   /* "" the legacy stream */
    uint64_t seq;
    int64_t received_ms;      /* aggregator's clock when it was kept */
    uint32_t n_samples;
    const char *reason;       /* why it was not stored, for a person */
    const uint8_t *payload;   /* the Batch as it arrived */
    size_t len;
};

/*
 * An entry of a stream's metric dictionary (Batch.dict_id): the index a
 * device's batches use for a metric, which metric it is, and how its
 * compact values are read. Entries are immutable once stored.
 */
struct et_store_dict_entry {
    uint32_t idx;
    int64_t metric_id;
    int type;                 /* enum et_wire_type */
    double scale;
};

typedef int (*et_store_dict_cb)(void *ctx, const struct et_store_dict_entry *e);
typedef int (*et_store_device_cb)(void *ctx, const struct et_store_device *d);
typedef int (*et_store_metric_cb)(void *ctx, const struct et_store_metric *m);
typedef int (*et_store_sample_cb)(void *ctx, const struct et_store_sample *s);
typedef int (*et_store_quarantined_cb)(void *ctx, const struct et_store_quarantined *q);

struct et_store;
struct et_store_writer;
struct et_store_reader;

/** Lower-case hex of n bytes into out (2n+1 bytes), as boot ids are stored; "" when n is 0. */
static inline void et_store_hex(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0xf];
    }
    out[2 * n] = '\0';
}

#endif
