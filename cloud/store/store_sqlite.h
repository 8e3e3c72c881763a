/*
 * The SQLite store backend, shared by its files:
 *   store_sqlite_open.c    schema, migrations, opening and closing
 *   store_sqlite_writer.c  the writer (store_writer.h)
 *   store_sqlite_reader.c  the reader (store_reader.h)
 *   store_sqlite_config.c  the config part (store_config.h)
 *   store_sqlite_view.c    the reader's calls for the web view (store_reader.h)
 * Private to et_store.
 */
#ifndef EDGETEL_STORE_SQLITE_H
#define EDGETEL_STORE_SQLITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "backend.h"
#include "edgetel/sqlite.h"
#include "store_metric_cache.h"

/* The first schema version with streams, and with quarantine (the reader
 * still reads older ones). */
#define STORE_SCHEMA_STREAMS 4
/* The first schema version with pushed configs (store_config.h). */
#define STORE_SCHEMA_CONFIG 5
/* The first schema version with the quarantine table. */
#define STORE_SCHEMA_QUARANTINE 6
/* The first schema version with streams' metric dictionaries. */
#define STORE_SCHEMA_DICTS 7

/* The writer's cached statements (SQL in store_sqlite_writer.c). */
enum store_writer_stmt {
    SW_BEGIN,
    SW_COMMIT,
    SW_ROLLBACK,
    SW_BATCH_SEEN,
    SW_DEVICE_INSERT,
    SW_DEVICE_SEEN,
    SW_STATUS_GET,
    SW_STATUS,
    SW_METRIC_GET,
    SW_METRIC_INSERT,
    SW_METRIC_UNIT,
    SW_METRIC_TAGS,
    SW_BATCH_INSERT,
    SW_SAMPLE_INSERT,
    SW_ACK_GET,
    SW_ACK_SET,
    SW_SEQS_AFTER,
    SW_CLOCK_GET,
    SW_CLOCK_SET,
    SW_UNSYNCED_SAMPLES,
    SW_SAMPLE_TIME,
    SW_UNSYNCED_DONE,
    SW_STREAM_GET,
    SW_STREAM_CURRENT,
    SW_STREAM_INSERT,
    SW_STREAM_MAKE_CURRENT,
    SW_QUARANTINE,
    SW_BATCH_SAMPLES,
    SW_DICT_PUT,
    SW_DICT_GET,
    SW_COUNT
};

/* The reader's cached statements (SQL in store_sqlite_reader.c). */
enum store_reader_stmt {
    SR_DEVICES,
    SR_DEVICES_V3,
    SR_METRICS,
    SR_QUERY,
    SR_AFTER,
    SR_LAST_ID,
    SR_QUARANTINED,
    SR_METRIC_LIST,     /* the web view's reads: store_sqlite_view.c */
    SR_SERIES,
    SR_COUNTS_BY_TIME,
    SR_COUNTS_BY_ID,
    SR_COUNT
};

/* The config part's cached statements (SQL in store_sqlite_config.c). */
enum store_config_stmt {
    SC_DESIRED_TOP,
    SC_DESIRED_ADD,
    SC_DESIRED_GET,
    SC_DESIRED_LATEST,
    SC_DESIRED_AFTER,
    SC_DEVICE_SET,
    SC_DEVICES,
    SC_DEVICE_ONE,
    SC_GROUP_MEMBERS,
    SC_SAVEPOINT,
    SC_RELEASE,
    SC_ROLLBACK_TO,
    SC_HISTORY_ADD,
    SC_HISTORY_TRIM,
    SC_REPORT_SET,
    SC_HISTORY,
    SC_COUNT
};

struct store_sqlite {
    struct et_store base;       /* first: the front end casts to it */
    struct et_store_writer writer;
    struct et_store_reader reader;
    struct et_store_config config;
    sqlite3 *db;
    bool readonly;
    bool in_tx;
    int64_t version;            /* of the schema (a read-only handle may read older ones) */
    sqlite3_stmt *writer_stmts[SW_COUNT];
    sqlite3_stmt *reader_stmts[SR_COUNT];
    sqlite3_stmt *config_stmts[SC_COUNT];
    char last_error[256];       /* the last failure, "what: SQLite's message" */
    /* The metrics and devices the writer knows: kept across transactions,
     * cleared when one rolls back (store_metric_cache.c). */
    struct store_metric_cache metric_cache;
};

extern const struct et_store_writer_ops store_sqlite_writer_ops;
extern const struct et_store_reader_ops store_sqlite_reader_ops;
extern const struct et_store_config_ops store_sqlite_config_ops;
extern const struct et_store_copy_ops store_sqlite_copy_ops;

/* A row of id, device, name, unit, samples, first and last ts, tags into an
 * et_store_metric for rows->cb.metric (store_sqlite_reader.c). */
int store_sqlite_metric_row(void *ctx, sqlite3_stmt *st);

/* The reader's calls for the web view (store_sqlite_view.c), in its ops table. */
int store_sqlite_metric_list(struct et_store_reader *r, const char *device,
                             et_store_metric_cb cb, void *ctx);
int store_sqlite_series(struct et_store_reader *r, const struct et_store_series_query *q,
                        et_store_bucket_cb cb, void *ctx);
int store_sqlite_device_counts(struct et_store_reader *r, int64_t since_ms, int64_t after_id,
                               int64_t through_id, et_store_count_cb cb, void *ctx);

/*
 * One value for a statement's next parameter. Built with the STORE_* macros
 * below, which check each value's C type as a struct initialiser does, so
 * a call reads as its SQL's parameters in order:
 *     STORE_ARGS(STORE_TEXT(device), STORE_U64(acked_through))
 */
struct store_arg {
    enum { STORE_ARG_NULL, STORE_ARG_TEXT, STORE_ARG_INT, STORE_ARG_REAL, STORE_ARG_BLOB } type;
    union {
        const char *text;
        int64_t i;
        double real;
        struct {
            const void *p;
            size_t n;
        } blob;
    } v;
};

#define STORE_NULL ((struct store_arg){ .type = STORE_ARG_NULL })
/* Text; NULL binds as "" (the columns are NOT NULL '' when unknown). */
#define STORE_TEXT(s) ((struct store_arg){ .type = STORE_ARG_TEXT, .v.text = (s) })
#define STORE_INT(x) ((struct store_arg){ .type = STORE_ARG_INT, .v.i = (x) })
/* An unsigned counter or seq, clamped to the signed column (et_sqlite_u64_arg). */
#define STORE_U64(x) STORE_INT(et_sqlite_u64_arg(x))
#define STORE_REAL(x) ((struct store_arg){ .type = STORE_ARG_REAL, .v.real = (x) })
/* n bytes at p (never NULL: the blob columns are NOT NULL). */
#define STORE_BLOB(p_, n_) \
    ((struct store_arg){ .type = STORE_ARG_BLOB, .v.blob = { .p = (p_), .n = (n_) } })
/* The array and its length, for the args and n parameters below. */
#define STORE_ARGS(...) (const struct store_arg[]){ __VA_ARGS__ }, \
    sizeof((const struct store_arg[]){ __VA_ARGS__ }) / sizeof(struct store_arg)

/*
 * The statement for sql, prepared once into *slot and kept, reset and
 * bound to the n args (parameters ?1..?n). 0 or -errno (logged).
 */
int store_sqlite_stmt(struct store_sqlite *ss, sqlite3_stmt **slot, const char *sql,
                      const struct store_arg *args, size_t n, sqlite3_stmt **out);

/*
 * Rows for a caller's callback (store.h): which callback, its context, and
 * whether it was the callback that stopped the rows, so that its value is
 * told from a failure of the database.
 */
struct store_rows {
    union {
        et_store_device_cb device;
        et_store_metric_cb metric;
        et_store_sample_cb sample;
        et_store_desired_cb desired;
        et_store_device_config_cb device_config;
        et_store_config_report_cb report;
        et_store_quarantined_cb quarantined;
        et_store_bucket_cb bucket;
        et_store_count_cb count;
    } cb;
    void *ctx;
    bool stopped;
};

/* A row function's end: note the callback's value ret as its own stop, hand it on. */
static inline int store_rows_cb(struct store_rows *rows, int ret)
{
    rows->stopped = ret != 0;
    return ret;
}

/*
 * Step st through its rows with fn, which ends with store_rows_cb(). A
 * callback's stop comes back as its value; a failure of the database is
 * logged as what.
 */
int store_sqlite_rows(struct store_sqlite *ss, sqlite3_stmt *st, et_sqlite_row_fn fn,
                      struct store_rows *rows, const char *what);

/*
 * Hand on ret, a result of an et_sqlite_* call on this store, keeping the
 * database's own message as the last error when it is a failure. A
 * read-only store logs it under "store"; a writer's caller (ingest) says
 * once that the store is failing, with this message, rather than a line
 * per failed batch. -EEXIST (a key already stored) and -ENOENT (no such
 * row) are answers for the caller to judge, not failures.
 */
int store_sqlite_failed(struct store_sqlite *ss, int ret, const char *what);

#endif
