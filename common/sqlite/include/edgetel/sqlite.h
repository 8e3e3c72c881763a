/*
 * What every SQLite user in edgetel shares: the agent's outbox and the
 * aggregator's SQLite store. One mapping from SQLite's result codes to
 * -errno, one loop over a statement's rows, one way to open a database
 * (extended result codes on, a busy timeout so two writers wait for each
 * other instead of failing at once).
 *
 * Result codes: the functions that return int return 0 or -errno, mapped
 * by et_sqlite_errno(); the SQLite code itself stays readable with
 * sqlite3_extended_errcode() on the handle, for callers that must tell a
 * damaged file (et_sqlite_damaged()) from a full disk.
 */
#ifndef EDGETEL_SQLITE_H
#define EDGETEL_SQLITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

/**
 * Map an SQLite result code to 0 or -errno:
 *   OK, ROW, DONE                     0
 *   FULL; IOERR from ENOSPC/EDQUOT/EFBIG -ENOSPC
 *   CONSTRAINT_PRIMARYKEY, _UNIQUE    -EEXIST (callers decide if it is an error)
 *   other CONSTRAINT                  -EINVAL
 *   BUSY, LOCKED                      -EBUSY
 *   READONLY                          -EROFS
 *   NOMEM                             -ENOMEM
 *   PERM, AUTH                        -EACCES
 *   TOOBIG                            -EFBIG
 *   CANTOPEN                          -EACCES
 *   anything else                     -EIO
 * db (may be NULL) supplies the system errno behind an IOERR. SQLite
 * records that errno for an I/O error inside a statement (a cache spill),
 * not for one at COMMIT, and keeps it until the next: so a write refused
 * by a disk quota at COMMIT reads as -EIO. A full disk is SQLITE_FULL
 * wherever it happens, and reads as -ENOSPC.
 */
int et_sqlite_errno(sqlite3 *db, int rc);

/** Whether rc says the file itself is damaged (corrupt, or not a database). */
bool et_sqlite_damaged(int rc);

/**
 * Open path with flags (SQLITE_OPEN_*), extended result codes on and a busy
 * timeout of busy_ms. On failure *db is closed and NULL, and err (may be
 * NULL) gets SQLite's reason without the path.
 * @return an SQLite result code (SQLITE_OK on success).
 */
int et_sqlite_open(const char *path, int flags, int busy_ms, sqlite3 **db, char *err,
                   size_t errlen);

/**
 * For a process that must stay small (the agent): SQLite allocates page
 * cache one page at a time instead of a bulk of pages per connection at
 * its first transaction, keeps a small lookaside per connection, and
 * counts no memory statistics (a mutex around every allocation). SQLite
 * takes this only before its first use in the process: call it first
 * thing in main(), never from a library.
 * @return 0, or -EBUSY when SQLite was already in use.
 */
int et_sqlite_small_footprint(void);

/**
 * Called for each row by et_sqlite_each_row(): return 0 to go on, anything
 * else to stop (et_sqlite_each_row() then returns that value).
 */
typedef int (*et_sqlite_row_fn)(void *ctx, sqlite3_stmt *row);

/**
 * Step st through all its rows, hand each to fn (NULL: just run it), then
 * reset st so its cached form is ready again (bindings are kept).
 * @return 0 at the end of the rows, fn's value when it stopped early, or
 *         -errno when a step failed.
 */
int et_sqlite_each_row(sqlite3_stmt *st, et_sqlite_row_fn fn, void *ctx);

/** Run a statement that returns no rows (or whose rows do not matter): 0 or -errno. */
int et_sqlite_run(sqlite3_stmt *st);

/**
 * Read the first row of st with fn, then reset st (bindings are kept).
 * @return fn's value when a row was read (0 when fn succeeded), -ENOENT
 *         when there was none, -errno when the step failed. A callback
 *         that can fail should return a code that cannot be taken for
 *         those (for instance -ENOMEM), or say so through ctx.
 */
int et_sqlite_one_row(sqlite3_stmt *st, et_sqlite_row_fn fn, void *ctx);

/**
 * The integer in the first column of the first row of sql ("PRAGMA
 * user_version", "SELECT COUNT(*) ..."), prepared and finalized here.
 * @return an SQLite result code (SQLITE_OK when *out was set).
 */
int et_sqlite_int(sqlite3 *db, const char *sql, int64_t *out);

/**
 * The text in the first column of the first row of sql ("PRAGMA
 * journal_mode=WAL", "PRAGMA quick_check"), copied into out (truncated to
 * outlen - 1 bytes; NULL reads as ""), prepared and finalized here.
 * @return an SQLite result code (SQLITE_OK when out was set, SQLITE_EMPTY
 *         when sql returned no row).
 */
int et_sqlite_text(sqlite3 *db, const char *sql, char *out, size_t outlen);

/** A column as unsigned: negative values (never written by edgetel) read as 0. */
uint64_t et_sqlite_col_u64(sqlite3_stmt *st, int col);

/** A column as text: "" for NULL. Valid until the next step or reset of st. */
const char *et_sqlite_col_text(sqlite3_stmt *st, int col);

/**
 * An unsigned counter or seq as SQLite's signed 64-bit integer, clamped to
 * INT64_MAX rather than wrapped negative.
 */
static inline sqlite3_int64 et_sqlite_u64_arg(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)v;
}

#endif
