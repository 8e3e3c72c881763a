/*
 * The aggregator's store: where ingested telemetry lands and where
 * edgetelctl reads it.
 *
 * A store is reached through a small vtable (struct et_store_ops) so the
 * SQLite backend of a single site and a PostgreSQL backend of a fleet sit
 * behind the same calls. The vtable knows nothing of any database library:
 * rows go in as plain structs and come out through callbacks.
 *
 * Data model (the SQLite schema is in store_sqlite.c, versioned):
 *   devices  one row per device ever heard from: online state and counters
 *            from its Status, last time heard, the cumulative ack.
 *   batches  one row per stored (device, seq): the dedupe key.
 *   metrics  (device, name) -> id, unit.
 *   samples  one row per measured value, wall time and monotonic time,
 *            typed value, time quality, the seq it came in.
 *
 * Transactions: every write happens between et_store_begin() and
 * et_store_commit() (or et_store_rollback()). begin takes the write lock at
 * once, so two aggregator instances on one store serialise cleanly instead
 * of failing to upgrade a read lock half way. A commit is durable when it
 * returns: the aggregator acknowledges a batch to its device only after it,
 * and the device then deletes the batch.
 *
 * Threads: a handle belongs to the thread that opened it. Several handles
 * (processes, threads) may use one store at once.
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
     * last (0, 0 when none), and how many were stored still UNSYNCED, to be
     * re-timed by et_store_retime() once the boot's clock is known. */
    int64_t first_sample_id;
    int64_t last_sample_id;
    uint32_t unsynced_samples;
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

/* Furthest a re-timed sample may lie from its mapping's base, in ms (ten
 * years): beyond it the pair is garbage, not a clock. */
#define ET_STORE_RETIME_SPAN_MS (INT64_C(10) * 366 * 24 * 3600 * 1000)

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

/* A devices row, from et_store_devices(); strings valid during the callback. */
struct et_store_device {
    const char *id;
    bool online;
    int64_t first_seen_ms;
    int64_t last_seen_ms;      /* last batch or status received */
    const char *boot_id_hex;   /* "" unknown */
    const char *agent_version; /* "" unknown */
    uint64_t acked_through;
    uint64_t samples_stored;
    uint64_t batches_stored;
    bool has_status;           /* the fields below come from a Status */
    uint64_t outbox_batches;
    uint64_t dropped_samples;
    bool clock_synced;
    const char *reason;
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
 * Row callbacks: return 0 to go on, anything else to stop; the query then
 * returns that value.
 */
typedef int (*et_store_device_cb)(void *ctx, const struct et_store_device *d);
typedef int (*et_store_metric_cb)(void *ctx, const struct et_store_metric *m);
typedef int (*et_store_sample_cb)(void *ctx, const struct et_store_sample *s);

struct et_store;

/*
 * The backend vtable. Every member is required. It only grows at the end.
 * The et_store_* functions below document each call's contract.
 */
struct et_store_ops {
    const char *type;   /* matches [store] type */
    int (*open)(struct et_store **out, const char *target, unsigned flags,
                char *err, size_t errlen);
    void (*close)(struct et_store *s);
    int (*begin)(struct et_store *s);
    int (*commit)(struct et_store *s);
    int (*rollback)(struct et_store *s);
    int (*batch_seen)(struct et_store *s, const char *device, uint64_t seq, bool *seen);
    int (*device_seen)(struct et_store *s, const char *device, int64_t now_ms,
                       const char *boot_id_hex, uint64_t add_samples, bool *created);
    int (*metric_id)(struct et_store *s, const char *device, const char *name,
                     const char *unit, int64_t *id);
    int (*insert_batch)(struct et_store *s, const struct et_store_batch *b);
    int (*insert_sample)(struct et_store *s, const struct et_store_sample *smp, int64_t *id);
    int (*advance_ack)(struct et_store *s, const char *device, uint64_t floor,
                       uint64_t *acked_through);
    int (*device_status)(struct et_store *s, const struct et_store_status *st,
                         int64_t now_ms, bool *created, bool *changed);
    int (*devices)(struct et_store *s, const char *only, et_store_device_cb cb, void *ctx);
    int (*metrics)(struct et_store *s, const char *device, et_store_metric_cb cb, void *ctx);
    int (*query)(struct et_store *s, const struct et_store_query *q,
                 et_store_sample_cb cb, void *ctx);
    int (*samples_after)(struct et_store *s, int64_t after_id, const char *device,
                         unsigned limit, et_store_sample_cb cb, void *ctx);
    int (*last_sample_id)(struct et_store *s, int64_t *id);
    int (*clock_get)(struct et_store *s, const char *device, struct et_store_clock *out);
    int (*retime)(struct et_store *s, const char *device, const struct et_store_clock *clk,
                  uint64_t *retimed);
    int (*metric_tags)(struct et_store *s, int64_t id, const char *tags);
};

/* Every backend's handle starts with this (zeroed by the backend's open). */
struct et_store {
    const struct et_store_ops *ops;
    /* Group commit state, kept by the front end (store.c), see below. */
    bool group_open;
    bool group_failed;
};

extern const struct et_store_ops et_store_sqlite_ops;

/**
 * Open a store of the given type ("sqlite"); for SQLite target is the
 * database file, created with its schema on first open unless
 * ET_STORE_READONLY is set.
 * @return 0; -ENOENT when a read-only store does not exist; -EPROTONOSUPPORT
 *         for an unknown type; -EPROTO for a file that is not an edgetel
 *         store or is of a newer schema; -errno otherwise. err gets a reason
 *         for a person that does not repeat the path.
 */
int et_store_open(struct et_store **out, const char *type, const char *target,
                  unsigned flags, char *err, size_t errlen);

/** Close; NULL is a no-op. An open transaction is rolled back. */
void et_store_close(struct et_store *s);

/** Start a write transaction (takes the write lock now). */
int et_store_begin(struct et_store *s);
/** Make the transaction durable. On failure it is rolled back. */
int et_store_commit(struct et_store *s);
/** Undo the transaction; harmless when none is open. */
int et_store_rollback(struct et_store *s);

/**
 * Group commit: between et_store_group_begin() and et_store_group_commit()
 * the transactions of et_store_begin()/et_store_commit() all join one
 * transaction, so a burst of messages costs one durable commit (one fsync)
 * instead of one each. A rollback inside the group spoils the whole group:
 * et_store_group_commit() then rolls everything back and returns
 * -ECANCELED. Nothing in the group is durable, so nothing in it may be
 * acknowledged, before et_store_group_commit() returned 0.
 */
int et_store_group_begin(struct et_store *s);
int et_store_group_commit(struct et_store *s);

/** Set a metric's tags (canonical "k=v,k2=v2", "" for none); a no-op when unchanged. */
int et_store_metric_tags(struct et_store *s, int64_t id, const char *tags);

/** Whether (device, seq) is stored. */
int et_store_batch_seen(struct et_store *s, const char *device, uint64_t seq, bool *seen);

/**
 * Record that a device was heard from at now_ms: create its row if new
 * (*created, may be NULL), set last_seen, the boot id when boot_id_hex is
 * not NULL or "", and add add_samples to its stored-sample count.
 */
int et_store_device_seen(struct et_store *s, const char *device, int64_t now_ms,
                         const char *boot_id_hex, uint64_t add_samples, bool *created);

/** The id of (device, name), created if new; the unit is updated if it changed. */
int et_store_metric_id(struct et_store *s, const char *device, const char *name,
                       const char *unit, int64_t *id);

/** Store a batch row. -EEXIST when (device, seq) is already stored. */
int et_store_insert_batch(struct et_store *s, const struct et_store_batch *b);

/** Store a sample; *id (may be NULL) gets its row id. */
int et_store_insert_sample(struct et_store *s, const struct et_store_sample *smp, int64_t *id);

/**
 * Advance the device's cumulative ack: raise it to floor if lower, then
 * while (device, ack + 1) is stored, step on. Writes and returns the result.
 * The device row must exist (et_store_device_seen() first).
 */
int et_store_advance_ack(struct et_store *s, const char *device, uint64_t floor,
                         uint64_t *acked_through);

/**
 * Record a Status: online state and counters; creates the row if new
 * (*created). *changed says whether the online state differs from the one
 * recorded before (true when none was); both may be NULL. An online Status
 * sets last_seen to now_ms; an offline one does not, because it is the
 * broker speaking for the device (its will) or a retained message replayed
 * to a starting aggregator, not the device being heard.
 */
int et_store_device_status(struct et_store *s, const struct et_store_status *st,
                           int64_t now_ms, bool *created, bool *changed);

/** Devices ordered by id; only != NULL restricts to that one device. */
int et_store_devices(struct et_store *s, const char *only, et_store_device_cb cb, void *ctx);

/** Metrics of one device ordered by name, with sample counts. */
int et_store_metrics(struct et_store *s, const char *device, et_store_metric_cb cb, void *ctx);

/** Samples matching q in (ts_ms, id) order. */
int et_store_query(struct et_store *s, const struct et_store_query *q,
                   et_store_sample_cb cb, void *ctx);

/**
 * Up to limit samples with id > after_id in id order, of every device or
 * of device when not NULL. For following new data (edgetelctl tail): it
 * relies on ids becoming visible in increasing order, which SQLite's single
 * writer gives; a backend with concurrent writers (PostgreSQL sequences)
 * must keep that promise some other way or tail can skip rows.
 */
int et_store_samples_after(struct et_store *s, int64_t after_id, const char *device,
                           unsigned limit, et_store_sample_cb cb, void *ctx);

/** The highest sample id, 0 when there are none. */
int et_store_last_sample_id(struct et_store *s, int64_t *id);

/** The device's last recorded clock mapping; boot_id_hex is "" when there is none. */
int et_store_clock_get(struct et_store *s, const char *device, struct et_store_clock *out);

/**
 * The device's clock in boot clk->boot_id_hex is now known: give every
 * stored sample of that boot that is still UNSYNCED the wall time clk
 * implies (within ET_STORE_RETIME_SPAN_MS of its base) and quality
 * CORRECTED, and record clk as the device's clock mapping.
 * *retimed (may be NULL) gets the number of samples changed.
 */
int et_store_retime(struct et_store *s, const char *device, const struct et_store_clock *clk,
                    uint64_t *retimed);

/** Lower-case hex of n bytes into out (2n+1 bytes); "" when n is 0. */
void et_store_hex(const uint8_t *bytes, size_t n, char *out);

#endif
