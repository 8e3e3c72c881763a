/*
 * Opening and closing the outbox: the lock, the connection's settings,
 * the schema, the integrity check, and moving a damaged database aside.
 *
 * Schema (PRAGMA user_version = 1):
 *   batch(seq INTEGER PRIMARY KEY, created_ms, n_samples, payload BLOB)
 *   meta(key TEXT PRIMARY KEY, value INTEGER) WITHOUT ROWID
 *     'hwm'      highest seq handed out, written whenever a deletion could
 *                remove the newest batch or a seq is used up without a row
 *     'dropped'  samples evicted or refused over the data dir's life
 */
#include "outbox_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "edgetel/log.h"
#include "edgetel/sqlite.h"

#define OUTBOX_SCHEMA_VERSION 1

/* edgetelctl or an operator's sqlite3 may read it; never wait long. */
#define OUTBOX_BUSY_MS 1000

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
    /* The uplink's live rows: a few at the top of the index, never the backlog. */
    [ST_COUNT_FROM] = "SELECT count(*) FROM batch WHERE seq >= ?1",
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

int et_outbox_sync_dir(const struct et_outbox *ob)
{
    int fd = open(ob->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int ret = 0;

    if (fd < 0)
        return -errno;
    if (fsync(fd) < 0)
        ret = -errno;
    close(fd);
    return ret;
}

static void db_close(struct et_outbox *ob)
{
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(ob->stmt[i]);
        ob->stmt[i] = NULL;
    }
    sqlite3_close(ob->db);
    ob->db = NULL;
}

/*
 * Open the database and bring it to a usable state. *damaged is set when
 * the failure means the file is not a sound database (as opposed to, say,
 * no permission or a lock held by another process).
 *
 * rc holds SQLite's code until the end, not -errno: the damage check needs
 * it. Since the shared mapping, a file SQLite cannot open (SQLITE_CANTOPEN:
 * PATH is a directory, or not readable) returns -EACCES; it was -EIO.
 */
static int db_open(struct et_outbox *ob, bool *damaged, char *err, size_t errlen)
{
    char text[256];
    int64_t version, page_size;
    int rc, ret;

    *damaged = false;
    rc = et_sqlite_open(ob->path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        OUTBOX_BUSY_MS, &ob->db, text, sizeof(text));
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot open: %s", ob->path, text);
        goto fail;
    }

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
    rc = et_sqlite_text(ob->db, "PRAGMA journal_mode=WAL", text, sizeof(text));
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
    rc = et_sqlite_text(ob->db, "PRAGMA quick_check", text, sizeof(text));
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: integrity check failed: %s", ob->path, sqlite3_errmsg(ob->db));
        goto fail;
    }
    if (strcmp(text, "ok") != 0) {
        /* quick_check reports on several lines; a log line is one. */
        for (char *p = text; *p; p++)
            if (*p == '\n')
                *p = ' ';
        snprintf(err, errlen, "%s: integrity check failed: %s", ob->path, text);
        *damaged = true;
        goto fail;
    }

    rc = et_sqlite_int(ob->db, "PRAGMA user_version", &version);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", ob->path, sqlite3_errmsg(ob->db));
        goto fail;
    }
    if (version > OUTBOX_SCHEMA_VERSION) {
        snprintf(err, errlen, "%s: schema version %" PRId64 " was written by a newer edgetel "
                 "(this one knows %d)", ob->path, version, OUTBOX_SCHEMA_VERSION);
        db_close(ob);
        return -EPROTO;
    }
    /* Only a new database gets its tables: writing them again (even
     * unchanged) needs free space, and an agent must start on a full card. */
    rc = version == OUTBOX_SCHEMA_VERSION ? SQLITE_DONE
         : sqlite3_exec(ob->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(ob->db, outbox_schema, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(ob->db, "PRAGMA user_version=" OUTBOX_STR(OUTBOX_SCHEMA_VERSION),
                          NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(ob->db, "COMMIT", NULL, NULL, NULL);
    if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: creating the tables: %s", ob->path, sqlite3_errmsg(ob->db));
        goto fail;
    }

    rc = et_sqlite_int(ob->db, "PRAGMA page_size", &page_size);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", ob->path, sqlite3_errmsg(ob->db));
        goto fail;
    }
    ob->page_size = page_size > 0 ? (uint64_t)page_size : 0;

    for (int i = 0; i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3(ob->db, outbox_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                &ob->stmt[i], NULL);
        if (rc != SQLITE_OK) {
            snprintf(err, errlen, "%s: preparing \"%s\": %s", ob->path, outbox_sql[i],
                     sqlite3_errmsg(ob->db));
            goto fail;
        }
    }
    if (et_outbox_reload(ob) < 0) {
        /* The failed step's code is still the handle's: for the damage check. */
        rc = sqlite3_extended_errcode(ob->db);
        snprintf(err, errlen, "%s: reading the outbox: %s", ob->path, sqlite3_errmsg(ob->db));
        goto fail;
    }
    return 0;
fail:
    if (et_sqlite_damaged(rc))
        *damaged = true;
    ret = *damaged ? -EIO : et_sqlite_errno(ob->db, rc);
    db_close(ob);
    return ret ? ret : -EIO;
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
    return et_outbox_sync_dir(ob);
}

/*
 * The loss note: one fixed-width line at the start of PATH.lock, the
 * samples the database does not count yet (dropped by the caller, or held
 * in memory because they could not be stored). The lock file is never
 * replaced, so once the line exists it is rewritten in place: no new space
 * is needed on a full filesystem, which is when the note matters. A write
 * cut short by a power cut leaves a line that does not parse, which reads
 * as "nothing noted" (the loss it would have told of is then not counted,
 * and the log of that run said so).
 */
#define NOTE_FORMAT "edgetel-outbox-unstored %020" PRIu64 "\n"
#define NOTE_LEN 45

static int note_put(struct et_outbox *ob, uint64_t value)
{
    char line[NOTE_LEN + 1];
    ssize_t n;

    snprintf(line, sizeof(line), NOTE_FORMAT, value);
    n = pwrite(ob->lock_fd, line, NOTE_LEN, 0);
    if (n != NOTE_LEN)
        return n < 0 ? -errno : -ENOSPC;
    if (fdatasync(ob->lock_fd) < 0)
        return -errno;
    ob->note_on_disk = value;
    return 0;
}

int et_outbox_note_write(struct et_outbox *ob)
{
    uint64_t value = ob->dropped_unsaved + ob->held_noted;
    int ret;

    if (value == ob->note_on_disk)
        return 0;
    ret = note_put(ob, value);
    if (ret < 0 && !ob->note_failing)
        et_warn(OUTBOX_LOG, "%s.lock: cannot note %" PRIu64 " samples not stored: %s; should "
                "the agent die now they would be lost without being counted", ob->path, value,
                strerror(-ret));
    ob->note_failing = ret < 0;
    return ret;
}

/*
 * At open, once the seq sidecar was read: count what the last run noted,
 * and say so once. The note is left as it is until the count reaches the
 * database (the first group commit, or the close).
 */
static void note_read(struct et_outbox *ob)
{
    char line[NOTE_LEN + 1];
    unsigned long long value;
    ssize_t n = pread(ob->lock_fd, line, NOTE_LEN, 0);

    if (n == 0) {
        /* A new lock file: give the note its space now, while there may be some. */
        note_put(ob, 0);
        return;
    }
    if (n != NOTE_LEN)
        return;
    line[NOTE_LEN] = '\0';
    if (sscanf(line, "edgetel-outbox-unstored %20llu\n", &value) != 1 || value == 0)
        return;
    ob->note_on_disk = value;
    ob->dropped_unsaved += value;
    if (ob->last_run_clean)
        et_warn(OUTBOX_LOG, "%s: the last run stopped with %llu samples it could not store "
                "(the disk was full or below the reserve); counted as dropped", ob->path, value);
    else
        et_warn(OUTBOX_LOG, "%s: the last run ended without stopping cleanly while it held %llu "
                "samples in memory that it could not store (as of its last batch; samples "
                "collected after it are not known); counted as dropped, though those it had "
                "sent and not yet seen acknowledged may be stored at the aggregator too",
                ob->path, value);
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
    free(ob->seq_tmp_path);
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
    ob->seq_tmp_path = str_cat(path, ".seq.tmp");
    slash = strrchr(path, '/');
    ob->dir = slash == path ? strdup("/") : slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
    if (!ob->path || !ob->seq_path || !ob->seq_tmp_path || !ob->dir)
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
    ret = et_outbox_seq_start(ob, replaced);
    if (ret < 0) {
        snprintf(err, errlen, "%s: cannot make a stream id: %s", path, strerror(-ret));
        goto fail;
    }
    note_read(ob);
    ob->lim.policy = ET_OUTBOX_DROP_OLDEST;
    ob->fs_avail = UINT64_MAX;
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
    bool clean;
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
     * After a skipped reservation no row holds next_seq - 1: keep it in
     * meta (the clean mark covers it too; this keeps the database's own
     * mark right for the day the sidecar is lost). Drops not yet counted
     * by the database go with it; on a full disk they stay in the note.
     */
    if (ob->newest != ob->next_seq - 1 || ob->dropped_unsaved > 0) {
        if (et_outbox_meta_save(ob, ob->next_seq - 1, ob->dropped + ob->dropped_unsaved) == 0) {
            ob->dropped += ob->dropped_unsaved;
            ob->dropped_unsaved = 0;
        }
    }
    et_outbox_note_write(ob);
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
     * Seqs used above the stored ones (an undone group, batches sent from
     * memory) may have been sent: the clean mark is the highest seq used,
     * so the next open continues after them.
     */
    clean = rc == SQLITE_OK && ob->seq_armed;
    if (rc != SQLITE_OK)
        et_warn(OUTBOX_LOG, "%s: close: %s", ob->path, sqlite3_errstr(rc));
    else
        ob->db = NULL;
    if (clean)
        et_outbox_seq_mark_clean(ob);
    outbox_free(ob);
}

struct sqlite3 *et_outbox_sqlite(struct et_outbox *ob)
{
    return ob->db;
}
