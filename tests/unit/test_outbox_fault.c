/*
 * The outbox on a failing disk: a full database (PRAGMA max_page_count)
 * and I/O errors (a VFS that fails writes), alone and inside a group.
 * Nothing is half-stored, the counters stay right, and the same seqs go
 * in once there is room again. Each test works in a fresh temporary
 * directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>

#include <sqlite3.h>

#include "outbox_fixture.h"

/* ---- a full disk ---------------------------------------------------------------- */

static int set_max_pages(struct et_outbox *ob, int extra)
{
    sqlite3 *db = et_outbox_sqlite(ob);
    sqlite3_stmt *s;
    char sql[64];
    int pages = 0;

    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA page_count", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    pages = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count=%d", pages + extra);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    return pages;
}

static void test_disk_full(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    struct et_outbox_stats before, after;
    uint64_t seq;
    int ret = 0, stored = 0;

    for (int i = 0; i < 5; i++)
        assert_int_equal(append_n(ob, 1000, 10), 0);
    set_max_pages(ob, 2);
    for (int i = 0; i < 50 && ret == 0; i++) {
        ret = append_n(ob, 3000, 10);
        stored += ret == 0;
    }
    assert_int_equal(ret, -ENOSPC);
    assert_true(stored < 50);

    /* Nothing changed by the failed append; the handle still works. */
    seq = et_outbox_next_seq(ob);
    assert_int_equal(seq, 6 + (uint64_t)stored);
    assert_int_equal(et_outbox_stats(ob, &before), 0);
    assert_int_equal(before.batches, 5 + (uint64_t)stored);
    assert_int_equal(append_n(ob, 3000, 10), -ENOSPC);
    assert_int_equal(et_outbox_stats(ob, &after), 0);
    assert_memory_equal(&before, &after, sizeof(before));
    expect_batch(ob, 0, 1, 1000);

    /* Room again (an ack, a bigger disk): the same seq goes in. */
    set_max_pages(ob, 100);
    assert_int_equal(append_n(ob, 3000, 10), 0);
    assert_int_equal(et_outbox_next_seq(ob), seq + 1);
    expect_batch(ob, seq - 1, seq, 3000);
    et_outbox_close(ob);

    ob = open_ok(fx);
    assert_int_equal(et_outbox_next_seq(ob), seq + 1);
    assert_int_equal(et_outbox_stats(ob, &after), 0);
    assert_int_equal(after.batches, before.batches + 1);
    et_outbox_close(ob);
}

/*
 * A VFS that passes everything to the default one, except that writes fail
 * with a chosen SQLite code while faulty.fail_writes is set: an I/O error
 * of the disk, at the place SQLite meets it. Registered as the default for
 * the one test that uses it.
 */
struct faulty_file {
    sqlite3_file base;
    sqlite3_file *real;     /* the default VFS's file, right after this struct */
};

static struct {
    sqlite3_vfs vfs;
    sqlite3_vfs *orig;
    int fail_writes;        /* SQLite code to fail xWrite with, 0: pass */
} faulty;

#define REAL(f) (((struct faulty_file *)(f))->real)

static int ff_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int ff_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}
static int ff_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
    if (faulty.fail_writes)
        return faulty.fail_writes;
    return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}
static int ff_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int ff_sync(sqlite3_file *f, int flags) { return REAL(f)->pMethods->xSync(REAL(f), flags); }
static int ff_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int ff_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int ff_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int ff_check_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int ff_file_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int ff_sector_size(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int ff_device_chars(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int ff_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **out)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, out);
}
static int ff_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void ff_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int ff_shm_unmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }
static int ff_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out)
{
    return REAL(f)->pMethods->xFetch(REAL(f), off, n, out);
}
static int ff_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods ff_methods = {
    .iVersion = 3,
    .xClose = ff_close,
    .xRead = ff_read,
    .xWrite = ff_write,
    .xTruncate = ff_truncate,
    .xSync = ff_sync,
    .xFileSize = ff_file_size,
    .xLock = ff_lock,
    .xUnlock = ff_unlock,
    .xCheckReservedLock = ff_check_reserved,
    .xFileControl = ff_file_control,
    .xSectorSize = ff_sector_size,
    .xDeviceCharacteristics = ff_device_chars,
    .xShmMap = ff_shm_map,
    .xShmLock = ff_shm_lock,
    .xShmBarrier = ff_shm_barrier,
    .xShmUnmap = ff_shm_unmap,
    .xFetch = ff_fetch,
    .xUnfetch = ff_unfetch,
};

static int fv_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags, int *out)
{
    struct faulty_file *ff = (struct faulty_file *)f;
    int rc;

    ff->real = (sqlite3_file *)(ff + 1);
    rc = faulty.orig->xOpen(faulty.orig, name, ff->real, flags, out);
    ff->base.pMethods = rc == SQLITE_OK && ff->real->pMethods ? &ff_methods : NULL;
    return rc;
}

static void faulty_register(void)
{
    faulty.orig = sqlite3_vfs_find(NULL);
    assert_non_null(faulty.orig);
    assert_int_equal(faulty.orig->iVersion >= 2, 1);
    faulty.vfs = *faulty.orig;
    faulty.vfs.zName = "et-faulty";
    faulty.vfs.szOsFile = (int)sizeof(struct faulty_file) + faulty.orig->szOsFile;
    faulty.vfs.xOpen = fv_open;
    faulty.vfs.pNext = NULL;
    faulty.fail_writes = 0;
    assert_int_equal(sqlite3_vfs_register(&faulty.vfs, 1), SQLITE_OK);
}

static void faulty_unregister(void)
{
    faulty.fail_writes = 0;
    assert_int_equal(sqlite3_vfs_unregister(&faulty.vfs), SQLITE_OK);
    assert_int_equal(sqlite3_vfs_register(faulty.orig, 1), SQLITE_OK);
}

/*
 * I/O errors on write: -EIO, and the handle stays consistent: nothing
 * half-stored, counters right, reads still work, and everything works
 * again once the disk does. In a group the group is undone.
 */
static void test_io_error(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox_stats before, after;
    const uint64_t all[] = { 1, 2, 3, 4, 5, 6 };
    struct et_outbox *ob;
    uint64_t start;

    faulty_register();
    ob = open_ok(fx);
    for (int i = 0; i < 3; i++)
        assert_int_equal(append_n(ob, 700, 5), 0);
    assert_int_equal(et_outbox_stats(ob, &before), 0);

    faulty.fail_writes = SQLITE_IOERR_WRITE;
    assert_int_equal(append_n(ob, 700, 5), -EIO);
    assert_int_equal(et_outbox_next_seq(ob), 4);
    assert_int_equal(et_outbox_ack(ob, 1, NULL, 0), -EIO);
    assert_int_equal(et_outbox_stats(ob, &after), 0);
    assert_memory_equal(&before, &after, sizeof(before));
    expect_batch(ob, 0, 1, 700);
    faulty.fail_writes = 0;
    assert_int_equal(append_n(ob, 700, 5), 0);

    /* A group whose commit meets the error is undone as a whole. */
    start = et_outbox_next_seq(ob);
    assert_int_equal(et_outbox_stats(ob, &before), 0);
    assert_int_equal(et_outbox_begin(ob), 0);
    assert_int_equal(append_n(ob, 700, 5), 0);
    assert_int_equal(append_n(ob, 700, 5), 0);
    faulty.fail_writes = SQLITE_IOERR_WRITE;
    assert_int_equal(et_outbox_commit(ob), -EIO);
    assert_int_equal(et_outbox_next_seq(ob), start);
    assert_int_equal(et_outbox_stats(ob, &after), 0);
    assert_memory_equal(&before, &after, sizeof(before));
    faulty.fail_writes = 0;
    assert_int_equal(et_outbox_begin(ob), 0);
    assert_int_equal(append_n(ob, 700, 5), 0);
    assert_int_equal(append_n(ob, 700, 5), 0);
    assert_int_equal(et_outbox_commit(ob), 0);
    et_outbox_close(ob);

    ob = open_ok(fx);
    expect_seqs(ob, all, 6, 700);
    et_outbox_close(ob);
    faulty_unregister();
}


static void test_group_undone_on_disk_full(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    struct et_outbox_stats before, after;
    uint64_t start;
    int ret = 0;

    for (int i = 0; i < 3; i++)
        assert_int_equal(append_n(ob, 1000, 10), 0);
    assert_int_equal(et_outbox_stats(ob, &before), 0);
    start = et_outbox_next_seq(ob);
    set_max_pages(ob, 3);

    assert_int_equal(et_outbox_begin(ob), 0);
    assert_int_equal(et_outbox_ack(ob, 1, NULL, 0), 1);
    for (int i = 0; i < 50 && ret == 0; i++)
        ret = append_n(ob, 3000, 10);
    assert_int_equal(ret, -ENOSPC);

    /* The whole group is undone, the ack included, and the group closed. */
    assert_int_equal(et_outbox_next_seq(ob), start);
    assert_int_equal(et_outbox_stats(ob, &after), 0);
    assert_memory_equal(&before, &after, sizeof(before));
    assert_int_equal(et_outbox_commit(ob), -EINVAL);
    expect_batch(ob, 0, 1, 1000);

    /* The caller appends the same seqs again once there is room. */
    set_max_pages(ob, 100);
    assert_int_equal(et_outbox_begin(ob), 0);
    assert_int_equal(append_n(ob, 3000, 10), 0);
    assert_int_equal(et_outbox_commit(ob), 0);
    assert_int_equal(et_outbox_next_seq(ob), start + 1);
    et_outbox_close(ob);
}

/*
 * A blob over SQLite's length limit (lowered here to 2000 bytes) cannot be
 * bound: -EFBIG, nothing stored, and inside a group the group is undone
 * like after any failed append. (Before the shared SQLite helper the
 * unbound blob failed NOT NULL and read as -EEXIST.)
 */
static void test_blob_too_big(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    struct et_outbox_stats before, after;
    uint64_t start;

    assert_int_equal(append_n(ob, 1000, 10), 0);
    start = et_outbox_next_seq(ob);
    assert_int_equal(et_outbox_stats(ob, &before), 0);
    sqlite3_limit(et_outbox_sqlite(ob), SQLITE_LIMIT_LENGTH, 2000);

    assert_int_equal(append_n(ob, 3000, 10), -EFBIG);
    assert_int_equal(et_outbox_next_seq(ob), start);
    assert_int_equal(et_outbox_begin(ob), 0);
    assert_int_equal(append_n(ob, 1000, 10), 0);
    assert_int_equal(append_n(ob, 3000, 10), -EFBIG);
    assert_int_equal(et_outbox_next_seq(ob), start);
    assert_int_equal(et_outbox_commit(ob), -EINVAL);
    assert_int_equal(et_outbox_stats(ob, &after), 0);
    assert_memory_equal(&before, &after, sizeof(before));

    assert_int_equal(append_n(ob, 1500, 10), 0);
    assert_int_equal(et_outbox_next_seq(ob), start + 1);
    et_outbox_close(ob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_undone_on_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_too_big, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
