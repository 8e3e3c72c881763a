/*
 * The ingest handle and what its files share. Private to et_cloud:
 *   ingest.c         the message: topic, decode and checks, dedupe per
 *                    stream, the Ack; telemetry
 *   ingest_status.c  a Status
 *   ingest_rows.c    a new batch's rows through the store writer
 *   ingest_group.c   group commit and the Acks held until it
 *   ingest_health.c  the store's health as ingest sees it, and where each
 *                    message's counts go
 */
#ifndef EDGETEL_INGEST_PRIV_H
#define EDGETEL_INGEST_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/budget.h"
#include "edgetel/codec.h"
#include "edgetel/devtable.h"
#include "edgetel/ingest.h"

/* Largest |base_mono_ms| and |base_wall_ms| accepted (see ingest_check_batch). */
#define INGEST_TIME_LIMIT (INT64_C(1) << 62)
/*
 * The sane window of a sample's wall time (ingest_check_times): a clock
 * that says it is synchronised (or corrected, or says nothing) reads
 * from 2000-01-01 to a day ahead of the aggregator's clock; a clock that
 * says it is not (UNSYNCED, UNCORRECTABLE: a board without a real-time
 * clock before NTP, which reads 1970 plus its uptime or the time it last
 * saved) still reads between 1970 and 2100, beyond which it is no clock.
 */
#define INGEST_SYNCED_MIN_MS INT64_C(946684800000)      /* 2000-01-01T00:00:00Z */
#define INGEST_AHEAD_MAX_MS (INT64_C(24) * 3600 * 1000)
#define INGEST_UNSYNCED_MIN_MS INT64_C(0)               /* 1970-01-01T00:00:00Z */
#define INGEST_UNSYNCED_MAX_MS INT64_C(4102444800000)   /* 2100-01-01T00:00:00Z */

/* The malformed-message log (ingest_malformed.c): devices whose state is
 * kept (a power of two), how often one is said, and the cause kept. */
#define INGEST_MALFORMED_DEVICES 1024
#define INGEST_MALFORMED_LOG_EVERY_MS 60000
#define INGEST_MALFORMED_CAUSE_MAX 320

/* {root}/v1/{device}/ack */
#define INGEST_TOPIC_MAX (ET_TOPIC_ROOT_MAX + ET_DEVICE_ID_MAX + 16)

/* An Ack held until its group commits. */
struct ingest_held_ack {
    enum et_ingest_kind kind;
    char topic[INGEST_TOPIC_MAX];
    char device[ET_DEVICE_ID_MAX + 1];
    uint64_t seq;
    uint64_t acked_through;
    uint8_t *payload;
    size_t len;
};

struct ingest_group {
    bool open;
    bool failed;               /* a message failed: the group rolls back */
    struct ingest_held_ack *held;
    size_t n_held, cap_held;
};

/*
 * Whether the store is failing, for saying so once, a reminder at most
 * once a minute, and once when it works again (ingest.c).
 */
struct ingest_health {
    bool failing;
    int64_t since_ms;          /* the first failure, the aggregator's clock */
    uint64_t failed;           /* messages not stored since then */
    int64_t next_remind_ms;
    char reason[256];          /* the last failure's */
};

struct et_ingest {
    struct et_store_writer *w;     /* borrowed */
    char root[ET_TOPIC_ROOT_MAX + 1];
    struct et_ingest_stats stats;
    /* Per-batch scratch, grown to the largest batch seen. */
    int64_t *mono;
    size_t mono_cap;
    int64_t *metric_ids;
    size_t metric_cap;
    struct et_wire_kind *kinds;     /* a batch's own dictionary's kinds */
    size_t kinds_cap;
    struct et_wire_sample *expanded; /* the batch's samples, read (ingest_dict.c) */
    size_t expanded_cap;
    /* Streams' dictionaries last used (ingest_dict.c); NULL until the first. */
    struct ingest_dict *dicts;
    uint64_t dict_tick;
    /* Samples re-timed by the transaction in progress; counted on commit. */
    uint64_t pending_retimed;
    /* The time of the message in hand (et_ingest_message's now_ms). */
    int64_t now_ms;
    /* Inside a group, what its messages stored is counted here and moves
     * into stats only when the group commits: a rolled-back batch was
     * not stored. pending_msgs is how many messages that is. */
    struct et_ingest_stats pending;
    uint64_t pending_msgs;
    struct ingest_health health;
    struct et_budget *budget;      /* NULL: no per-device budget */
    /* Malformed messages per device, for the log; made at the first one. */
    struct et_devtable malformed;
    size_t malformed_pending;      /* devices with a count not said yet */
    struct et_budget_cfg budget_cfg;
    struct et_store_config *config; /* NULL: a Status's config fields are not recorded */
    /* The last reply's Ack. */
    char ack_topic[INGEST_TOPIC_MAX];
    uint8_t *ack;
    struct ingest_group group;
};

/*
 * One message's transaction: its own, or its share of the open group's.
 * Inside a failed group begin and commit return -ECANCELED; a rollback
 * inside a group spoils the group, as the message's half-done writes can
 * only be undone with everything else in it.
 */
int ingest_tx_begin(struct et_ingest *ig);
int ingest_tx_commit(struct et_ingest *ig);
void ingest_tx_rollback(struct et_ingest *ig);

/* Inside a group: keep a copy of reply's Ack for after the commit and take
 * it out of reply (ack NULL, ack_held true). Outside one: nothing. */
void ingest_hold_ack(struct et_ingest *ig, struct et_ingest_reply *reply);

/*
 * The group ended with ret (0: committed): its messages' counts become
 * stored or store errors, and the store's health is updated. ingest.c.
 */
void ingest_group_settled(struct et_ingest *ig, int ret);

/* Roll back an open group and drop what it held; free the list. */
void ingest_group_free(struct et_ingest *ig);

/* ---- ingest_malformed.c ---- */

/* Count a malformed message and say it, once a minute per device at most
 * (reply says so); 0, it is not retried. */
int ingest_malformed(struct et_ingest *ig, struct et_ingest_reply *reply,
                     const char *topic, const char *what, const char *why);

/* Say text (printf) about a malformed message of device ("" none): in full,
 * or counted and said with the next line a minute (ingest_malformed.c). */
void ingest_say_malformed(struct et_ingest *ig, const char *device, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Say what the malformed-message log held back, and free its table. */
void ingest_malformed_free(struct et_ingest *ig);

/* ---- ingest.c ---- */

/* Whether the message names another device than its topic (then malformed). */
bool ingest_other_device(struct et_ingest *ig, struct et_ingest_reply *reply,
                         const char *topic, const char *what, const char *device_id);

/* Whether the device is over its budget (then refused, logged, counted). */
bool ingest_over_budget(struct et_ingest *ig, struct et_ingest_reply *reply,
                        const char *what, uint64_t seq, uint64_t samples, size_t len);

/* "legacy" for the empty stream, else its hex. */
const char *ingest_stream_name(const char *stream_hex);

/* Count and log (once) that device started stream_hex, replacing was. */
void ingest_log_new_stream(struct et_ingest_stats *counts, const char *device,
                           const char *stream_hex, const struct et_store_stream_was *was);

/* Inside the open transaction: record (device, stream) when new (*started). */
int ingest_note_stream(struct et_ingest *ig, const char *device, const char *stream_hex,
                       int64_t now_ms, bool *started, struct et_store_stream_was *was);

/* ---- ingest_status.c ---- */

int ingest_status(struct et_ingest *ig, const char *topic, const void *payload,
                  size_t len, int64_t now_ms, struct et_ingest_reply *reply);

/* ---- ingest_rows.c ---- */

/* Grow *buf to hold need elements of elem bytes. 0 or -ENOMEM. */
int ingest_grow(void **buf, size_t *cap, size_t need, size_t elem);

/* 32 hex digits of a 16-byte boot id, "" for none. */
void ingest_boot_hex(const ProtobufCBinaryData *boot_id, char *out);

/* Insert a new batch's row, its claim on its key (samples not yet stored);
 * the transaction is open. 0, -EEXIST when another instance stored it
 * meanwhile (a duplicate), or -errno. */
int ingest_claim_batch(struct et_ingest *ig, const Edgetel__V1__Batch *b, const char *device,
                       const char *stream_hex, const char *boot_hex, int64_t now_ms);

/* Store a claimed batch's samples and where they are: its samples read by
 * ingest_dict_read() into ig->expanded, metric_ids by dictionary index;
 * the transaction is open. 0 or -errno. */
int ingest_store_rows(struct et_ingest *ig, const Edgetel__V1__Batch *b,
                      const int64_t *metric_ids, const char *device, const char *stream_hex,
                      const char *boot_hex);

/* Keep a new batch aside whole, with why (its sample times are impossible);
 * the transaction is open. 0, -EEXIST when it is kept or stored already
 * (another instance, meanwhile), or -errno. */
int ingest_quarantine_batch(struct et_ingest *ig, const Edgetel__V1__Batch *b,
                            const char *device, const char *stream_hex, const void *payload,
                            size_t len, const char *why);

/* ---- ingest_dict.c ---- */

/*
 * Read b's samples into ig->expanded (et_wire_batch_samples(b) of them)
 * with its dictionary: its own, or its stream's as this instance or the
 * store knows it plus the entries b carries. Writes nothing. 0; -ENOKEY
 * (why says which entry) when the stream's dictionary is not known: ask
 * the device for it; -EBADMSG (why) for a batch that contradicts it; a
 * store error.
 */
int ingest_dict_read(struct et_ingest *ig, const Edgetel__V1__Batch *b, const char *device,
                     const char *stream, char *why, size_t whylen);

/*
 * After ingest_dict_read() of b, in the open transaction: keep the
 * entries b carries (its metrics, and in the stream's dictionary) and give
 * the metric ids by dictionary index (*metric_ids, valid until the next
 * batch). 0 or a store error.
 */
int ingest_dict_keep(struct et_ingest *ig, const Edgetel__V1__Batch *b, const char *device,
                     const char *stream, const int64_t **metric_ids);

/* A transaction was undone: forget the dictionaries in memory. */
void ingest_dict_forget(struct et_ingest *ig);

/* Free them. */
void ingest_dict_free(struct et_ingest *ig);

/* ---- ingest_health.c ---- */

/* Unix ms as ISO 8601 UTC, whole seconds or with ms; a number when out of range. */
void ingest_iso(int64_t ms, bool with_ms, char *buf, size_t len);

/* The store (or memory) failed: undo, count, say so once, tell the caller not to ack. */
int ingest_store_failed(struct et_ingest *ig, struct et_ingest_reply *reply,
                        int err, const char *what);

/* Where a message's counts go: the stats, or inside a group the pending counts. */
struct et_ingest_stats *ingest_counts(struct et_ingest *ig);

/* The message's transaction committed (outside a group: the store works). */
void ingest_committed(struct et_ingest *ig);

#endif
