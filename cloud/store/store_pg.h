/*
 * The PostgreSQL store backend (libpq), for a fleet: many aggregator
 * instances on one database. Shared by its files:
 *   store_pg_open.c       connecting, schema, versions, migrations, closing
 *   store_pg_part.c       samples' daily partitions: made ahead, dropped by retention
 *   store_pg_writer.c     the writer (store_writer.h): transactions, devices,
 *                         metrics, batches, samples
 *   store_pg_stream.c     the writer's streams and their cumulative acks
 *   store_pg_retime.c     the writer's storage for re-timing (clocks, samples to re-time)
 *   store_pg_commit.c     what the writer keeps for the commit, and writing it
 *   store_pg_reader.c     the reader (store_reader.h)
 *   store_pg_view.c       the reader's calls for the web view (store_reader.h)
 *   store_pg_config.c     the config part (store_config.h)
 *   store_pg_copy.c       what store copy reads (backend.h)
 *   store_pg_sql.c        statements, parameters, results, errors
 * Private to et_store.
 *
 * Like the SQLite backend it stores what it is told and decides nothing.
 * What differs is how: several writers at once. See docs/SCALING.md and
 * the writer's file for the two things that takes (sample ids that tail
 * can follow, and hot rows written at commit in key order).
 */
#ifndef EDGETEL_STORE_PG_H
#define EDGETEL_STORE_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <libpq-fe.h>

#include "backend.h"
#include "edgetel/ingest.h"
#include "store_metric_cache.h"

/* The schema this code writes; read-only handles read it back to 1.
 * 2: streams' metric dictionaries (table dictionaries). */
#define STORE_PG_SCHEMA_VERSION 2

/*
 * Sample ids: the id of the sample's transaction (xid8) times 2^24 plus
 * its place in the transaction. Ids then become visible in transaction
 * order as far as a reader can tell (store_pg_reader.c), which is what
 * tail needs, with no lock shared by the writers. 2^39 transactions
 * (550 billion) fit; a transaction holds at most 2^24 - 1 samples.
 */
#define STORE_PG_ID_SHIFT 24
#define STORE_PG_XID_MAX (INT64_C(1) << (63 - STORE_PG_ID_SHIFT))

/* The parts whose statements are prepared on the connection. */
enum store_pg_part {
    PG_PART_WRITER, PG_PART_READER, PG_PART_CONFIG, PG_PART_COMMIT, PG_PART_STREAM,
    PG_PART_RETIME, PG_PART_VIEW, PG_PART_DICT, PG_PART_COUNT
};
#define STORE_PG_STMTS_MAX 48

/* Parameters of one statement, as text (bytea as binary). */
#define STORE_PG_PARAMS_MAX 20
struct pg_params {
    int n;
    const char *values[STORE_PG_PARAMS_MAX];
    int lengths[STORE_PG_PARAMS_MAX];
    int formats[STORE_PG_PARAMS_MAX];
    char nums[STORE_PG_PARAMS_MAX][24];
};

void pg_text(struct pg_params *p, const char *s);     /* NULL binds as "" */
void pg_int(struct pg_params *p, int64_t x);
void pg_u64(struct pg_params *p, uint64_t x);          /* clamped to INT64_MAX */
void pg_f64(struct pg_params *p, double x);            /* binary float8: exact */
void pg_null(struct pg_params *p);
void pg_blob(struct pg_params *p, const void *bytes, size_t n);

/* A growing byte buffer (COPY data, array literals). */
struct pg_buf {
    char *p;
    size_t len, cap;
    bool failed;               /* out of memory at some point */
};

void pg_buf_add(struct pg_buf *b, const void *bytes, size_t n);
void pg_buf_str(struct pg_buf *b, const char *s);
void pg_buf_be16(struct pg_buf *b, uint16_t v);
void pg_buf_be32(struct pg_buf *b, uint32_t v);
void pg_buf_be64(struct pg_buf *b, uint64_t v);
void pg_buf_free(struct pg_buf *b);
/* An array literal of text items ("{"a","b"}", a C string) from count
 * strings, the first at first and each stride bytes after the last (a
 * char array field of an array of structs). */
void pg_buf_text_array(struct pg_buf *b, const char *first, size_t count, size_t stride);

/* What a transaction keeps for its commit (store_pg_commit.c). */
struct pg_pending_device {
    char id[ET_DEVICE_ID_MAX + 1];
    int64_t seen_ms;            /* the latest heard; 0 none */
    char boot[2 * ET_BOOT_ID_LEN + 1];
    uint64_t add_samples;
    bool clock;                 /* clock_set */
    struct et_store_clock clk;
    bool status;                /* a Status */
    bool online, clock_synced;
    char status_boot[2 * ET_BOOT_ID_LEN + 1];
    char agent_version[128];
    uint64_t outbox_batches, dropped_samples;
    char reason[1024];
    int64_t status_wall_ms;
    bool config;                /* config's device_set */
    bool has_groups;
    char groups[ET_STORE_CONFIG_GROUPS_TEXT_MAX];
    uint64_t config_version;
};

struct pg_pending_ack {
    char device[ET_DEVICE_ID_MAX + 1];
    char stream[ET_STORE_STREAM_HEX_LEN + 1];
    uint64_t ack;
};

struct pg_pending_batch {
    char device[ET_DEVICE_ID_MAX + 1];
    char stream[ET_STORE_STREAM_HEX_LEN + 1];
    uint64_t seq;
    int64_t first, last;
    uint32_t unsynced;
};


struct store_pg {
    struct et_store base;       /* first: the front end casts to it */
    struct et_store_writer writer;
    struct et_store_reader reader;
    struct et_store_config config;
    PGconn *conn;
    bool readonly;
    bool in_tx;
    int64_t version;            /* of the schema */
    bool prepared[PG_PART_COUNT][STORE_PG_STMTS_MAX];
    char last_error[256];

    /* The writer's transaction: its sample ids and what waits for commit. */
    int64_t id_base;            /* 0 until the first sample */
    int64_t id_next;
    struct pg_buf copy;         /* samples as binary COPY rows */
    size_t copy_rows;
    struct pg_pending_batch *batches;
    size_t n_batches, cap_batches;
    bool batches_unsynced;      /* one of them waits for re-timing */
    struct pg_pending_device *devices;
    size_t n_devices, cap_devices;
    struct pg_pending_ack *acks;
    size_t n_acks, cap_acks;
    /* (device, name) -> id, unit, tags: kept across transactions, cleared
     * when one rolls back (store_metric_cache.c). */
    struct store_metric_cache metric_cache;
    /* The last search for samples waiting to be re-timed, and whether it
     * found none and nothing that could wait was written since. */
    char unsynced_key[128];
    bool unsynced_none;
    /* A stream's ack and the seqs above it, read together by ack_get for
     * the seqs_after that follows it (one round trip, not two); valid
     * until the transaction writes a batch or ends. */
    struct {
        bool valid, complete;
        char key[128];
        uint64_t base;
        uint64_t *seqs;
        size_t n;
    } ack_seqs;
};

extern const struct et_store_writer_ops store_pg_writer_ops;
extern const struct et_store_reader_ops store_pg_reader_ops;
extern const struct et_store_config_ops store_pg_config_ops;
extern const struct et_store_copy_ops store_pg_copy_ops;

/*
 * Run statement id of part (its SQL sql, prepared on first use on this
 * connection) with p. *res (may be NULL: cleared) gets the result of a
 * statement that returned rows or a command's result; the caller
 * PQclear()s it. 0 or -errno; a failure keeps "what: PostgreSQL's
 * message" as the last error.
 */
int store_pg_run(struct store_pg *pg, enum store_pg_part part, int id, const char *sql,
                 const struct pg_params *p, PGresult **res, const char *what);

/* A statement once, unprepared, without parameters (BEGIN, DDL). */
int store_pg_exec(struct store_pg *pg, const char *sql, const char *what);

/* -errno for a failed result (the SQLSTATE's class): -EEXIST for a unique
 * violation, -EDEADLK a deadlock, -EAGAIN a serialization failure,
 * -ENOSPC a full disk, -ECONNRESET a lost connection, -EIO otherwise. */
int store_pg_errno(struct store_pg *pg, const PGresult *res);

/* As store_sqlite_failed(): keep the last error; -EEXIST and -ENOENT are answers. */
int store_pg_failed(struct store_pg *pg, int ret, const char *what, const char *message);

/* Column readers of a text-format result. */
const char *pg_col_text(const PGresult *res, int row, int col);   /* "" for NULL */
int64_t pg_col_i64(const PGresult *res, int row, int col);        /* 0 for NULL */
uint64_t pg_col_u64(const PGresult *res, int row, int col);
bool pg_col_bool(const PGresult *res, int row, int col);          /* 't', or a non-zero number */
bool pg_col_null(const PGresult *res, int row, int col);
double pg_col_f64(const PGresult *res, int row, int col);         /* NaN, Infinity kept */
/* The value of v->type from the columns v_f64, v_i64, v_bool, v_str at col.. */
void pg_col_value(const PGresult *res, int row, int col, struct et_store_value *v);

/* A timestamptz column (or expression) as bigint milliseconds since the epoch, in SQL. */
#define PG_MS_OF(col) "(extract(epoch FROM " col ") * 1000)::bigint"

/* Milliseconds since the epoch as the text a timestamptz parameter takes. */
void pg_ms_text(int64_t ms, char *out, size_t len);

/* ---- store_pg_part.c ---- */

/* The daily partitions around now_ms made (ahead) and, with retention_ms
 * > 0, those wholly older than now_ms - retention_ms dropped; samples
 * outside every partition moved into theirs. 0 or -errno with err set. */
int store_pg_partitions(struct store_pg *pg, int64_t now_ms, int64_t retention_ms, char *err,
                        size_t errlen);

/* ---- store_pg_commit.c ---- */

/* Grow an array of elem-sized items (*cap of them) to hold n + 1; the
 * array, or NULL out of memory (the old one kept). */
void *store_pg_grow(void **items, size_t n, size_t *cap, size_t elem);
/* The transaction's kept row of a device, or of a stream's ack; made when
 * make (NULL out of memory), else NULL when there is none. */
struct pg_pending_device *store_pg_pending_device(struct store_pg *pg, const char *id,
                                                  bool make);
struct pg_pending_ack *store_pg_pending_ack(struct store_pg *pg, const char *device,
                                            const char *stream, bool make);
/* Add a sample, numbered sid, to the COPY rows. */
void store_pg_copy_sample(struct store_pg *pg, const struct et_store_sample *smp, int64_t sid);
/* Send the samples (one COPY); then where batches' samples are. */
int store_pg_flush_samples(struct store_pg *pg);
int store_pg_flush_batches(struct store_pg *pg);
/* Everything kept, before the COMMIT. */
int store_pg_flush(struct store_pg *pg);

/* The store of a writer, reader or config part handed out by et_store. */
static inline struct store_pg *store_pg_of_writer(struct et_store_writer *w)
{
    return (struct store_pg *)((char *)w - offsetof(struct store_pg, writer));
}

static inline struct store_pg *store_pg_of_reader(struct et_store_reader *r)
{
    return (struct store_pg *)((char *)r - offsetof(struct store_pg, reader));
}

/* "a\nb": the key of a kept answer about a device's stream or boot. */
static inline void store_pg_key(char *out, size_t len, const char *a, const char *b)
{
    snprintf(out, len, "%s\n%s", a, b ? b : "");
}

/* How many rows a command changed. */
static inline int store_pg_changes(const PGresult *res)
{
    return atoi(PQcmdTuples((PGresult *)res));
}

/* ---- store_pg_writer.c ---- */

/*
 * A call that buffers, made outside a transaction, stands alone
 * (store_writer.h): solo_begin gives it one of its own (*own), solo_end
 * commits it, or rolls it back when ret < 0, and returns ret or the
 * commit's failure.
 */
int store_pg_solo_begin(struct store_pg *pg, bool *own);
int store_pg_solo_end(struct store_pg *pg, bool own, int ret);

/* Drop what the writer's transaction buffered (rollback, close). */
void store_pg_writer_forget(struct store_pg *pg);
/* Free the writer's buffers and caches. */
void store_pg_writer_free(struct store_pg *pg);
/* The config part's device_set, kept with the device's other writes of the
 * open transaction when it has any (after a Status); -ENOENT otherwise. */
int store_pg_device_config(struct store_pg *pg, const char *device, const char *groups,
                           uint64_t running_version);

/* ---- store_pg_stream.c, store_pg_retime.c, store_pg_dict.c: the writer's other calls ---- */

int store_pg_dict_put(struct et_store_writer *w, const char *device, const char *stream,
                      uint64_t dict_id, const struct et_store_dict_entry *e);
int store_pg_dict_get(struct et_store_writer *w, const char *device, const char *stream,
                      uint64_t dict_id, et_store_dict_cb cb, void *ctx);

int store_pg_ack_get(struct et_store_writer *w, const char *device, const char *stream,
                     uint64_t *acked_through);
int store_pg_ack_set(struct et_store_writer *w, const char *device, const char *stream,
                     uint64_t acked_through);
int store_pg_seqs_after(struct et_store_writer *w, const char *device, const char *stream,
                        uint64_t after, uint64_t *seqs, size_t max, size_t *n);
int store_pg_stream_get(struct et_store_writer *w, const char *device, const char *stream,
                        struct et_store_stream *out);
int store_pg_stream_start(struct et_store_writer *w, const char *device, const char *stream,
                          int64_t now_ms, struct et_store_stream_was *was);

int store_pg_clock_get(struct et_store_writer *w, const char *device,
                       struct et_store_clock *out);
int store_pg_clock_set(struct et_store_writer *w, const char *device,
                       const struct et_store_clock *clk);
int store_pg_unsynced_samples(struct et_store_writer *w, const char *device,
                              const char *boot_id_hex, et_store_sample_cb cb, void *ctx);
int store_pg_sample_time(struct et_store_writer *w, int64_t id, int64_t ts_ms,
                         enum et_time_quality tq);
int store_pg_unsynced_done(struct et_store_writer *w, const char *device,
                           const char *boot_id_hex);

/* ---- store_pg_reader.c, store_pg_view.c ---- */

/*
 * The metrics of device by statement id of part (its SQL sql, which takes
 * the device as $1 and gives id, device, name, unit, samples, first and
 * last ts in ms, tags), each to cb: the reader's metrics and metric_list.
 */
int store_pg_metrics_read(struct store_pg *pg, enum store_pg_part part, int id, const char *sql,
                          const char *device, et_store_metric_cb cb, void *ctx);

/* The web view's statements, in store_pg_view.c's ops and in the test of
 * their plans (tests/pg/test_view_plans.c). */
enum store_pg_view_stmt {
    PG_VIEW_METRIC_LIST, PG_VIEW_SERIES, PG_VIEW_COUNTS_BY_TIME, PG_VIEW_COUNTS_BY_ID,
    PG_VIEW_COUNT
};
extern const char *const store_pg_view_sql[PG_VIEW_COUNT];

int store_pg_metric_list(struct et_store_reader *r, const char *device, et_store_metric_cb cb,
                         void *ctx);
int store_pg_series(struct et_store_reader *r, const struct et_store_series_query *q,
                    et_store_bucket_cb cb, void *ctx);
int store_pg_device_counts(struct et_store_reader *r, int64_t since_ms, int64_t after_id,
                           int64_t through_id, et_store_count_cb cb, void *ctx);

#endif
