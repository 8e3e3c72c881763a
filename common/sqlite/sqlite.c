/*
 * The SQLite helper shared by the outbox and the SQLite store: see
 * edgetel/sqlite.h.
 */
#include "edgetel/sqlite.h"

#include <errno.h>
#include <stdio.h>

int et_sqlite_errno(sqlite3 *db, int rc)
{
    switch (rc) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
        return -EEXIST;
    default:
        break;
    }
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_IOERR: {
        int e = db ? sqlite3_system_errno(db) : 0;

        return e == ENOSPC || e == EDQUOT || e == EFBIG ? -ENOSPC : -EIO;
    }
    case SQLITE_CONSTRAINT:
        return -EINVAL;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_PERM:
    case SQLITE_AUTH:
    case SQLITE_CANTOPEN:
        return -EACCES;
    case SQLITE_TOOBIG:
        return -EFBIG;
    default:
        return -EIO;
    }
}

bool et_sqlite_damaged(int rc)
{
    return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB;
}

int et_sqlite_open(const char *path, int flags, int busy_ms, sqlite3 **db, char *err,
                   size_t errlen)
{
    int rc = sqlite3_open_v2(path, db, flags, NULL);

    if (rc != SQLITE_OK) {
        if (err && errlen)
            snprintf(err, errlen, "%s", *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
        sqlite3_close(*db);
        *db = NULL;
        return rc;
    }
    sqlite3_extended_result_codes(*db, 1);
    sqlite3_busy_timeout(*db, busy_ms);
    return SQLITE_OK;
}

/* Lookaside per connection: slots of this size, this many (SQLite's own
 * default is 1,200 bytes x 100; the agent's statements are few and small). */
#define SMALL_LOOKASIDE_SLOT 256
#define SMALL_LOOKASIDE_SLOTS 32

int et_sqlite_small_footprint(void)
{
    /* pBuf NULL, 0 pages: no bulk allocation of page cache at a
     * connection's first transaction (the outbox touches a few pages of
     * one B-tree; the bulk was 20 pages a connection, touched at once). */
    if (sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0) != SQLITE_OK ||
        sqlite3_config(SQLITE_CONFIG_LOOKASIDE, SMALL_LOOKASIDE_SLOT,
                       SMALL_LOOKASIDE_SLOTS) != SQLITE_OK ||
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK)
        return -EBUSY;
    return 0;
}

int et_sqlite_each_row(sqlite3_stmt *st, et_sqlite_row_fn fn, void *ctx)
{
    int rc, ret;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (fn && (ret = fn(ctx, st)) != 0) {
            sqlite3_reset(st);
            return ret;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : et_sqlite_errno(sqlite3_db_handle(st), rc);
}

int et_sqlite_run(sqlite3_stmt *st)
{
    return et_sqlite_each_row(st, NULL, NULL);
}

int et_sqlite_one_row(sqlite3_stmt *st, et_sqlite_row_fn fn, void *ctx)
{
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_ROW ? fn(ctx, st) : 0;

    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return ret;
    return rc == SQLITE_DONE ? -ENOENT : et_sqlite_errno(sqlite3_db_handle(st), rc);
}

/*
 * Prepare sql, hand its first row to fn, finalize: what et_sqlite_int()
 * and et_sqlite_text() share. SQLite result codes, not -errno: their
 * callers must be able to tell a damaged file (et_sqlite_damaged()).
 */
static int first_row(sqlite3 *db, const char *sql, void (*fn)(sqlite3_stmt *st, void *ctx),
                     void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            fn(st, ctx);
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            rc = SQLITE_EMPTY;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static void read_int(sqlite3_stmt *st, void *ctx)
{
    *(int64_t *)ctx = sqlite3_column_int64(st, 0);
}

int et_sqlite_int(sqlite3 *db, const char *sql, int64_t *out)
{
    return first_row(db, sql, read_int, out);
}

struct text_out {
    char *buf;
    size_t len;
};

static void read_text(sqlite3_stmt *st, void *ctx)
{
    struct text_out *t = ctx;

    snprintf(t->buf, t->len, "%s", et_sqlite_col_text(st, 0));
}

int et_sqlite_text(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
    struct text_out t = { out, outlen };

    return first_row(db, sql, read_text, &t);
}

uint64_t et_sqlite_col_u64(sqlite3_stmt *st, int col)
{
    sqlite3_int64 v = sqlite3_column_int64(st, col);

    return v < 0 ? 0 : (uint64_t)v;
}

const char *et_sqlite_col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);

    return t ? (const char *)t : "";
}
