/*
 * The write-failing VFS of the tests. See faulty_vfs.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "faulty_vfs.h"

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

void faulty_vfs_register(void)
{
    if (faulty.orig)
        faulty_vfs_unregister();    /* left registered by a test that failed */
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

void faulty_vfs_unregister(void)
{
    if (!faulty.orig)
        return;
    faulty.fail_writes = 0;
    assert_int_equal(sqlite3_vfs_unregister(&faulty.vfs), SQLITE_OK);
    assert_int_equal(sqlite3_vfs_register(faulty.orig, 1), SQLITE_OK);
    faulty.orig = NULL;
}

void faulty_vfs_fail_writes(int sqlite_code)
{
    faulty.fail_writes = sqlite_code;
}
