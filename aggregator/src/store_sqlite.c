/*
 * The SQLite store backend: the default for one site.
 *
 * WAL mode so edgetelctl reads while the aggregator writes, and
 * synchronous=FULL: an Ack tells the device to delete its copy, so a commit
 * must survive a power cut, not only a crash of the process.
 *
 * The SQL is kept close to what PostgreSQL accepts (ON CONFLICT, partial
 * indexes) so the PostgreSQL backend can follow it; the differences are
 * two-argument MAX() (GREATEST there) and last_insert_rowid (RETURNING id).
 * Sequence numbers are unsigned 64-bit on the wire and signed 64-bit
 * INTEGER here; seqs above INT64_MAX are refused with -ERANGE.
 */
#include "edgetel/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "edgetel/log.h"

/* user_version of the schema this code writes; read-only handles also
 * read older versions back to STORE_SCHEMA_READABLE (their queries only use
 * columns every such version has). */
#define STORE_SCHEMA_VERSION 3
#define STORE_SCHEMA_READABLE 1
/* How long a writer waits for another (another aggregator, a checkpoint). */
#define STORE_BUSY_TIMEOUT_MS 10000
/* Rows read per step while advancing a cumulative ack. */
#define STORE_ACK_SCAN_ROWS 512

static const char store_schema[] =
    "CREATE TABLE devices ("
    "  id TEXT PRIMARY KEY,"
    "  online INTEGER NOT NULL DEFAULT 0,"
    "  first_seen_ms INTEGER NOT NULL,"
    "  last_seen_ms INTEGER NOT NULL,"
    "  boot_id TEXT NOT NULL DEFAULT '',"
    "  agent_version TEXT NOT NULL DEFAULT '',"
    "  acked_through INTEGER NOT NULL DEFAULT 0,"
    "  samples_stored INTEGER NOT NULL DEFAULT 0,"
    "  has_status INTEGER NOT NULL DEFAULT 0,"
    "  outbox_batches INTEGER NOT NULL DEFAULT 0,"
    "  dropped_samples INTEGER NOT NULL DEFAULT 0,"
    "  clock_synced INTEGER NOT NULL DEFAULT 0,"
    "  reason TEXT NOT NULL DEFAULT '',"
    "  status_wall_ms INTEGER NOT NULL DEFAULT 0,"
    /* v2: the last clock mapping from a synced batch (et_store_clock). */
    "  clock_boot TEXT NOT NULL DEFAULT '',"
    "  clock_wall_ms INTEGER NOT NULL DEFAULT 0,"
    "  clock_mono_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE batches ("
    "  device TEXT NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  received_ms INTEGER NOT NULL,"
    "  n_samples INTEGER NOT NULL,"
    "  historical INTEGER NOT NULL,"
    "  boot_id TEXT NOT NULL,"
    "  time_quality INTEGER NOT NULL,"
    /* v2: where its samples are and how many still wait for re-timing. */
    "  first_sample_id INTEGER NOT NULL DEFAULT 0,"
    "  last_sample_id INTEGER NOT NULL DEFAULT 0,"
    "  unsynced INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (device, seq));"
    /* Partial: holds only batches with samples waiting to be re-timed. */
    "CREATE INDEX batches_unsynced ON batches (device, boot_id) WHERE unsynced > 0;"
    "CREATE TABLE metrics ("
    "  id INTEGER PRIMARY KEY,"
    "  device TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  unit TEXT NOT NULL,"
    /* v3: the collector's tags, canonical "k=v,k2=v2" (latest wins). */
    "  tags TEXT NOT NULL DEFAULT '',"
    "  UNIQUE (device, name));"
    /* One value column per type; vtype (enum et_type) says which is set. */
    "CREATE TABLE samples ("
    "  id INTEGER PRIMARY KEY,"
    "  metric_id INTEGER NOT NULL REFERENCES metrics(id),"
    "  ts_ms INTEGER NOT NULL,"
    "  mono_ms INTEGER NOT NULL,"
    "  vtype INTEGER NOT NULL,"
    "  v_f64 REAL,"
    "  v_i64 INTEGER,"
    "  v_bool INTEGER,"
    "  v_str TEXT,"
    "  time_quality INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL);"
    "CREATE INDEX samples_metric_ts ON samples (metric_id, ts_ms);";

/*
 * Migrations: store_migrations[v - 1] takes a store from version v to v + 1.
 * Rows stored before v2 carry no re-timing record (unsynced = 0), so their
 * samples keep the quality they arrived with.
 */
static const char *const store_migrations[STORE_SCHEMA_VERSION - 1] = {
    "ALTER TABLE devices ADD COLUMN clock_boot TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE devices ADD COLUMN clock_wall_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE devices ADD COLUMN clock_mono_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE batches ADD COLUMN first_sample_id INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE batches ADD COLUMN last_sample_id INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE batches ADD COLUMN unsynced INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX batches_unsynced ON batches (device, boot_id) WHERE unsynced > 0;",
    "ALTER TABLE metrics ADD COLUMN tags TEXT NOT NULL DEFAULT '';",
};

enum store_stmt {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_BATCH_SEEN,
    ST_DEVICE_INSERT,
    ST_DEVICE_SEEN,
    ST_METRIC_GET,
    ST_METRIC_INSERT,
    ST_METRIC_UNIT,
    ST_METRIC_TAGS,
    ST_BATCH_INSERT,
    ST_SAMPLE_INSERT,
    ST_ACK_GET,
    ST_ACK_SCAN,
    ST_ACK_SET,
    ST_STATUS_GET,
    ST_STATUS,
    ST_DEVICES,
    ST_METRICS,
    ST_QUERY,
    ST_AFTER,
    ST_LAST_ID,
    ST_CLOCK_GET,
    ST_CLOCK_SET,
    ST_RETIME_FIND,
    ST_RETIME_SAMPLES,
    ST_RETIME_DONE,
    ST_COUNT
};

#define SAMPLE_COLUMNS \
    "s.id, s.metric_id, m.device, m.name, m.unit, s.ts_ms, s.mono_ms, s.vtype," \
    " s.v_f64, s.v_i64, s.v_bool, s.v_str, s.time_quality, s.seq"

static const char *const store_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_BATCH_SEEN] = "SELECT 1 FROM batches WHERE device = ?1 AND seq = ?2",
    [ST_DEVICE_INSERT] =
        "INSERT INTO devices (id, first_seen_ms, last_seen_ms) VALUES (?1, ?2, ?2)"
        " ON CONFLICT (id) DO NOTHING",
    [ST_DEVICE_SEEN] =
        "UPDATE devices SET last_seen_ms = MAX(last_seen_ms, ?2),"
        " boot_id = CASE WHEN ?3 <> '' THEN ?3 ELSE boot_id END,"
        " samples_stored = samples_stored + ?4 WHERE id = ?1",
    [ST_METRIC_GET] = "SELECT id, unit FROM metrics WHERE device = ?1 AND name = ?2",
    [ST_METRIC_INSERT] = "INSERT INTO metrics (device, name, unit) VALUES (?1, ?2, ?3)",
    [ST_METRIC_UNIT] = "UPDATE metrics SET unit = ?2 WHERE id = ?1",
    [ST_METRIC_TAGS] = "UPDATE metrics SET tags = ?2 WHERE id = ?1 AND tags != ?2",
    [ST_BATCH_INSERT] =
        "INSERT INTO batches (device, seq, received_ms, n_samples, historical, boot_id,"
        " time_quality, first_sample_id, last_sample_id, unsynced)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [ST_SAMPLE_INSERT] =
        "INSERT INTO samples (metric_id, ts_ms, mono_ms, vtype, v_f64, v_i64, v_bool, v_str,"
        " time_quality, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [ST_ACK_GET] = "SELECT acked_through FROM devices WHERE id = ?1",
    [ST_ACK_SCAN] =
        "SELECT seq FROM batches WHERE device = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    [ST_ACK_SET] = "UPDATE devices SET acked_through = ?2 WHERE id = ?1",
    [ST_STATUS_GET] = "SELECT online, has_status FROM devices WHERE id = ?1",
    [ST_STATUS] =
        "UPDATE devices SET online = ?2,"
        " last_seen_ms = CASE WHEN ?2 <> 0 THEN MAX(last_seen_ms, ?3) ELSE last_seen_ms END,"
        " boot_id = CASE WHEN ?4 <> '' THEN ?4 ELSE boot_id END,"
        " agent_version = CASE WHEN ?5 <> '' THEN ?5 ELSE agent_version END,"
        " has_status = 1, outbox_batches = ?6, dropped_samples = ?7, clock_synced = ?8,"
        " reason = ?9, status_wall_ms = ?10 WHERE id = ?1",
    [ST_DEVICES] =
        "SELECT d.id, d.online, d.first_seen_ms, d.last_seen_ms, d.boot_id, d.agent_version,"
        " d.acked_through, d.samples_stored,"
        " (SELECT COUNT(*) FROM batches b WHERE b.device = d.id),"
        " d.has_status, d.outbox_batches, d.dropped_samples, d.clock_synced, d.reason"
        " FROM devices d WHERE (?1 IS NULL OR d.id = ?1) ORDER BY d.id",
    [ST_METRICS] =
        "SELECT m.id, m.device, m.name, m.unit, COUNT(s.id), MIN(s.ts_ms), MAX(s.ts_ms), m.tags"
        " FROM metrics m LEFT JOIN samples s ON s.metric_id = m.id"
        " WHERE m.device = ?1 GROUP BY m.id, m.device, m.name, m.unit ORDER BY m.name",
    [ST_QUERY] =
        "SELECT " SAMPLE_COLUMNS " FROM samples s JOIN metrics m ON m.id = s.metric_id"
        " WHERE m.device = ?1 AND m.name = ?2 AND s.ts_ms >= ?3 AND s.ts_ms < ?4"
        " ORDER BY s.ts_ms, s.id",
    [ST_AFTER] =
        "SELECT " SAMPLE_COLUMNS " FROM samples s JOIN metrics m ON m.id = s.metric_id"
        " WHERE s.id > ?1 AND (?2 IS NULL OR m.device = ?2) ORDER BY s.id LIMIT ?3",
    [ST_LAST_ID] = "SELECT COALESCE(MAX(id), 0) FROM samples",
    [ST_CLOCK_GET] =
        "SELECT clock_boot, clock_wall_ms, clock_mono_ms FROM devices WHERE id = ?1",
    [ST_CLOCK_SET] =
        "UPDATE devices SET clock_boot = ?2, clock_wall_ms = ?3, clock_mono_ms = ?4"
        " WHERE id = ?1",
    [ST_RETIME_FIND] =
        "SELECT seq, first_sample_id, last_sample_id FROM batches"
        " WHERE device = ?1 AND boot_id = ?2 AND unsynced > 0",
    /* The id range finds the batch's rows; seq and the device's metrics
     * make sure of them where ids of concurrent writers interleave. */
    [ST_RETIME_SAMPLES] =
        "UPDATE samples SET ts_ms = ?1 + (mono_ms - ?2), time_quality = 3"
        " WHERE id BETWEEN ?3 AND ?4 AND seq = ?5 AND time_quality = 2"
        " AND mono_ms BETWEEN ?2 - ?6 AND ?2 + ?6"
        " AND metric_id IN (SELECT id FROM metrics WHERE device = ?7)",
    [ST_RETIME_DONE] = "UPDATE batches SET unsynced = 0 WHERE device = ?1 AND seq = ?2",
};

struct store_sqlite {
    struct et_store base;       /* first: the front end casts to it */
    sqlite3 *db;
    bool readonly;
    bool in_tx;
    sqlite3_stmt *stmts[ST_COUNT];
};

static struct store_sqlite *to_sqlite(struct et_store *s)
{
    return (struct store_sqlite *)s;
}

/* Map an SQLite result to -errno, logging the database's message. */
static int store_fail(struct store_sqlite *ss, int rc, const char *what)
{
    int primary = rc & 0xff;

    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
        return -EEXIST;   /* callers decide whether that is an error */
    et_error("store", "%s: %s", what, sqlite3_errmsg(ss->db));
    switch (primary) {
    case SQLITE_CONSTRAINT:
        return -EINVAL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    default:
        return -EIO;
    }
}

/* The cached statement for id, reset and with no bindings. */
static int store_stmt(struct store_sqlite *ss, enum store_stmt id, sqlite3_stmt **out)
{
    int rc;

    if (!ss->stmts[id]) {
        rc = sqlite3_prepare_v3(ss->db, store_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                &ss->stmts[id], NULL);
        if (rc != SQLITE_OK)
            return store_fail(ss, rc, "prepare");
    } else {
        sqlite3_reset(ss->stmts[id]);
        sqlite3_clear_bindings(ss->stmts[id]);
    }
    *out = ss->stmts[id];
    return 0;
}

/* Run a statement that returns no rows. */
static int store_exec(struct store_sqlite *ss, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return store_fail(ss, rc, what);
    return 0;
}

static int bind_seq(sqlite3_stmt *st, int col, uint64_t seq)
{
    if (seq > (uint64_t)INT64_MAX)
        return -ERANGE;
    sqlite3_bind_int64(st, col, (int64_t)seq);
    return 0;
}

/* Counters from the wire are unsigned; clamp rather than wrap negative. */
static int64_t clamp_u64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static const char *col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);

    return t ? (const char *)t : "";
}

static uint64_t col_u64(sqlite3_stmt *st, int col)
{
    int64_t v = sqlite3_column_int64(st, col);

    return v < 0 ? 0 : (uint64_t)v;
}

/* ---- open and schema ---------------------------------------------------- */

static int store_pragma_int(struct store_sqlite *ss, const char *sql, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ss->db, sql, -1, &st, NULL);

    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

/* The version and the number of tables, or -errno with err set. */
static int store_read_version(struct store_sqlite *ss, int *version, int *tables, char *err,
                              size_t errlen)
{
    int rc = store_pragma_int(ss, "PRAGMA user_version", version);

    if (rc == SQLITE_OK)
        rc = store_pragma_int(ss, "SELECT COUNT(*) FROM sqlite_master", tables);
    if (rc == SQLITE_OK)
        return 0;
    if ((rc & 0xff) == SQLITE_NOTADB) {
        snprintf(err, errlen, "not an SQLite database");
        return -EPROTO;
    }
    snprintf(err, errlen, "%s", sqlite3_errmsg(ss->db));
    return (rc & 0xff) == SQLITE_BUSY ? -EBUSY : -EIO;
}

/* Refuse what is not ours to read or change. */
static int store_version_ok(int version, int tables, char *err, size_t errlen)
{
    if (version > STORE_SCHEMA_VERSION) {
        snprintf(err, errlen, "schema version %d was made by a newer edgetel"
                 " (this one knows %d)", version, STORE_SCHEMA_VERSION);
        return -EPROTO;
    }
    if (version == 0 && tables > 0) {
        snprintf(err, errlen, "not an edgetel store (a database with other tables)");
        return -EPROTO;
    }
    return 0;
}

/*
 * Create the schema or migrate it to STORE_SCHEMA_VERSION, under the write
 * lock. The version is read again there: two aggregators starting together
 * on one file both get here, and the second finds the first one's work.
 */
static int store_upgrade(struct store_sqlite *ss, char *err, size_t errlen)
{
    int version = 0, tables = 0, ret, rc;
    char sql[64];

    rc = sqlite3_exec(ss->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "locking the store to set up its schema: %s",
                 sqlite3_errmsg(ss->db));
        return (rc & 0xff) == SQLITE_BUSY ? -EBUSY : -EIO;
    }
    ret = store_read_version(ss, &version, &tables, err, errlen);
    if (ret == 0)
        ret = store_version_ok(version, tables, err, errlen);
    if (ret < 0 || version == STORE_SCHEMA_VERSION)
        goto done;
    if (version == 0) {
        rc = sqlite3_exec(ss->db, store_schema, NULL, NULL, NULL);
    } else {
        rc = SQLITE_OK;
        for (int v = version; rc == SQLITE_OK && v < STORE_SCHEMA_VERSION; v++)
            rc = sqlite3_exec(ss->db, store_migrations[v - 1], NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
        rc = sqlite3_exec(ss->db, sql, NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s the schema: %s", version ? "migrating" : "creating",
                 sqlite3_errmsg(ss->db));
        ret = (rc & 0xff) == SQLITE_FULL ? -ENOSPC : -EIO;
    }
done:
    if (ret < 0) {
        sqlite3_exec(ss->db, "ROLLBACK", NULL, NULL, NULL);
        return ret;
    }
    rc = sqlite3_exec(ss->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "committing the schema: %s", sqlite3_errmsg(ss->db));
        sqlite3_exec(ss->db, "ROLLBACK", NULL, NULL, NULL);
        return -EIO;
    }
    if (version > 0 && version < STORE_SCHEMA_VERSION)
        et_info("store", "schema migrated from version %d to %d", version,
                STORE_SCHEMA_VERSION);
    return 0;
}

static int store_check_schema(struct store_sqlite *ss, char *err, size_t errlen)
{
    int version = 0, tables = 0, ret;

    ret = store_read_version(ss, &version, &tables, err, errlen);
    if (ret == 0)
        ret = store_version_ok(version, tables, err, errlen);
    if (ret < 0 || version == STORE_SCHEMA_VERSION)
        return ret;
    if (ss->readonly) {
        if (version >= STORE_SCHEMA_READABLE)
            return 0;
        snprintf(err, errlen, "empty database, not yet an edgetel store");
        return -EPROTO;
    }
    return store_upgrade(ss, err, errlen);
}

static void sqlite_close(struct et_store *s)
{
    struct store_sqlite *ss = to_sqlite(s);

    if (!ss)
        return;
    if (ss->in_tx)
        sqlite3_exec(ss->db, "ROLLBACK", NULL, NULL, NULL);
    for (size_t i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(ss->stmts[i]);
    sqlite3_close_v2(ss->db);
    free(ss);
}

static int sqlite_open(struct et_store **out, const char *path, unsigned flags,
                       char *err, size_t errlen)
{
    struct store_sqlite *ss;
    struct stat sb;
    int oflags, rc, ret;

    *out = NULL;
    if (!path || !*path) {
        snprintf(err, errlen, "no database path given");
        return -EINVAL;
    }
    ss = calloc(1, sizeof(*ss));
    if (!ss) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    ss->base.ops = &et_store_sqlite_ops;
    ss->readonly = flags & ET_STORE_READONLY;

    if (ss->readonly) {
        /* SQLite's own message for a missing file is "unable to open
         * database file"; say which of the likely causes it is. */
        if (stat(path, &sb) != 0) {
            ret = -errno;
            snprintf(err, errlen, "%s", errno == ENOENT ? "no such file" : strerror(errno));
            goto fail;
        }
        oflags = SQLITE_OPEN_READONLY;
    } else {
        oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    }
    rc = sqlite3_open_v2(path, &ss->db, oflags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        ret = (rc & 0xff) == SQLITE_CANTOPEN ? -EACCES : -EIO;
        snprintf(err, errlen, "%s%s", ss->db ? sqlite3_errmsg(ss->db) : "out of memory",
                 (rc & 0xff) == SQLITE_CANTOPEN ? " (does the directory exist and"
                 " may this user write there?)" : "");
        goto fail;
    }
    sqlite3_extended_result_codes(ss->db, 1);
    sqlite3_busy_timeout(ss->db, STORE_BUSY_TIMEOUT_MS);

    if (!ss->readonly) {
        rc = sqlite3_exec(ss->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                          " PRAGMA foreign_keys = ON;", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            ret = (rc & 0xff) == SQLITE_NOTADB ? -EPROTO : -EIO;
            snprintf(err, errlen, "%s", (rc & 0xff) == SQLITE_NOTADB
                     ? "not an SQLite database" : sqlite3_errmsg(ss->db));
            goto fail;
        }
    }
    ret = store_check_schema(ss, err, errlen);
    if (ret < 0)
        goto fail;
    *out = &ss->base;
    return 0;

fail:
    sqlite_close(&ss->base);
    return ret;
}

/* ---- transactions ------------------------------------------------------- */

static int sqlite_begin(struct et_store *s)
{
    struct store_sqlite *ss = to_sqlite(s);
    sqlite3_stmt *st = NULL;
    int ret;

    if (ss->in_tx)
        return -EALREADY;
    ret = store_stmt(ss, ST_BEGIN, &st);
    if (ret == 0)
        ret = store_exec(ss, st, "begin");
    if (ret == 0)
        ss->in_tx = true;
    return ret;
}

static int sqlite_rollback(struct et_store *s)
{
    struct store_sqlite *ss = to_sqlite(s);
    sqlite3_stmt *st = NULL;
    int ret;

    if (!ss->in_tx)
        return 0;
    ss->in_tx = false;
    /* An error inside the transaction may already have ended it. */
    if (sqlite3_get_autocommit(ss->db))
        return 0;
    ret = store_stmt(ss, ST_ROLLBACK, &st);
    if (ret == 0)
        ret = store_exec(ss, st, "rollback");
    return ret;
}

static int sqlite_commit(struct et_store *s)
{
    struct store_sqlite *ss = to_sqlite(s);
    sqlite3_stmt *st = NULL;
    int ret;

    if (!ss->in_tx)
        return -EINVAL;
    ret = store_stmt(ss, ST_COMMIT, &st);
    if (ret == 0)
        ret = store_exec(ss, st, "commit");
    if (ret < 0) {
        sqlite_rollback(s);
        return ret;
    }
    ss->in_tx = false;
    return 0;
}

/* ---- writes ------------------------------------------------------------- */

static int sqlite_batch_seen(struct et_store *s, const char *device, uint64_t seq, bool *seen)
{
    struct store_sqlite *ss = to_sqlite(s);
    sqlite3_stmt *st = NULL;
    int ret, rc;

    ret = store_stmt(ss, ST_BATCH_SEEN, &st);
    if (ret < 0)
        return ret;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    if (bind_seq(st, 2, seq) < 0) {
        *seen = false;   /* such a seq cannot have been stored */
        return 0;
    }
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_fail(ss, rc, "looking up a batch");
    *seen = rc == SQLITE_ROW;
    return 0;
}

/* Insert the device row if it is new; *created says whether it was. */
static int store_device_ensure(struct store_sqlite *ss, const char *device, int64_t now_ms,
                               bool *created)
{
    sqlite3_stmt *st = NULL;
    int ret;

    ret = store_stmt(ss, ST_DEVICE_INSERT, &st);
    if (ret < 0)
        return ret;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    ret = store_exec(ss, st, "adding a device");
    if (ret < 0)
        return ret;
    if (created)
        *created = sqlite3_changes(ss->db) > 0;
    return 0;
}

static int sqlite_device_seen(struct et_store *s, const char *device, int64_t now_ms,
                              const char *boot_id_hex, uint64_t add_samples, bool *created)
{
    struct store_sqlite *ss = to_sqlite(s);
    sqlite3_stmt *st = NULL;
    int ret;

    ret = store_device_ensure(ss, device, now_ms, created);
    if (ret < 0)
        return ret;
    ret = store_stmt(ss, ST_DEVICE_SEEN, &st);
    if (ret < 0)
        return ret;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_text(st, 3, boot_id_hex ? boot_id_hex : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, clamp_u64(add_samples));
    return store_exec(ss, st, "updating a device");
}

static int sqlite_metric_id(struct et_store *s, const char *device, const char *name,
                            const char *unit, int64_t *id)
{
    struct store_sqlite *ss = to_sqlite(s);
    sqlite3_stmt *st = NULL;
    int64_t found;
    bool same_unit;
    int ret, rc;

    ret = store_stmt(ss, ST_METRIC_GET, &st);
    if (ret < 0)
        return ret;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        found = sqlite3_column_int64(st, 0);
        same_unit = strcmp(col_text(st, 1), unit) == 0;
        sqlite3_reset(st);
        *id = found;
        if (same_unit)
            return 0;
        /* A driver changed its unit: keep the latest, as the samples
         * from now on are in it. */
        ret = store_stmt(ss, ST_METRIC_UNIT, &st);
        if (ret < 0)
            return ret;
        sqlite3_bind_int64(st, 1, found);
        sqlite3_bind_text(st, 2, unit, -1, SQLITE_STATIC);
        return store_exec(ss, st, "updating a metric's unit");
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return store_fail(ss, rc, "looking up a metric");

    ret = store_stmt(ss, ST_METRIC_INSERT, &st);
    if (ret < 0)
        return ret;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, unit, -1, SQLITE_STATIC);
    ret = store_exec(ss, st, "adding a metric");
    if (ret < 0)
        return ret;
    *id = sqlite3_last_insert_rowid(ss->db);
    return 0;
}

static int sqlite_metric_tags(struct et_store *s, int64_t id, const char *tags)
{
    struct store_sqlite *ss = to_sqlite(s);
    sqlite3_stmt *st = NULL;
    int ret = store_stmt(ss, ST_METRIC_TAGS, &st);

    if (ret < 0)
        return ret;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, tags, -1, SQLITE_STATIC);
    return store_exec(ss, st, "updating a metric's tags");
}

static int sqlite_insert_batch(struct et_store *s, const struct et_store_batch *b)
{
    struct store_sqlite *ss = to_sqlite(s);
    sqlite3_stmt *st = NULL;
    int ret;

    ret = store_stmt(ss, ST_BATCH_INSERT, &st);
    if (ret < 0)
        return ret;
    sqlite3_bind_text(st, 1, b->device, -1, SQLITE_STATIC);
    if (bind_seq(st, 2, b->seq) < 0)
        return -ERANGE;
    sqlite3_bind_int64(st, 3, b->received_ms);
    sqlite3_bind_int64(st, 4, b->n_samples);
    sqlite3_bind_int(st, 5, b->historical);
    sqlite3_bind_text(st, 6, b->boot_id_hex ? b->boot_id_hex : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, (int)b->time_quality);
    sqlite3_bind_int64(st, 8, b->first_sample_id);
    sqlite3_bind_int64(st, 9, b->last_sample_id);
    sqlite3_bind_int64(st, 10, b->unsynced_samples);
    return store_exec(ss, st, "storing a batch");
}

static int sqlite_insert_sample(struct et_store *s, const struct et_store_sample *smp,
                                int64_t *id)
{
    struct store_sqlite *ss = to_sqlite(s);
    sqlite3_stmt *st = NULL;
    int ret;

    ret = store_stmt(ss, ST_SAMPLE_INSERT, &st);
    if (ret < 0)
        return ret;
    sqlite3_bind_int64(st, 1, smp->metric_id);
    sqlite3_bind_int64(st, 2, smp->ts_ms);
    sqlite3_bind_int64(st, 3, smp->mono_ms);
    sqlite3_bind_int(st, 4, (int)smp->value.type);
    switch (smp->value.type) {
    case ET_TYPE_F64:
        sqlite3_bind_double(st, 5, smp->value.u.f64);
        break;
    case ET_TYPE_I64:
        sqlite3_bind_int64(st, 6, smp->value.u.i64);
        break;
    case ET_TYPE_BOOL:
        sqlite3_bind_int(st, 7, smp->value.u.b);
        break;
    case ET_TYPE_STR:
        sqlite3_bind_text(st, 8, smp->value.u.str ? smp->value.u.str : "", -1, SQLITE_STATIC);
        break;
    default:
        return -EINVAL;
    }
    sqlite3_bind_int(st, 9, (int)smp->time_quality);
    if (bind_seq(st, 10, smp->seq) < 0)
        return -ERANGE;
    ret = store_exec(ss, st, "storing a sample");
    if (ret == 0 && id)
        *id = sqlite3_last_insert_rowid(ss->db);
    return ret;
}

static int sqlite_advance_ack(struct et_store *s, const char *device, uint64_t floor,
                              uint64_t *acked_through)
{
    struct store_sqlite *ss = to_sqlite(s);
    sqlite3_stmt *st = NULL;
    uint64_t start, ack;
    bool gap = false;
    int ret, rc, rows;

    ret = store_stmt(ss, ST_ACK_GET, &st);
    if (ret < 0)
        return ret;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        if (rc == SQLITE_DONE)
            return -ENOENT;
        return store_fail(ss, rc, "reading a device's ack");
    }
    start = col_u64(st, 0);
    sqlite3_reset(st);

    ack = start;
    if (floor > ack)
        ack = floor > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : floor;
    /* Walk the stored seqs above the ack in pages until the first gap. */
    while (!gap) {
        ret = store_stmt(ss, ST_ACK_SCAN, &st);
        if (ret < 0)
            return ret;
        sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)ack);
        sqlite3_bind_int(st, 3, STORE_ACK_SCAN_ROWS);
        rows = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            rows++;
            if (col_u64(st, 0) != ack + 1) {
                gap = true;
                break;
            }
            ack++;
        }
        sqlite3_reset(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return store_fail(ss, rc, "scanning a device's batches");
        if (rows < STORE_ACK_SCAN_ROWS)
            break;
    }

    if (ack != start) {
        ret = store_stmt(ss, ST_ACK_SET, &st);
        if (ret < 0)
            return ret;
        sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)ack);
        ret = store_exec(ss, st, "writing a device's ack");
        if (ret < 0)
            return ret;
    }
    *acked_through = ack;
    return 0;
}

static int sqlite_device_status(struct et_store *s, const struct et_store_status *stat_in,
                                int64_t now_ms, bool *created, bool *changed)
{
    struct store_sqlite *ss = to_sqlite(s);
    sqlite3_stmt *st = NULL;
    bool was_online = false, had_status = false;
    int ret, rc;

    ret = store_device_ensure(ss, stat_in->device, now_ms, created);
    if (ret < 0)
        return ret;
    ret = store_stmt(ss, ST_STATUS_GET, &st);
    if (ret < 0)
        return ret;
    sqlite3_bind_text(st, 1, stat_in->device, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        was_online = sqlite3_column_int(st, 0) != 0;
        had_status = sqlite3_column_int(st, 1) != 0;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return store_fail(ss, rc, "reading a device's status");
    if (changed)
        *changed = !had_status || was_online != stat_in->online;
    ret = store_stmt(ss, ST_STATUS, &st);
    if (ret < 0)
        return ret;
    sqlite3_bind_text(st, 1, stat_in->device, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, stat_in->online);
    sqlite3_bind_int64(st, 3, now_ms);
    sqlite3_bind_text(st, 4, stat_in->boot_id_hex ? stat_in->boot_id_hex : "", -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 5, stat_in->agent_version ? stat_in->agent_version : "", -1,
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, clamp_u64(stat_in->outbox_batches));
    sqlite3_bind_int64(st, 7, clamp_u64(stat_in->dropped_samples));
    sqlite3_bind_int(st, 8, stat_in->clock_synced);
    sqlite3_bind_text(st, 9, stat_in->reason ? stat_in->reason : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, stat_in->device_wall_ms);
    return store_exec(ss, st, "recording a device status");
}

/* ---- queries ------------------------------------------------------------ */

static int sqlite_devices(struct et_store *s, const char *only, et_store_device_cb cb,
                          void *ctx)
{
    struct store_sqlite *ss = to_sqlite(s);
    struct et_store_device d;
    sqlite3_stmt *st = NULL;
    int ret, rc;

    ret = store_stmt(ss, ST_DEVICES, &st);
    if (ret < 0)
        return ret;
    if (only)
        sqlite3_bind_text(st, 1, only, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        d = (struct et_store_device){
            .id = col_text(st, 0),
            .online = sqlite3_column_int(st, 1) != 0,
            .first_seen_ms = sqlite3_column_int64(st, 2),
            .last_seen_ms = sqlite3_column_int64(st, 3),
            .boot_id_hex = col_text(st, 4),
            .agent_version = col_text(st, 5),
            .acked_through = col_u64(st, 6),
            .samples_stored = col_u64(st, 7),
            .batches_stored = col_u64(st, 8),
            .has_status = sqlite3_column_int(st, 9) != 0,
            .outbox_batches = col_u64(st, 10),
            .dropped_samples = col_u64(st, 11),
            .clock_synced = sqlite3_column_int(st, 12) != 0,
            .reason = col_text(st, 13),
        };
        ret = cb(ctx, &d);
        if (ret != 0) {
            sqlite3_reset(st);
            return ret;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return store_fail(ss, rc, "listing devices");
    return 0;
}

static int sqlite_metrics(struct et_store *s, const char *device, et_store_metric_cb cb,
                          void *ctx)
{
    struct store_sqlite *ss = to_sqlite(s);
    struct et_store_metric m;
    sqlite3_stmt *st = NULL;
    int ret, rc;

    ret = store_stmt(ss, ST_METRICS, &st);
    if (ret < 0)
        return ret;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        m = (struct et_store_metric){
            .id = sqlite3_column_int64(st, 0),
            .device = col_text(st, 1),
            .name = col_text(st, 2),
            .unit = col_text(st, 3),
            .samples = col_u64(st, 4),
            .first_ts_ms = sqlite3_column_int64(st, 5),
            .last_ts_ms = sqlite3_column_int64(st, 6),
            .tags = col_text(st, 7),
        };
        ret = cb(ctx, &m);
        if (ret != 0) {
            sqlite3_reset(st);
            return ret;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return store_fail(ss, rc, "listing metrics");
    return 0;
}

/* Read a row of SAMPLE_COLUMNS. */
static void store_read_sample(sqlite3_stmt *st, struct et_store_sample *smp)
{
    *smp = (struct et_store_sample){
        .id = sqlite3_column_int64(st, 0),
        .metric_id = sqlite3_column_int64(st, 1),
        .device = col_text(st, 2),
        .metric = col_text(st, 3),
        .unit = col_text(st, 4),
        .ts_ms = sqlite3_column_int64(st, 5),
        .mono_ms = sqlite3_column_int64(st, 6),
        .value.type = (enum et_type)sqlite3_column_int(st, 7),
        .time_quality = (enum et_time_quality)sqlite3_column_int(st, 12),
        .seq = col_u64(st, 13),
    };
    switch (smp->value.type) {
    case ET_TYPE_F64:
        smp->value.u.f64 = sqlite3_column_double(st, 8);
        break;
    case ET_TYPE_I64:
        smp->value.u.i64 = sqlite3_column_int64(st, 9);
        break;
    case ET_TYPE_BOOL:
        smp->value.u.b = sqlite3_column_int(st, 10) != 0;
        break;
    case ET_TYPE_STR:
    default:
        smp->value.type = ET_TYPE_STR;
        smp->value.u.str = col_text(st, 11);
        break;
    }
}

static int store_each_sample(struct store_sqlite *ss, sqlite3_stmt *st,
                             et_store_sample_cb cb, void *ctx)
{
    struct et_store_sample smp;
    int ret, rc;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_read_sample(st, &smp);
        ret = cb(ctx, &smp);
        if (ret != 0) {
            sqlite3_reset(st);
            return ret;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return store_fail(ss, rc, "reading samples");
    return 0;
}

static int sqlite_query(struct et_store *s, const struct et_store_query *q,
                        et_store_sample_cb cb, void *ctx)
{
    struct store_sqlite *ss = to_sqlite(s);
    sqlite3_stmt *st = NULL;
    int ret;

    ret = store_stmt(ss, ST_QUERY, &st);
    if (ret < 0)
        return ret;
    sqlite3_bind_text(st, 1, q->device, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, q->metric, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, q->since_ms);
    sqlite3_bind_int64(st, 4, q->until_ms);
    return store_each_sample(ss, st, cb, ctx);
}

static int sqlite_samples_after(struct et_store *s, int64_t after_id, const char *device,
                                unsigned limit, et_store_sample_cb cb, void *ctx)
{
    struct store_sqlite *ss = to_sqlite(s);
    sqlite3_stmt *st = NULL;
    int ret;

    ret = store_stmt(ss, ST_AFTER, &st);
    if (ret < 0)
        return ret;
    sqlite3_bind_int64(st, 1, after_id);
    if (device)
        sqlite3_bind_text(st, 2, device, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, limit);
    return store_each_sample(ss, st, cb, ctx);
}

static int sqlite_last_sample_id(struct et_store *s, int64_t *id)
{
    struct store_sqlite *ss = to_sqlite(s);
    sqlite3_stmt *st = NULL;
    int ret, rc;

    ret = store_stmt(ss, ST_LAST_ID, &st);
    if (ret < 0)
        return ret;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return store_fail(ss, rc, "reading the last sample id");
    return 0;
}

/* ---- clock re-timing ---------------------------------------------------- */

static int sqlite_clock_get(struct et_store *s, const char *device, struct et_store_clock *out)
{
    struct store_sqlite *ss = to_sqlite(s);
    sqlite3_stmt *st = NULL;
    int ret, rc;

    memset(out, 0, sizeof(*out));
    ret = store_stmt(ss, ST_CLOCK_GET, &st);
    if (ret < 0)
        return ret;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(out->boot_id_hex, sizeof(out->boot_id_hex), "%s", col_text(st, 0));
        out->base_wall_ms = sqlite3_column_int64(st, 1);
        out->base_mono_ms = sqlite3_column_int64(st, 2);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_fail(ss, rc, "reading a device's clock");
    return 0;
}

struct retime_batch {
    int64_t seq, first, last;
};

static int sqlite_retime(struct et_store *s, const char *device, const struct et_store_clock *clk,
                         uint64_t *retimed)
{
    struct store_sqlite *ss = to_sqlite(s);
    struct retime_batch *list = NULL, *grown;
    size_t n = 0, cap = 0;
    uint64_t total = 0;
    sqlite3_stmt *st = NULL;
    int ret, rc;

    /* Collect first: the batches rows change below. Only batches with
     * samples still waiting are in the partial index, so this is small. */
    ret = store_stmt(ss, ST_RETIME_FIND, &st);
    if (ret < 0)
        return ret;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, clk->boot_id_hex, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            grown = realloc(list, cap * sizeof(*list));
            if (!grown) {
                sqlite3_reset(st);
                ret = -ENOMEM;
                goto out;
            }
            list = grown;
        }
        list[n].seq = sqlite3_column_int64(st, 0);
        list[n].first = sqlite3_column_int64(st, 1);
        list[n].last = sqlite3_column_int64(st, 2);
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        ret = store_fail(ss, rc, "finding samples to re-time");
        goto out;
    }

    for (size_t i = 0; i < n; i++) {
        ret = store_stmt(ss, ST_RETIME_SAMPLES, &st);
        if (ret < 0)
            goto out;
        sqlite3_bind_int64(st, 1, clk->base_wall_ms);
        sqlite3_bind_int64(st, 2, clk->base_mono_ms);
        sqlite3_bind_int64(st, 3, list[i].first);
        sqlite3_bind_int64(st, 4, list[i].last);
        sqlite3_bind_int64(st, 5, list[i].seq);
        sqlite3_bind_int64(st, 6, ET_STORE_RETIME_SPAN_MS);
        sqlite3_bind_text(st, 7, device, -1, SQLITE_STATIC);
        ret = store_exec(ss, st, "re-timing samples");
        if (ret < 0)
            goto out;
        total += (uint64_t)sqlite3_changes(ss->db);

        ret = store_stmt(ss, ST_RETIME_DONE, &st);
        if (ret < 0)
            goto out;
        sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, list[i].seq);
        ret = store_exec(ss, st, "marking a batch re-timed");
        if (ret < 0)
            goto out;
    }

    ret = store_stmt(ss, ST_CLOCK_SET, &st);
    if (ret < 0)
        goto out;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, clk->boot_id_hex, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, clk->base_wall_ms);
    sqlite3_bind_int64(st, 4, clk->base_mono_ms);
    ret = store_exec(ss, st, "recording a device's clock");
    if (ret == 0 && retimed)
        *retimed = total;
out:
    free(list);
    return ret;
}

const struct et_store_ops et_store_sqlite_ops = {
    .type = "sqlite",
    .open = sqlite_open,
    .close = sqlite_close,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .batch_seen = sqlite_batch_seen,
    .device_seen = sqlite_device_seen,
    .metric_id = sqlite_metric_id,
    .insert_batch = sqlite_insert_batch,
    .insert_sample = sqlite_insert_sample,
    .advance_ack = sqlite_advance_ack,
    .device_status = sqlite_device_status,
    .devices = sqlite_devices,
    .metrics = sqlite_metrics,
    .query = sqlite_query,
    .samples_after = sqlite_samples_after,
    .last_sample_id = sqlite_last_sample_id,
    .clock_get = sqlite_clock_get,
    .retime = sqlite_retime,
    .metric_tags = sqlite_metric_tags,
};
