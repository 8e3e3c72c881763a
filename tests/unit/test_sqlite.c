/*
 * The shared SQLite helper (edgetel/sqlite.h): the mapping of result codes
 * to -errno, from the table and from real failures (constraints, a busy
 * database, a read-only handle, a full database, a write the file size
 * limit refuses); the row loops (stopping early, no rows, statements
 * reusable afterwards); opening; the one-value queries and column readers.
 * Each test works in a fresh temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "edgetel/sqlite.h"

#define OPEN_RW (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX)

struct fixture {
    char dir[64];
    char path[128];
    sqlite3 *db;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/et-sqlite-XXXXXX");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    snprintf(fx->path, sizeof(fx->path), "%s/test.db", fx->dir);
    if (et_sqlite_open(fx->path, OPEN_RW, 0, &fx->db, NULL, 0) != SQLITE_OK) {
        rmdir(fx->dir);
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    static const char *const suffixes[] = { "", "-journal", "-wal", "-shm", ".garbage" };
    struct fixture *fx = *state;
    char p[256];

    sqlite3_close(fx->db);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(p, sizeof(p), "%s%s", fx->path, suffixes[i]);
        unlink(p);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("prepare \"%s\": %s", sql, sqlite3_errmsg(db));
    return st;
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        fail_msg("\"%s\": %s", sql, sqlite3_errmsg(db));
}

/* Run sql once through et_sqlite_run(). */
static int run(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = prepare(db, sql);
    int ret = et_sqlite_run(st);

    sqlite3_finalize(st);
    return ret;
}

/* ---- the mapping ---------------------------------------------------------- */

static void test_errno_table(void **state)
{
    static const struct {
        int rc, want;
    } table[] = {
        { SQLITE_OK, 0 },
        { SQLITE_ROW, 0 },
        { SQLITE_DONE, 0 },
        { SQLITE_FULL, -ENOSPC },
        { SQLITE_IOERR, -EIO },             /* no handle: no system errno to look at */
        { SQLITE_IOERR_WRITE, -EIO },
        { SQLITE_IOERR_FSYNC, -EIO },
        { SQLITE_CONSTRAINT_PRIMARYKEY, -EEXIST },
        { SQLITE_CONSTRAINT_UNIQUE, -EEXIST },
        { SQLITE_CONSTRAINT, -EINVAL },
        { SQLITE_CONSTRAINT_NOTNULL, -EINVAL },
        { SQLITE_CONSTRAINT_CHECK, -EINVAL },
        { SQLITE_CONSTRAINT_FOREIGNKEY, -EINVAL },
        { SQLITE_BUSY, -EBUSY },
        { SQLITE_BUSY_SNAPSHOT, -EBUSY },
        { SQLITE_LOCKED, -EBUSY },
        { SQLITE_READONLY, -EROFS },
        { SQLITE_READONLY_DBMOVED, -EROFS },
        { SQLITE_NOMEM, -ENOMEM },
        { SQLITE_PERM, -EACCES },
        { SQLITE_AUTH, -EACCES },
        { SQLITE_CANTOPEN, -EACCES },
        { SQLITE_TOOBIG, -EFBIG },
        { SQLITE_CORRUPT, -EIO },
        { SQLITE_NOTADB, -EIO },
        { SQLITE_ERROR, -EIO },
        { SQLITE_MISMATCH, -EIO },
        { SQLITE_PROTOCOL, -EIO },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        int got = et_sqlite_errno(NULL, table[i].rc);

        if (got != table[i].want)
            fail_msg("code %d (%s): %d, want %d", table[i].rc, sqlite3_errstr(table[i].rc), got,
                     table[i].want);
    }
    assert_true(et_sqlite_damaged(SQLITE_CORRUPT));
    assert_true(et_sqlite_damaged(SQLITE_CORRUPT_VTAB));
    assert_true(et_sqlite_damaged(SQLITE_NOTADB));
    assert_false(et_sqlite_damaged(SQLITE_IOERR));
    assert_false(et_sqlite_damaged(SQLITE_CANTOPEN));
    assert_false(et_sqlite_damaged(SQLITE_BUSY));
    assert_false(et_sqlite_damaged(SQLITE_OK));
}

/*
 * Constraint failures from real statements: a repeated key (rowid, a
 * declared primary key, WITHOUT ROWID, UNIQUE) is -EEXIST, which callers
 * may take as "already there"; any other constraint is -EINVAL.
 */
static void test_constraints(void **state)
{
    struct fixture *fx = *state;

    exec_ok(fx->db, "CREATE TABLE t(id INTEGER PRIMARY KEY, u TEXT UNIQUE,"
                    " n INTEGER NOT NULL CHECK (n >= 0));"
                    "CREATE TABLE w(k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID;"
                    "INSERT INTO t VALUES(1, 'a', 1);"
                    "INSERT INTO w VALUES('x', 1);");
    assert_int_equal(run(fx->db, "INSERT INTO t VALUES(1, 'b', 1)"), -EEXIST);
    assert_int_equal(sqlite3_extended_errcode(fx->db), SQLITE_CONSTRAINT_PRIMARYKEY);
    assert_int_equal(run(fx->db, "INSERT INTO w VALUES('x', 2)"), -EEXIST);
    assert_int_equal(run(fx->db, "INSERT INTO t VALUES(2, 'a', 1)"), -EEXIST);
    assert_int_equal(sqlite3_extended_errcode(fx->db), SQLITE_CONSTRAINT_UNIQUE);
    assert_int_equal(run(fx->db, "INSERT INTO t VALUES(3, 'c', NULL)"), -EINVAL);
    assert_int_equal(sqlite3_extended_errcode(fx->db), SQLITE_CONSTRAINT_NOTNULL);
    assert_int_equal(run(fx->db, "INSERT INTO t VALUES(4, 'd', -1)"), -EINVAL);
    assert_int_equal(sqlite3_extended_errcode(fx->db), SQLITE_CONSTRAINT_CHECK);
    assert_int_equal(run(fx->db, "INSERT INTO t VALUES(5, 'e', 5)"), 0);
}

/* A writer holds the lock: the second handle waits its busy timeout, then -EBUSY. */
static void test_busy(void **state)
{
    struct fixture *fx = *state;
    struct timespec t0, t1;
    sqlite3 *other = NULL;
    int64_t waited_ms;

    exec_ok(fx->db, "CREATE TABLE t(x)");
    assert_int_equal(et_sqlite_open(fx->path, OPEN_RW, 100, &other, NULL, 0), SQLITE_OK);
    exec_ok(fx->db, "BEGIN IMMEDIATE");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(run(other, "BEGIN IMMEDIATE"), -EBUSY);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    waited_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(waited_ms >= 90);
    exec_ok(fx->db, "COMMIT");
    assert_int_equal(run(other, "BEGIN IMMEDIATE"), 0);
    assert_int_equal(run(other, "COMMIT"), 0);
    sqlite3_close(other);
}

static void test_readonly(void **state)
{
    struct fixture *fx = *state;
    sqlite3 *ro = NULL;

    exec_ok(fx->db, "CREATE TABLE t(x)");
    assert_int_equal(et_sqlite_open(fx->path, SQLITE_OPEN_READONLY, 0, &ro, NULL, 0), SQLITE_OK);
    assert_int_equal(run(ro, "INSERT INTO t VALUES(1)"), -EROFS);
    sqlite3_close(ro);
}

/* The database may not grow (PRAGMA max_page_count): SQLITE_FULL, -ENOSPC. */
static void test_full(void **state)
{
    struct fixture *fx = *state;
    sqlite3_stmt *st;
    int ret = 0;

    exec_ok(fx->db, "CREATE TABLE t(b BLOB); PRAGMA max_page_count=8");
    st = prepare(fx->db, "INSERT INTO t VALUES(zeroblob(4096))");
    for (int i = 0; i < 20 && ret == 0; i++)
        ret = et_sqlite_run(st);
    assert_int_equal(ret, -ENOSPC);
    assert_int_equal(sqlite3_extended_errcode(fx->db), SQLITE_FULL);
    sqlite3_finalize(st);
}

/*
 * What xGetLastError reports for the registered copy of the default VFS:
 * the system errno SQLite records behind an IOERR. 0: the default's answer.
 */
static struct {
    sqlite3_vfs vfs;
    sqlite3_vfs *orig;
    int planted;
} errvfs;

static int errvfs_last_error(sqlite3_vfs *vfs, int n, char *buf)
{
    (void)vfs;
    return errvfs.planted ? errvfs.planted : errvfs.orig->xGetLastError(errvfs.orig, n, buf);
}

/*
 * Make one write fail with an I/O error and map it. The write is refused
 * by the file size limit (EFBIG), and it happens inside the statement (a
 * tiny cache spills the transaction's pages into the WAL): SQLite records
 * the system errno only for errors inside a statement, not at COMMIT.
 * @return what et_sqlite_run() said.
 */
static int failing_write(const struct fixture *fx, int planted)
{
    char uri[256];
    struct rlimit saved, lim;
    sqlite3_stmt *st;
    sqlite3 *db = NULL;
    void (*old_handler)(int);
    int ret;

    errvfs.planted = planted;
    snprintf(uri, sizeof(uri), "file:%s?vfs=et-errno", fx->path);
    assert_int_equal(et_sqlite_open(uri, OPEN_RW | SQLITE_OPEN_URI, 0, &db, NULL, 0), SQLITE_OK);
    exec_ok(db, "PRAGMA journal_mode=WAL; PRAGMA cache_size=2;"
                "CREATE TABLE IF NOT EXISTS t(b BLOB); BEGIN");
    st = prepare(db, "INSERT INTO t VALUES(zeroblob(200000))");

    old_handler = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    lim = saved;
    lim.rlim_cur = 65536;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ret = et_sqlite_run(st);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, old_handler);

    assert_int_equal(sqlite3_extended_errcode(db) & 0xff, SQLITE_IOERR);
    if (!planted)
        assert_int_equal(sqlite3_system_errno(db), EFBIG);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ret;
}

/* An IOERR with a full disk or quota behind it is -ENOSPC; any other is -EIO. */
static void test_ioerr_system_errno(void **state)
{
    struct fixture *fx = *state;

    errvfs.orig = sqlite3_vfs_find(NULL);
    assert_non_null(errvfs.orig);
    errvfs.vfs = *errvfs.orig;
    errvfs.vfs.zName = "et-errno";
    errvfs.vfs.xGetLastError = errvfs_last_error;
    errvfs.vfs.pNext = NULL;
    assert_int_equal(sqlite3_vfs_register(&errvfs.vfs, 0), SQLITE_OK);

    assert_int_equal(failing_write(fx, 0), -ENOSPC);       /* a real EFBIG */
    assert_int_equal(failing_write(fx, ENOSPC), -ENOSPC);
    assert_int_equal(failing_write(fx, EDQUOT), -ENOSPC);
    assert_int_equal(failing_write(fx, EIO), -EIO);

    assert_int_equal(sqlite3_vfs_unregister(&errvfs.vfs), SQLITE_OK);
}

/* ---- row loops -------------------------------------------------------------- */

struct counter {
    int rows;
    int64_t sum;
    int stop_at;        /* return 42 at this row (1-based); 0: never */
};

static int count_row(void *ctx, sqlite3_stmt *row)
{
    struct counter *c = ctx;

    c->rows++;
    c->sum += sqlite3_column_int64(row, 0);
    return c->rows == c->stop_at ? 42 : 0;
}

static void test_each_row(void **state)
{
    struct fixture *fx = *state;
    struct counter c = { 0 };
    sqlite3_stmt *st;

    exec_ok(fx->db, "CREATE TABLE t(x); INSERT INTO t VALUES(1),(2),(3),(4),(5)");
    st = prepare(fx->db, "SELECT x FROM t WHERE x >= ?1 ORDER BY x");
    sqlite3_bind_int(st, 1, 2);

    assert_int_equal(et_sqlite_each_row(st, count_row, &c), 0);
    assert_int_equal(c.rows, 4);
    assert_int_equal(c.sum, 2 + 3 + 4 + 5);

    /* Stopped early: the callback's value, and the statement starts over. */
    c = (struct counter){ .stop_at = 2 };
    assert_int_equal(et_sqlite_each_row(st, count_row, &c), 42);
    assert_int_equal(c.rows, 2);
    assert_int_equal(c.sum, 2 + 3);
    c = (struct counter){ 0 };
    assert_int_equal(et_sqlite_each_row(st, count_row, &c), 0);
    assert_int_equal(c.rows, 4);    /* the binding was kept */
    assert_int_equal(c.sum, 2 + 3 + 4 + 5);

    /* No callback: just run it. */
    assert_int_equal(et_sqlite_each_row(st, NULL, NULL), 0);
    sqlite3_finalize(st);
}

/* A step that fails returns -errno and leaves the statement reusable. */
static void test_run_after_error(void **state)
{
    struct fixture *fx = *state;
    sqlite3_stmt *st;
    int64_t n = 0;

    exec_ok(fx->db, "CREATE TABLE t(id INTEGER PRIMARY KEY)");
    st = prepare(fx->db, "INSERT INTO t VALUES(?1)");
    sqlite3_bind_int(st, 1, 7);
    assert_int_equal(et_sqlite_run(st), 0);
    assert_int_equal(et_sqlite_run(st), -EEXIST);
    sqlite3_bind_int(st, 1, 8);
    assert_int_equal(et_sqlite_run(st), 0);
    sqlite3_finalize(st);
    assert_int_equal(et_sqlite_int(fx->db, "SELECT count(*) FROM t", &n), SQLITE_OK);
    assert_int_equal(n, 2);
}

static int read_first(void *ctx, sqlite3_stmt *row)
{
    *(int64_t *)ctx = sqlite3_column_int64(row, 0);
    return 0;
}

static int refuse_row(void *ctx, sqlite3_stmt *row)
{
    (void)ctx;
    (void)row;
    return -ENOMEM;
}

static void test_one_row(void **state)
{
    struct fixture *fx = *state;
    sqlite3_stmt *st;
    int64_t v = -1;

    exec_ok(fx->db, "CREATE TABLE t(x); INSERT INTO t VALUES(10),(20)");
    st = prepare(fx->db, "SELECT x FROM t WHERE x > ?1 ORDER BY x");

    sqlite3_bind_int(st, 1, 99);
    assert_int_equal(et_sqlite_one_row(st, read_first, &v), -ENOENT);
    assert_int_equal(v, -1);        /* the callback was not called */

    sqlite3_bind_int(st, 1, 0);
    assert_int_equal(et_sqlite_one_row(st, read_first, &v), 0);
    assert_int_equal(v, 10);
    /* Reset after the first row: the next call reads it again. */
    v = -1;
    assert_int_equal(et_sqlite_one_row(st, read_first, &v), 0);
    assert_int_equal(v, 10);

    /* The callback's failure is returned as it is. */
    assert_int_equal(et_sqlite_one_row(st, refuse_row, NULL), -ENOMEM);
    assert_int_equal(et_sqlite_one_row(st, read_first, &v), 0);
    sqlite3_finalize(st);
}

/* ---- opening, one-value queries, columns ------------------------------------ */

static void test_open(void **state)
{
    struct fixture *fx = *state;
    char path[256], err[128] = "";
    sqlite3 *db = (sqlite3 *)fx;    /* must come back NULL */
    sqlite3_stmt *st;
    int rc;

    snprintf(path, sizeof(path), "%s/missing/test.db", fx->dir);
    rc = et_sqlite_open(path, OPEN_RW, 0, &db, err, sizeof(err));
    assert_int_equal(rc, SQLITE_CANTOPEN);
    assert_null(db);
    assert_true(err[0] != '\0');
    assert_null(strstr(err, path));
    assert_int_equal(et_sqlite_errno(NULL, rc), -EACCES);

    /* Extended result codes are on: the step itself says which constraint. */
    exec_ok(fx->db, "CREATE TABLE t(id INTEGER PRIMARY KEY); INSERT INTO t VALUES(1)");
    st = prepare(fx->db, "INSERT INTO t VALUES(1)");
    assert_int_equal(sqlite3_step(st), SQLITE_CONSTRAINT_PRIMARYKEY);
    sqlite3_finalize(st);
}

/* A file that is not a database: the first read says so, and that is damage. */
static void test_not_a_database(void **state)
{
    struct fixture *fx = *state;
    char path[256], text[32];
    sqlite3 *db = NULL;
    FILE *f;
    int rc;

    snprintf(path, sizeof(path), "%s.garbage", fx->path);   /* removed by teardown */
    f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 4096; i++)
        fputc(0xA5, f);
    fclose(f);
    assert_int_equal(et_sqlite_open(path, OPEN_RW, 0, &db, NULL, 0), SQLITE_OK);
    rc = et_sqlite_text(db, "PRAGMA journal_mode=WAL", text, sizeof(text));
    assert_int_equal(rc, SQLITE_NOTADB);
    assert_true(et_sqlite_damaged(rc));
    sqlite3_close(db);
}

static void test_int_and_text(void **state)
{
    struct fixture *fx = *state;
    char text[16];
    int64_t v = 0;

    exec_ok(fx->db, "PRAGMA user_version=7");
    assert_int_equal(et_sqlite_int(fx->db, "PRAGMA user_version", &v), SQLITE_OK);
    assert_int_equal(v, 7);
    assert_int_equal(et_sqlite_int(fx->db, "SELECT 1 WHERE 0", &v), SQLITE_EMPTY);
    assert_int_equal(v, 7);
    assert_int_equal(et_sqlite_int(fx->db, "SELECT FROM", &v), SQLITE_ERROR);

    assert_int_equal(et_sqlite_text(fx->db, "PRAGMA journal_mode=WAL", text, sizeof(text)),
                     SQLITE_OK);
    assert_string_equal(text, "wal");
    assert_int_equal(et_sqlite_text(fx->db, "SELECT 'hello'", text, 3), SQLITE_OK);
    assert_string_equal(text, "he");
    assert_int_equal(et_sqlite_text(fx->db, "SELECT NULL", text, sizeof(text)), SQLITE_OK);
    assert_string_equal(text, "");
    assert_int_equal(et_sqlite_text(fx->db, "SELECT 1 WHERE 0", text, sizeof(text)),
                     SQLITE_EMPTY);
}

struct columns {
    uint64_t neg, big;
    char text[8], null[8];
};

static int read_columns(void *ctx, sqlite3_stmt *row)
{
    struct columns *c = ctx;

    c->neg = et_sqlite_col_u64(row, 0);
    c->big = et_sqlite_col_u64(row, 1);
    snprintf(c->text, sizeof(c->text), "%s", et_sqlite_col_text(row, 2));
    snprintf(c->null, sizeof(c->null), "%s", et_sqlite_col_text(row, 3));
    return 0;
}

static void test_columns_and_args(void **state)
{
    struct fixture *fx = *state;
    struct columns c = { 1, 0, "?", "?" };
    sqlite3_stmt *st = prepare(fx->db, "SELECT -5, ?1, 'abc', NULL");

    sqlite3_bind_int64(st, 1, et_sqlite_u64_arg(UINT64_MAX));
    assert_int_equal(et_sqlite_one_row(st, read_columns, &c), 0);
    assert_int_equal(c.neg, 0);
    assert_true(c.big == (uint64_t)INT64_MAX);      /* clamped, not wrapped negative */
    assert_string_equal(c.text, "abc");
    assert_string_equal(c.null, "");
    sqlite3_finalize(st);
    assert_true(et_sqlite_u64_arg(5) == 5);
    assert_true(et_sqlite_u64_arg((uint64_t)INT64_MAX) == INT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errno_table),
        cmocka_unit_test_setup_teardown(test_constraints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ioerr_system_errno, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_after_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_int_and_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_columns_and_args, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
