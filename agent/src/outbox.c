/*
 * The outbox in SQLite: one row per encoded batch, a small meta table, and
 * the PATH.seq sidecar that keeps seqs from repeating (see outbox.h).
 *
 * Schema (PRAGMA user_version = 1):
 *   batch(seq INTEGER PRIMARY KEY, created_ms, n_samples, payload BLOB)
 *   meta(key TEXT PRIMARY KEY, value INTEGER) WITHOUT ROWID
 *     'hwm'      highest seq handed out, written whenever a deletion could
 *                remove the newest batch or a seq is used up without a row
 *     'dropped'  samples evicted or refused over the data dir's life
 *
 * The counters behind et_outbox_stats() live in the handle and move with
 * every change, so stats, quota checks and oldest_seq cost no query. They
 * are read from the database once at open and again after any rollback,
 * so they never drift from what is stored.
 */
#include "edgetel/outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "edgetel/log.h"
#include "edgetel/platform.h"

#define OUTBOX_LOG "outbox"
#define OUTBOX_SCHEMA_VERSION 1

/*
 * Seqs the sidecar reserves at a time. One sidecar write (two fsyncs) per
 * block; after a crash up to one block of seqs is skipped. At one batch
 * every 5 s a block lasts over an hour; a 64-bit seq never runs out.
 */
#define OUTBOX_SEQ_BLOCK 1024

/*
 * Page cache per connection, in KiB (negative cache_size). The agent must
 * drain a backlog of a million samples in a few MB of RSS: appends and the
 * drain touch only the rightmost and leftmost leaves of one B-tree, so a
 * small cache loses nothing; a larger group spills to the WAL early, which
 * costs no extra writes because each page is written once anyway.
 */
#define OUTBOX_CACHE_KIB 1024

/* The WAL is cut back to this size after a checkpoint of a large group. */
#define OUTBOX_WAL_LIMIT 4194304   /* 4 MiB */

/* Page size of a new database (see db_open for why it is small). */
#define OUTBOX_PAGE_SIZE 1024

#define SEQ_FILE_MAGIC "edgetel-outbox-seq 1"

enum outbox_stmt {
    ST_INSERT,
    ST_NEXT,
    ST_RANGE_SUM,
    ST_DELETE_THROUGH,
    ST_ONE,
    ST_DELETE_ONE,
    ST_BOUNDS,
    ST_OLDEST,
    ST_META_GET,
    ST_META_SET,
    ST_FREELIST,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_COUNT
};

/* Prepared once at open, kept until close. */
static const char *const outbox_sql[ST_COUNT] = {
    [ST_INSERT] = "INSERT INTO batch(seq, created_ms, n_samples, payload) VALUES(?1, ?2, ?3, ?4)",
    [ST_NEXT] = "SELECT seq, payload FROM batch WHERE seq > ?1 ORDER BY seq LIMIT 1",
    /* length() of a blob reads the record header only, not the payload. */
    [ST_RANGE_SUM] = ("SELECT count(*), coalesce(sum(n_samples), 0), coalesce(sum(length(payload)), 0)"
                      " FROM batch WHERE seq <= ?1"),
    [ST_DELETE_THROUGH] = "DELETE FROM batch WHERE seq <= ?1",
    [ST_ONE] = "SELECT n_samples, length(payload) FROM batch WHERE seq = ?1",
    [ST_DELETE_ONE] = "DELETE FROM batch WHERE seq = ?1",
    /* Two subqueries: min() and max() together in one SELECT would scan. */
    [ST_BOUNDS] = "SELECT (SELECT min(seq) FROM batch), (SELECT max(seq) FROM batch)",
    [ST_OLDEST] = "SELECT seq, n_samples, length(payload) FROM batch ORDER BY seq LIMIT 1",
    [ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [ST_META_SET] = "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)",
    [ST_FREELIST] = "PRAGMA freelist_count",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
};

/*
 * Run once per open, in order. synchronous=NORMAL: in WAL mode a commit
 * then writes the WAL without fsync, and only checkpoints sync. A power cut
 * can lose the last commits but never corrupts the database or reorders
 * commits (the WAL is replayed up to the last valid frame). The loss is
 * bounded by the agent's durability window, and the seq sidecar makes sure
 * a lost seq is never handed out again. FULL would fsync every commit: on
 * an SD card that is wear and latency for no gain in what can be lost.
 * secure_delete=FAST: acknowledged telemetry is not secret, and zeroing
 * freed pages would write them once more.
 */
#define OUTBOX_STR_(x) #x
#define OUTBOX_STR(x) OUTBOX_STR_(x)
static const char *const outbox_pragmas[] = {
    "PRAGMA synchronous=NORMAL",
    "PRAGMA cache_size=-" OUTBOX_STR(OUTBOX_CACHE_KIB),
    "PRAGMA secure_delete=FAST",
    "PRAGMA journal_size_limit=" OUTBOX_STR(OUTBOX_WAL_LIMIT),
    "PRAGMA foreign_keys=OFF",
};

static const char outbox_schema[] =
    "CREATE TABLE IF NOT EXISTS batch("
    " seq INTEGER PRIMARY KEY,"
    " created_ms INTEGER NOT NULL,"
    " n_samples INTEGER NOT NULL,"
    " payload BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS meta("
    " key TEXT PRIMARY KEY,"
    " value INTEGER NOT NULL) WITHOUT ROWID;";

struct et_outbox {
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT];
    char *path;
    char *seq_path;         /* PATH.seq */
    char *dir;              /* directory of PATH, fsynced after renames */
    int lock_fd;            /* PATH.lock, flock()ed for the handle's life */

    uint64_t next_seq;
    uint64_t reserved;      /* PATH.seq durably says no seq above this was used */
    bool seq_armed;         /* the sidecar no longer says "clean" */
    uint64_t seq_high;      /* highest seq used in this session, undone or not */

    /* Mirror of the database. */
    uint64_t batches, samples, bytes;
    uint64_t oldest, newest;
    uint64_t dropped;
    uint64_t db_hwm;        /* max(meta hwm, max(seq)) at the last reload */

    bool in_group;
    uint64_t group_seq;     /* next_seq when the group began */

    struct et_outbox_limits lim;
    bool evicting;          /* inside an eviction episode (logged once) */
    uint64_t episode_dropped;
    uint64_t page_size;
};

/* ---- small helpers ---------------------------------------------------- */

static int outbox_errno(sqlite3 *db, int rc)
{
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
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_TOOBIG:
        return -EFBIG;
    case SQLITE_CONSTRAINT:
        return -EEXIST;
    default:
        return -EIO;
    }
}

static bool outbox_rc_damaged(int rc)
{
    return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB;
}

/* Step a statement to its end and reset it; SQLITE_OK or the error. */
static int stmt_run(sqlite3_stmt *s)
{
    int rc;

    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        ;
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* seqs are stored as SQLite's signed 64-bit integers. */
static sqlite3_int64 seq_arg(uint64_t seq)
{
    return seq > (uint64_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)seq;
}

static uint64_t col_u64(sqlite3_stmt *s, int col)
{
    sqlite3_int64 v = sqlite3_column_int64(s, col);

    return v < 0 ? 0 : (uint64_t)v;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int ret = 0;

    if (fd < 0)
        return -errno;
    if (fsync(fd) < 0)
        ret = -errno;
    close(fd);
    return ret;
}

static char *str_cat(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *out = malloc(na + nb + 1);

    if (out) {
        memcpy(out, a, na);
        memcpy(out + na, b, nb + 1);
    }
    return out;
}

/* ---- the seq sidecar -------------------------------------------------- */

struct seq_file {
    bool present;
    uint64_t reserved;
    bool clean;
    uint64_t clean_hwm;
};

/*
 * Read PATH.seq. A missing file is no error (first start). A file that
 * cannot be parsed is reported and treated as missing: the database's own
 * mark is then all there is.
 */
static void seq_file_read(const struct et_outbox *ob, struct seq_file *sf)
{
    char buf[256];
    unsigned long long reserved, clean;
    int used = 0, used2 = 0;
    ssize_t n;
    int fd;

    memset(sf, 0, sizeof(*sf));
    fd = open(ob->seq_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            et_warn(OUTBOX_LOG, "%s: cannot read: %s; seqs continue from the database alone",
                    ob->seq_path, strerror(errno));
        return;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0) {
        et_warn(OUTBOX_LOG, "%s: cannot read: %s; seqs continue from the database alone",
                ob->seq_path, strerror(errno));
        return;
    }
    buf[n] = '\0';
    if (sscanf(buf, SEQ_FILE_MAGIC "\nreserved %llu\n%n", &reserved, &used) != 1 || used == 0)
        goto garbage;
    sf->reserved = reserved;
    if (buf[used] != '\0') {
        if (sscanf(buf + used, "clean %llu\n%n", &clean, &used2) != 1 || used2 == 0 ||
            buf[used + used2] != '\0')
            goto garbage;
        sf->clean = true;
        sf->clean_hwm = clean;
    }
    sf->present = true;
    return;
garbage:
    et_warn(OUTBOX_LOG, "%s: not a seq reservation file; seqs continue from the database alone",
            ob->seq_path);
    memset(sf, 0, sizeof(*sf));
}

/* Replace PATH.seq atomically: a new file, fsync, rename, fsync the directory. */
static int seq_file_write(const struct et_outbox *ob, uint64_t reserved, bool clean,
                          uint64_t clean_hwm)
{
    char buf[128];
    char *tmp;
    int len, fd, ret = 0;
    ssize_t n;

    len = clean ? snprintf(buf, sizeof(buf), SEQ_FILE_MAGIC "\nreserved %" PRIu64 "\nclean %" PRIu64 "\n",
                           reserved, clean_hwm)
                : snprintf(buf, sizeof(buf), SEQ_FILE_MAGIC "\nreserved %" PRIu64 "\n", reserved);
    tmp = str_cat(ob->seq_path, ".tmp");
    if (!tmp)
        return -ENOMEM;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        ret = -errno;
        goto out_free;
    }
    do {
        n = write(fd, buf, (size_t)len);
    } while (n < 0 && errno == EINTR);
    if (n != len) {
        ret = n < 0 ? -errno : -ENOSPC;
        goto out_close;
    }
    if (fsync(fd) < 0) {
        ret = -errno;
        goto out_close;
    }
    if (close(fd) < 0) {
        fd = -1;
        ret = -errno;
        goto out_unlink;
    }
    fd = -1;
    if (rename(tmp, ob->seq_path) < 0) {
        ret = -errno;
        goto out_unlink;
    }
    ret = fsync_dir(ob->dir);
    goto out_free;
out_close:
    close(fd);
out_unlink:
    unlink(tmp);
out_free:
    free(tmp);
    return ret;
}

/*
 * Make sure seq is covered by a durable reservation that does not say
 * "clean" before a batch carrying it can be stored (and sent).
 */
static int seq_reserve(struct et_outbox *ob, uint64_t seq)
{
    uint64_t reserved = ob->reserved;
    int ret;

    if (ob->seq_armed && seq <= reserved)
        return 0;
    if (seq > reserved)
        reserved = seq - 1 + OUTBOX_SEQ_BLOCK;
    ret = seq_file_write(ob, reserved, false, 0);
    if (ret < 0) {
        et_warn(OUTBOX_LOG, "%s: cannot reserve seqs up to %" PRIu64 ": %s", ob->seq_path,
                reserved, strerror(-ret));
        return ret;
    }
    ob->reserved = reserved;
    ob->seq_armed = true;
    return 0;
}

/* ---- meta and the mirror of the database ------------------------------- */

static int meta_get(struct et_outbox *ob, const char *key, uint64_t *out)
{
    sqlite3_stmt *s = ob->stmt[ST_META_GET];
    int rc;

    *out = 0;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *out = col_u64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int meta_set(struct et_outbox *ob, const char *key, uint64_t value)
{
    sqlite3_stmt *s = ob->stmt[ST_META_SET];

    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, seq_arg(value));
    return stmt_run(s);
}

/* Write the high-water mark and the dropped count (one page of meta). */
static int meta_save(struct et_outbox *ob, uint64_t hwm, uint64_t dropped)
{
    int rc = meta_set(ob, "hwm", hwm);

    return rc != SQLITE_OK ? rc : meta_set(ob, "dropped", dropped);
}

static int load_bounds(struct et_outbox *ob)
{
    sqlite3_stmt *s = ob->stmt[ST_BOUNDS];
    int rc = sqlite3_step(s);

    if (rc == SQLITE_ROW) {
        ob->oldest = col_u64(s, 0);
        ob->newest = col_u64(s, 1);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Read every counter from the database: at open and after a rollback. */
static int reload_state(struct et_outbox *ob)
{
    sqlite3_stmt *s = ob->stmt[ST_RANGE_SUM];
    uint64_t meta_hwm;
    int rc;

    sqlite3_bind_int64(s, 1, INT64_MAX);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        ob->batches = col_u64(s, 0);
        ob->samples = col_u64(s, 1);
        ob->bytes = col_u64(s, 2);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW)
        return rc;
    rc = load_bounds(ob);
    if (rc == SQLITE_OK)
        rc = meta_get(ob, "hwm", &meta_hwm);
    if (rc == SQLITE_OK)
        rc = meta_get(ob, "dropped", &ob->dropped);
    if (rc != SQLITE_OK)
        return rc;
    ob->db_hwm = meta_hwm > ob->newest ? meta_hwm : ob->newest;
    return SQLITE_OK;
}

/*
 * Undo whatever the failed operation left: roll back the open transaction
 * (the group's, or the one an append or ack opened for itself), put
 * next_seq back, and read the counters from the database again.
 */
static void outbox_undo(struct et_outbox *ob)
{
    int rc;

    if (!sqlite3_get_autocommit(ob->db))
        stmt_run(ob->stmt[ST_ROLLBACK]);
    if (ob->in_group) {
        ob->next_seq = ob->group_seq;
        ob->in_group = false;
    }
    rc = reload_state(ob);
    if (rc != SQLITE_OK)
        et_warn(OUTBOX_LOG, "%s: re-reading the counters after a failure: %s", ob->path,
                sqlite3_errstr(rc));
}

/* Log and map a failure of a write; -ENOSPC is the agent's to handle quietly. */
static int outbox_fail(struct et_outbox *ob, const char *what, int rc)
{
    int ret = outbox_errno(ob->db, rc);

    if (ret == -ENOSPC)
        et_debug(OUTBOX_LOG, "%s: %s: %s", ob->path, what, sqlite3_errmsg(ob->db));
    else
        et_warn(OUTBOX_LOG, "%s: %s: %s", ob->path, what, sqlite3_errmsg(ob->db));
    outbox_undo(ob);
    return ret;
}

/* ---- open and close --------------------------------------------------- */

static void db_close(struct et_outbox *ob)
{
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(ob->stmt[i]);
        ob->stmt[i] = NULL;
    }
    sqlite3_close(ob->db);
    ob->db = NULL;
}

/* Run a statement that returns one text row (a pragma) and copy that row. */
static int exec_text(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);

    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(s, 0);

        snprintf(out, outlen, "%s", t ? (const char *)t : "");
        /* quick_check reports on several lines; a log line is one. */
        for (char *p = out; *p; p++)
            if (*p == '\n')
                *p = ' ';
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        out[0] = '\0';
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return rc;
}

/*
 * Open the database and bring it to a usable state. *damaged is set when
 * the failure means the file is not a sound database (as opposed to, say,
 * no permission or a lock held by another process).
 */
static int db_open(struct et_outbox *ob, bool *damaged, char *err, size_t errlen)
{
    char text[256];
    int rc, version;

    *damaged = false;
    rc = sqlite3_open_v2(ob->path, &ob->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot open: %s", ob->path,
                 ob->db ? sqlite3_errmsg(ob->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(ob->db, 1);
    /* edgetelctl or an operator's sqlite3 may read it; never wait long. */
    sqlite3_busy_timeout(ob->db, 1000);

    /*
     * Settings of the connection, none of which reads the file. First, so
     * that the small cache holds during the integrity check too.
     */
    for (size_t i = 0; i < sizeof(outbox_pragmas) / sizeof(outbox_pragmas[0]); i++) {
        rc = sqlite3_exec(ob->db, outbox_pragmas[i], NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            snprintf(err, errlen, "%s: %s: %s", ob->path, outbox_pragmas[i], sqlite3_errmsg(ob->db));
            goto fail;
        }
    }

    /*
     * Page size, for a new database only (an existing file keeps its own).
     * A commit writes every page it changed, whole, into the WAL and the
     * checkpoint writes it once more, so the page is the unit of SD wear.
     * bench/outbox_bench, batches of 100 samples of ~12 bytes, bytes written
     * per encoded byte, 1 KiB pages against 4 KiB: one commit per batch
     * 3.9x against 6.7x, a group of 10 batches 2.4x against 3.2x, a drain
     * with an ack per batch 3.8x against 10x; appends still run at well
     * over 1 M samples/s. A blob larger than a page goes to overflow pages,
     * which SQLite fills completely.
     */
    rc = sqlite3_exec(ob->db, "PRAGMA page_size=" OUTBOX_STR(OUTBOX_PAGE_SIZE), NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", ob->path, sqlite3_errmsg(ob->db));
        goto fail;
    }

    /* The first read of the file: a file that is not SQLite fails here. */
    rc = exec_text(ob->db, "PRAGMA journal_mode=WAL", text, sizeof(text));
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", ob->path, sqlite3_errmsg(ob->db));
        goto fail;
    }
    if (strcmp(text, "wal") != 0)
        et_warn(OUTBOX_LOG, "%s: journal mode is \"%s\", not WAL: appends will write more",
                ob->path, text);

    /*
     * quick_check reads every page once (O(N), no index cross-check):
     * well under a second for a large backlog on an SD card, once per start.
     */
    rc = exec_text(ob->db, "PRAGMA quick_check", text, sizeof(text));
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: integrity check failed: %s", ob->path, sqlite3_errmsg(ob->db));
        goto fail;
    }
    if (strcmp(text, "ok") != 0) {
        snprintf(err, errlen, "%s: integrity check failed: %s", ob->path, text);
        *damaged = true;
        goto fail;
    }

    rc = exec_text(ob->db, "PRAGMA user_version", text, sizeof(text));
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", ob->path, sqlite3_errmsg(ob->db));
        goto fail;
    }
    version = atoi(text);
    if (version > OUTBOX_SCHEMA_VERSION) {
        snprintf(err, errlen, "%s: schema version %d was written by a newer edgetel (this one knows %d)",
                 ob->path, version, OUTBOX_SCHEMA_VERSION);
        sqlite3_close(ob->db);
        ob->db = NULL;
        return -EPROTO;
    }
    rc = sqlite3_exec(ob->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(ob->db, outbox_schema, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(ob->db, "PRAGMA user_version=1", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(ob->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: creating the tables: %s", ob->path, sqlite3_errmsg(ob->db));
        goto fail;
    }

    rc = exec_text(ob->db, "PRAGMA page_size", text, sizeof(text));
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", ob->path, sqlite3_errmsg(ob->db));
        goto fail;
    }
    ob->page_size = (uint64_t)strtoull(text, NULL, 10);

    for (int i = 0; i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3(ob->db, outbox_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                &ob->stmt[i], NULL);
        if (rc != SQLITE_OK) {
            snprintf(err, errlen, "%s: preparing \"%s\": %s", ob->path, outbox_sql[i],
                     sqlite3_errmsg(ob->db));
            goto fail;
        }
    }
    rc = reload_state(ob);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: reading the outbox: %s", ob->path, sqlite3_errmsg(ob->db));
        goto fail;
    }
    return 0;
fail:
    if (outbox_rc_damaged(rc))
        *damaged = true;
    {
        int ret = *damaged ? -EIO : outbox_errno(ob->db, rc);

        db_close(ob);
        return ret ? ret : -EIO;
    }
}

/* Rename PATH (and its -wal, -shm) to PATH.corrupt-<unix seconds>[.N]. */
static int move_aside(struct et_outbox *ob, char *aside, size_t asidelen)
{
    static const char *const suffixes[] = { "-wal", "-shm" };
    char from[PATH_MAX], to[PATH_MAX];
    long long now = (long long)time(NULL);
    struct stat st;

    snprintf(aside, asidelen, "%s.corrupt-%lld", ob->path, now);
    /* Never overwrite an earlier copy, even two in the same second. */
    for (int i = 1; lstat(aside, &st) == 0; i++)
        snprintf(aside, asidelen, "%s.corrupt-%lld.%d", ob->path, now, i);
    if (rename(ob->path, aside) < 0 && errno != ENOENT)
        return -errno;
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(from, sizeof(from), "%s%s", ob->path, suffixes[i]);
        snprintf(to, sizeof(to), "%s%s", aside, suffixes[i]);
        if (rename(from, to) < 0 && errno != ENOENT)
            return -errno;
    }
    return fsync_dir(ob->dir);
}

/* Decide where seqs continue (see outbox.h) and arm the sidecar. */
static void seq_start(struct et_outbox *ob, bool replaced)
{
    struct seq_file sf;
    uint64_t last;
    int ret;

    seq_file_read(ob, &sf);
    if (sf.present && sf.clean && sf.clean_hwm == ob->db_hwm && !replaced) {
        last = ob->db_hwm;
    } else {
        last = sf.reserved > ob->db_hwm ? sf.reserved : ob->db_hwm;
        if (last > ob->db_hwm)
            et_info(OUTBOX_LOG, "%s: %s; seqs continue after the reserved seq %" PRIu64
                    " so that none repeats", ob->path,
                    replaced ? "the database was replaced" : "the last run did not close cleanly",
                    last);
    }
    ob->next_seq = last + 1;
    ob->reserved = sf.reserved > last ? sf.reserved : last;
    /*
     * Drop the "clean" mark now: a crash from here on must be seen as one.
     * If that write fails the first append tries again before storing.
     */
    ret = seq_file_write(ob, ob->reserved, false, 0);
    if (ret < 0)
        et_warn(OUTBOX_LOG, "%s: cannot write: %s; will retry before the first append",
                ob->seq_path, strerror(-ret));
    else
        ob->seq_armed = true;
}

/*
 * One handle per outbox: two would hand out the same seqs. The lock is an
 * flock() on PATH.lock, a file that is never replaced (the sidecar is, so
 * it cannot carry the lock); the kernel drops it when the process dies.
 */
static int outbox_lock(struct et_outbox *ob, char *err, size_t errlen)
{
    char *lock_path = str_cat(ob->path, ".lock");
    int ret = 0;

    if (!lock_path)
        return -ENOMEM;
    ob->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (ob->lock_fd < 0) {
        ret = -errno;
        snprintf(err, errlen, "%s: cannot open: %s", lock_path, strerror(errno));
        goto out;
    }
    if (flock(ob->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
        snprintf(err, errlen, "%s: in use by another process or handle (%s is locked)",
                 ob->path, lock_path);
        close(ob->lock_fd);
        ob->lock_fd = -1;
    }
out:
    free(lock_path);
    return ret;
}

static void outbox_free(struct et_outbox *ob)
{
    if (ob->db)
        db_close(ob);
    if (ob->lock_fd >= 0)
        close(ob->lock_fd);
    free(ob->path);
    free(ob->seq_path);
    free(ob->dir);
    free(ob);
}

int et_outbox_open(struct et_outbox **out, const char *path, char *err, size_t errlen)
{
    char aside[PATH_MAX], why[512];
    struct et_outbox *ob;
    const char *slash;
    bool damaged, replaced = false;
    int ret;

    *out = NULL;
    if (!path || !*path) {
        snprintf(err, errlen, "outbox: no database path");
        return -EINVAL;
    }
    ob = calloc(1, sizeof(*ob));
    if (!ob)
        goto fail_nomem;
    ob->lock_fd = -1;
    ob->path = strdup(path);
    ob->seq_path = str_cat(path, ".seq");
    slash = strrchr(path, '/');
    ob->dir = slash == path ? strdup("/") : slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
    if (!ob->path || !ob->seq_path || !ob->dir)
        goto fail_nomem;
    ret = outbox_lock(ob, err, errlen);
    if (ret < 0)
        goto fail;

    ret = db_open(ob, &damaged, why, sizeof(why));
    if (ret < 0 && damaged) {
        ret = move_aside(ob, aside, sizeof(aside));
        if (ret < 0) {
            snprintf(err, errlen, "%s; and moving it aside failed: %s", why, strerror(-ret));
            goto fail;
        }
        et_warn(OUTBOX_LOG, "%s; moved it to %s and started an empty outbox", why, aside);
        replaced = true;
        ret = db_open(ob, &damaged, why, sizeof(why));
    }
    if (ret < 0) {
        snprintf(err, errlen, "%s", why);
        goto fail;
    }
    seq_start(ob, replaced);
    ob->lim.policy = ET_OUTBOX_DROP_OLDEST;
    *out = ob;
    return 0;
fail_nomem:
    snprintf(err, errlen, "%s: out of memory", path);
    ret = -ENOMEM;
fail:
    if (ob)
        outbox_free(ob);
    return ret;
}

void et_outbox_close(struct et_outbox *ob)
{
    bool clean, mark_ok;
    int rc, ret;

    if (!ob)
        return;
    if (ob->in_group) {
        ret = et_outbox_commit(ob);
        if (ret < 0)
            et_warn(OUTBOX_LOG, "%s: closing: the open group could not be committed (%s); "
                    "its batches are not stored", ob->path, strerror(-ret));
    }
    /*
     * The clean mark below must equal the database's mark, and after a
     * skipped reservation no row holds next_seq - 1: store it in meta.
     */
    mark_ok = ob->newest == ob->next_seq - 1 ||
              meta_save(ob, ob->next_seq - 1, ob->dropped) == SQLITE_OK;
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(ob->stmt[i]);
        ob->stmt[i] = NULL;
    }
    /*
     * The last connection's close checkpoints the WAL into the database
     * with a sync and removes it. Only then may the sidecar say "clean":
     * if anything was lost after all, the database's mark is lower than the
     * clean mark and the next open skips the reservation anyway.
     */
    rc = sqlite3_close(ob->db);
    /*
     * Not clean either when an undone group had used seqs above the
     * stored ones: those batches may have been sent already.
     */
    clean = rc == SQLITE_OK && mark_ok && ob->seq_armed && ob->seq_high < ob->next_seq;
    if (rc != SQLITE_OK)
        et_warn(OUTBOX_LOG, "%s: close: %s", ob->path, sqlite3_errstr(rc));
    else
        ob->db = NULL;
    if (clean) {
        ret = seq_file_write(ob, ob->reserved, true, ob->next_seq - 1);
        if (ret < 0)
            et_warn(OUTBOX_LOG, "%s: cannot record the clean close: %s", ob->seq_path,
                    strerror(-ret));
    }
    outbox_free(ob);
}

uint64_t et_outbox_next_seq(const struct et_outbox *ob)
{
    return ob->next_seq;
}

struct sqlite3 *et_outbox_sqlite(struct et_outbox *ob)
{
    return ob->db;
}

/* ---- limits ------------------------------------------------------------ */

int et_outbox_set_limits(struct et_outbox *ob, const struct et_outbox_limits *lim)
{
    if (lim->policy != ET_OUTBOX_DROP_OLDEST && lim->policy != ET_OUTBOX_DROP_NEWEST)
        return -EINVAL;
    ob->lim = *lim;
    return 0;
}

static const char *policy_name(enum et_outbox_policy p)
{
    return p == ET_OUTBOX_DROP_NEWEST ? "drop-newest" : "drop-oldest";
}

/*
 * How many payload bytes must go before a batch of len bytes may be
 * stored: 0 when it fits. why gets the reason for the episode's log line.
 */
static uint64_t room_needed(struct et_outbox *ob, size_t len, char *why, size_t whylen)
{
    uint64_t need = 0, avail, total, freelist = 0;
    sqlite3_stmt *s;
    int ret;

    if (ob->lim.quota_bytes && ob->bytes + len > ob->lim.quota_bytes) {
        need = ob->bytes + len - ob->lim.quota_bytes;
        snprintf(why, whylen, "the payload would exceed the quota of %" PRIu64 " bytes",
                 ob->lim.quota_bytes);
    }
    if (!ob->lim.reserve_bytes)
        return need;
    ret = et_fs_space(ob->path, &avail, &total);
    if (ret < 0) {
        /* Without an answer the reserve cannot be judged; never evict blind. */
        et_debug(OUTBOX_LOG, "%s: free space unknown: %s", ob->path, strerror(-ret));
        return need;
    }
    /* Pages freed inside the database are reused before the file grows. */
    s = ob->stmt[ST_FREELIST];
    if (sqlite3_step(s) == SQLITE_ROW)
        freelist = col_u64(s, 0) * ob->page_size;
    sqlite3_reset(s);
    avail += freelist;
    if (avail < ob->lim.reserve_bytes + len) {
        uint64_t short_by = ob->lim.reserve_bytes + len - avail;

        if (short_by > need) {
            need = short_by;
            snprintf(why, whylen, "free space (%" PRIu64 " bytes) would fall below the reserve of %"
                     PRIu64 " bytes", avail, ob->lim.reserve_bytes);
        }
    }
    return need;
}

/* Delete the oldest batches until at least need payload bytes are gone. */
static int evict_oldest(struct et_outbox *ob, uint64_t need, uint64_t *freed)
{
    sqlite3_stmt *s = ob->stmt[ST_OLDEST];
    sqlite3_stmt *del = ob->stmt[ST_DELETE_ONE];
    int rc = SQLITE_OK;

    *freed = 0;
    while (*freed < need) {
        uint64_t seq, n, len;

        rc = sqlite3_step(s);
        if (rc != SQLITE_ROW) {
            sqlite3_reset(s);
            return rc == SQLITE_DONE ? SQLITE_OK : rc;   /* nothing left */
        }
        seq = col_u64(s, 0);
        n = col_u64(s, 1);
        len = col_u64(s, 2);
        sqlite3_reset(s);
        sqlite3_bind_int64(del, 1, seq_arg(seq));
        rc = stmt_run(del);
        if (rc != SQLITE_OK)
            return rc;
        *freed += len;
        ob->batches--;
        ob->samples -= n;
        ob->bytes -= len;
        ob->dropped += n;
        ob->episode_dropped += n;
    }
    return rc;
}

static void episode_start(struct et_outbox *ob, const char *why)
{
    if (ob->evicting)
        return;
    ob->evicting = true;
    ob->episode_dropped = 0;
    et_warn(OUTBOX_LOG, "%s: %s; %s until it fits (every dropped sample is counted)", ob->path,
            why, ob->lim.policy == ET_OUTBOX_DROP_NEWEST ? "refusing new batches"
                                                         : "dropping the oldest batches");
}

static void episode_end(struct et_outbox *ob)
{
    if (!ob->evicting)
        return;
    ob->evicting = false;
    et_info(OUTBOX_LOG, "%s: back within limits (%s); %" PRIu64 " samples dropped meanwhile, %"
            PRIu64 " since the data dir was made", ob->path, policy_name(ob->lim.policy),
            ob->episode_dropped, ob->dropped);
}

/*
 * Refuse the batch: use its seq up and count its samples, durably. Runs in
 * the open transaction (the group's, or the append's own when tx_open),
 * else in one of its own; commits that own one.
 */
static int refuse(struct et_outbox *ob, uint64_t seq, uint32_t n_samples, bool tx_open)
{
    bool own = !ob->in_group;
    int rc;

    if (own && !tx_open) {
        rc = stmt_run(ob->stmt[ST_BEGIN]);
        if (rc != SQLITE_OK)
            return outbox_fail(ob, "refusing a batch", rc);
    }
    rc = meta_save(ob, seq, ob->dropped + n_samples);
    if (rc == SQLITE_OK && own)
        rc = stmt_run(ob->stmt[ST_COMMIT]);
    if (rc != SQLITE_OK)
        return outbox_fail(ob, "refusing a batch", rc);
    ob->dropped += n_samples;
    ob->episode_dropped += n_samples;
    ob->next_seq = seq + 1;
    if (seq > ob->seq_high)
        ob->seq_high = seq;
    if (load_bounds(ob) != SQLITE_OK)
        et_warn(OUTBOX_LOG, "%s: reading the outbox's bounds: %s", ob->path, sqlite3_errmsg(ob->db));
    return -EDQUOT;
}

/* ---- the operations ------------------------------------------------------ */

int et_outbox_append(struct et_outbox *ob, uint64_t seq, const void *blob, size_t len,
                     uint32_t n_samples, int64_t created_ms)
{
    sqlite3_stmt *s = ob->stmt[ST_INSERT];
    char why[160] = "";
    uint64_t need, freed = 0;
    bool own = false;
    int rc, ret;

    if (!blob || len == 0 || len > INT_MAX || seq != ob->next_seq)
        return -EINVAL;
    if (seq > (uint64_t)INT64_MAX)
        return -EOVERFLOW;
    ret = seq_reserve(ob, seq);
    if (ret < 0) {
        if (ob->in_group)
            outbox_undo(ob);    /* the contract: a failure ends the group */
        return ret;
    }

    need = room_needed(ob, len, why, sizeof(why));
    if (need > 0) {
        episode_start(ob, why);
        if (ob->lim.policy == ET_OUTBOX_DROP_NEWEST ||
            (ob->lim.quota_bytes && len > ob->lim.quota_bytes))
            return refuse(ob, seq, n_samples, false);
        if (!ob->in_group) {
            rc = stmt_run(ob->stmt[ST_BEGIN]);
            if (rc != SQLITE_OK)
                return outbox_fail(ob, "appending a batch", rc);
            own = true;
        }
        rc = evict_oldest(ob, need, &freed);
        if (rc == SQLITE_OK && freed < need)
            return refuse(ob, seq, n_samples, own);   /* all gone, still no room */
        if (rc == SQLITE_OK)
            rc = meta_save(ob, seq, ob->dropped);
        if (rc != SQLITE_OK)
            return outbox_fail(ob, "making room for a batch", rc);
    } else {
        episode_end(ob);
    }

    sqlite3_bind_int64(s, 1, (sqlite3_int64)seq);
    sqlite3_bind_int64(s, 2, created_ms);
    sqlite3_bind_int64(s, 3, n_samples);
    sqlite3_bind_blob(s, 4, blob, (int)len, SQLITE_STATIC);
    rc = stmt_run(s);
    /* The statement must not keep a pointer to the caller's buffer. */
    sqlite3_clear_bindings(s);
    if (rc == SQLITE_OK && own)
        rc = stmt_run(ob->stmt[ST_COMMIT]);
    if (rc != SQLITE_OK)
        return outbox_fail(ob, "appending a batch", rc);

    if (freed > 0 && load_bounds(ob) != SQLITE_OK)
        et_warn(OUTBOX_LOG, "%s: reading the outbox's bounds: %s", ob->path, sqlite3_errmsg(ob->db));
    if (ob->batches == 0)
        ob->oldest = seq;
    ob->newest = seq;
    ob->batches++;
    ob->samples += n_samples;
    ob->bytes += len;
    ob->next_seq = seq + 1;
    if (seq > ob->seq_high)
        ob->seq_high = seq;
    return 0;
}

int et_outbox_ack(struct et_outbox *ob, uint64_t through, const uint64_t *seqs, size_t n_seqs)
{
    sqlite3_stmt *s;
    uint64_t count = 0, samples = 0, bytes = 0;
    bool own = !ob->in_group, newest_gone = false;
    int rc;

    if (n_seqs && !seqs)
        return -EINVAL;
    if (ob->batches == 0)
        return 0;
    if (own) {
        rc = stmt_run(ob->stmt[ST_BEGIN]);
        if (rc != SQLITE_OK)
            return outbox_fail(ob, "acknowledging", rc);
    }
    if (through >= ob->oldest) {
        s = ob->stmt[ST_RANGE_SUM];
        sqlite3_bind_int64(s, 1, seq_arg(through));
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            count = col_u64(s, 0);
            samples = col_u64(s, 1);
            bytes = col_u64(s, 2);
        }
        sqlite3_reset(s);
        if (rc != SQLITE_ROW)
            goto fail;
        if (count > 0) {
            sqlite3_bind_int64(ob->stmt[ST_DELETE_THROUGH], 1, seq_arg(through));
            rc = stmt_run(ob->stmt[ST_DELETE_THROUGH]);
            if (rc != SQLITE_OK)
                goto fail;
        }
        newest_gone = through >= ob->newest;
    }
    for (size_t i = 0; i < n_seqs; i++) {
        if (seqs[i] <= through || seqs[i] < ob->oldest || seqs[i] > ob->newest)
            continue;
        s = ob->stmt[ST_ONE];
        sqlite3_bind_int64(s, 1, seq_arg(seqs[i]));
        rc = sqlite3_step(s);
        if (rc == SQLITE_DONE) {
            sqlite3_reset(s);
            continue;       /* not stored (any more): a repeated ack */
        }
        if (rc != SQLITE_ROW) {
            sqlite3_reset(s);
            goto fail;
        }
        samples += col_u64(s, 0);
        bytes += col_u64(s, 1);
        sqlite3_reset(s);
        sqlite3_bind_int64(ob->stmt[ST_DELETE_ONE], 1, seq_arg(seqs[i]));
        rc = stmt_run(ob->stmt[ST_DELETE_ONE]);
        if (rc != SQLITE_OK)
            goto fail;
        count++;
        if (seqs[i] == ob->newest)
            newest_gone = true;
    }
    /* Keep the high-water mark once the newest row no longer holds it. */
    if (newest_gone) {
        rc = meta_save(ob, ob->next_seq - 1, ob->dropped);
        if (rc != SQLITE_OK)
            goto fail;
    }
    if (own) {
        rc = stmt_run(ob->stmt[ST_COMMIT]);
        if (rc != SQLITE_OK)
            goto fail;
    }
    ob->batches -= count;
    ob->samples -= samples;
    ob->bytes -= bytes;
    if (count > 0) {
        rc = load_bounds(ob);
        if (rc != SQLITE_OK)
            return outbox_fail(ob, "reading the outbox after an ack", rc);
    }
    return count > INT_MAX ? INT_MAX : (int)count;
fail:
    return outbox_fail(ob, "acknowledging", rc);
}

int et_outbox_next(struct et_outbox *ob, uint64_t after, uint64_t *seq, uint8_t **blob,
                   size_t *len)
{
    sqlite3_stmt *s = ob->stmt[ST_NEXT];
    const void *data;
    uint8_t *copy;
    size_t n;
    int rc, ret = 0;

    *blob = NULL;
    *len = 0;
    if (after >= (uint64_t)INT64_MAX)
        return -ENOENT;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)after);
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        ret = -ENOENT;
        goto out;
    }
    if (rc != SQLITE_ROW) {
        et_warn(OUTBOX_LOG, "%s: reading the batch after seq %" PRIu64 ": %s", ob->path, after,
                sqlite3_errmsg(ob->db));
        ret = outbox_errno(ob->db, rc);
        goto out;
    }
    /* Blob first, then its size: the documented order for a stable pointer. */
    data = sqlite3_column_blob(s, 1);
    n = (size_t)sqlite3_column_bytes(s, 1);
    if (!data && n == 0 && sqlite3_errcode(ob->db) == SQLITE_NOMEM) {
        ret = -ENOMEM;
        goto out;
    }
    copy = malloc(n + ET_OUTBOX_BLOB_SPARE);
    if (!copy) {
        ret = -ENOMEM;
        goto out;
    }
    if (n)
        memcpy(copy, data, n);
    memset(copy + n, 0, ET_OUTBOX_BLOB_SPARE);
    *seq = col_u64(s, 0);
    *blob = copy;
    *len = n;
out:
    sqlite3_reset(s);
    return ret;
}

int et_outbox_stats(struct et_outbox *ob, struct et_outbox_stats *st)
{
    st->batches = ob->batches;
    st->samples = ob->samples;
    st->bytes = ob->bytes;
    st->oldest_seq = ob->batches ? ob->oldest : 0;
    st->newest_seq = ob->batches ? ob->newest : 0;
    st->dropped_samples = ob->dropped;
    return 0;
}

int et_outbox_begin(struct et_outbox *ob)
{
    int rc;

    if (ob->in_group)
        return -EALREADY;
    rc = stmt_run(ob->stmt[ST_BEGIN]);
    if (rc != SQLITE_OK) {
        et_warn(OUTBOX_LOG, "%s: starting a group: %s", ob->path, sqlite3_errmsg(ob->db));
        return outbox_errno(ob->db, rc);
    }
    ob->in_group = true;
    ob->group_seq = ob->next_seq;
    return 0;
}

int et_outbox_commit(struct et_outbox *ob)
{
    int rc;

    if (!ob->in_group)
        return -EINVAL;
    rc = stmt_run(ob->stmt[ST_COMMIT]);
    if (rc != SQLITE_OK)
        return outbox_fail(ob, "committing a group", rc);
    ob->in_group = false;
    return 0;
}
