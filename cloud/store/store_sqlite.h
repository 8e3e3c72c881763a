/*
 * The SQLite store backend, shared by its three files:
 *   store_sqlite_open.c    schema, migrations, opening and closing
 *   store_sqlite_writer.c  the writer (store_writer.h)
 *   store_sqlite_reader.c  the reader (store_reader.h)
 * Private to et_store.
 */
#ifndef EDGETEL_STORE_SQLITE_H
#define EDGETEL_STORE_SQLITE_H

#include <stdbool.h>
#include <stddef.h>

#include <sqlite3.h>

#include "backend.h"

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
    SW_COUNT
};

/* The reader's cached statements (SQL in store_sqlite_reader.c). */
enum store_reader_stmt {
    SR_DEVICES,
    SR_METRICS,
    SR_QUERY,
    SR_AFTER,
    SR_LAST_ID,
    SR_COUNT
};

struct store_sqlite {
    struct et_store base;       /* first: the front end casts to it */
    struct et_store_writer writer;
    struct et_store_reader reader;
    sqlite3 *db;
    bool readonly;
    bool in_tx;
    sqlite3_stmt *writer_stmts[SW_COUNT];
    sqlite3_stmt *reader_stmts[SR_COUNT];
};

extern const struct et_store_writer_ops store_sqlite_writer_ops;
extern const struct et_store_reader_ops store_sqlite_reader_ops;

/*
 * The statement for sql, prepared once into *slot and kept; reset, with
 * no bindings. 0 or -errno (logged).
 */
int store_sqlite_stmt(struct store_sqlite *ss, sqlite3_stmt **slot, const char *sql,
                      sqlite3_stmt **out);

/*
 * Hand on ret, a result of an et_sqlite_* call on this store, logging the
 * database's own message under "store" when it is a failure. -EEXIST (a
 * key already stored) and -ENOENT (no such row) are answers for the
 * caller to judge, not failures, and are not logged.
 */
int store_sqlite_failed(struct store_sqlite *ss, int ret, const char *what);

#endif
