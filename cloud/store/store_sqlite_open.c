/*
 * The SQLite store backend: the default for one site. This file makes and
 * opens the database (schema, versions, migrations); the writer and the
 * reader are store_sqlite_writer.c and store_sqlite_reader.c.
 *
 * WAL mode so edgetelctl reads while the aggregator writes, and
 * synchronous=FULL: an Ack tells the device to delete its copy, so a commit
 * must survive a power cut, not only a crash of the process.
 *
 * The SQL is kept close to what PostgreSQL accepts (ON CONFLICT, partial
 * indexes) so the PostgreSQL backend can follow it; the differences are
 * two-argument MAX() (GREATEST there) and last_insert_rowid (RETURNING id).
 * Sequence numbers are unsigned 64-bit on the wire and signed 64-bit
 * INTEGER here; seqs above ET_STORE_SEQ_MAX are refused with -ERANGE.
 */
#include "store_sqlite.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "edgetel/log.h"
#include "edgetel/sqlite.h"

/* user_version of the schema this code writes; read-only handles also
 * read older versions back to STORE_SCHEMA_READABLE (their queries only use
 * columns every such version has). */
#define STORE_SCHEMA_VERSION 7
#define STORE_SCHEMA_READABLE 1
/* How long a writer waits for another (another aggregator, a checkpoint). */
#define STORE_BUSY_TIMEOUT_MS 10000
/*
 * A writer's page cache in KiB (negative: SQLite's way of saying KiB) and
 * WAL pages between checkpoints. A group of batches touches the samples
 * index (metric, time) at as many places as it has metrics, so with the
 * defaults (2 MiB, 1000 pages) the same pages were read back from the OS
 * and written to the WAL and the file again and again once a store outgrew
 * them: bench/store.sh (1.2 million samples of 6,000 metrics) went from
 * about 110,000 samples a second to about 170,000 with 64 MiB and a
 * checkpoint every 64 MiB of WAL.
 */
#define STORE_CACHE_KIB "-65536"
#define STORE_WAL_PAGES "16384"
/* The longest the check at open may take before the aggregator starts
 * anyway, having checked part of the file (see store_check_damage). */
#define STORE_CHECK_MAX_MS 20000

/*
 * The batches table, the dedupe record: one row per (device, stream, seq).
 * v2 added where its samples are and how many still wait for re-timing;
 * v4 the stream ('' the legacy stream) into the key. Written once for the
 * schema and the v4 migration, which rebuilds the table under its key.
 */
#define STORE_BATCHES_COLUMNS \
    " (device TEXT NOT NULL," \
    "  stream TEXT NOT NULL DEFAULT ''," \
    "  seq INTEGER NOT NULL," \
    "  received_ms INTEGER NOT NULL," \
    "  n_samples INTEGER NOT NULL," \
    "  historical INTEGER NOT NULL," \
    "  boot_id TEXT NOT NULL," \
    "  time_quality INTEGER NOT NULL," \
    "  first_sample_id INTEGER NOT NULL DEFAULT 0," \
    "  last_sample_id INTEGER NOT NULL DEFAULT 0," \
    "  unsynced INTEGER NOT NULL DEFAULT 0," \
    "  PRIMARY KEY (device, stream, seq));"
/* Partial: holds only batches with samples waiting to be re-timed. */
#define STORE_BATCHES_INDEX \
    "CREATE INDEX batches_unsynced ON batches (device, boot_id) WHERE unsynced > 0;"
/* v5: batches kept aside whole (impossible sample times), with why; a
 * quarantined seq counts as stored for the dedupe and the ack. */
#define STORE_QUARANTINE_TABLE \
    "CREATE TABLE quarantine (" \
    "  device TEXT NOT NULL," \
    "  stream TEXT NOT NULL," \
    "  seq INTEGER NOT NULL," \
    "  received_ms INTEGER NOT NULL," \
    "  n_samples INTEGER NOT NULL," \
    "  reason TEXT NOT NULL," \
    "  payload BLOB NOT NULL," \
    "  PRIMARY KEY (device, stream, seq));"
/* v7: streams' metric dictionaries (Batch.dict_id): which metric each
 * index of a device's dictionary is, and how its compact values read. */
#define STORE_DICTS_TABLE \
    "CREATE TABLE dictionaries (" \
    "  device TEXT NOT NULL," \
    "  stream TEXT NOT NULL," \
    "  dict_id INTEGER NOT NULL," \
    "  idx INTEGER NOT NULL," \
    "  metric_id INTEGER NOT NULL," \
    "  type INTEGER NOT NULL," \
    "  scale REAL NOT NULL," \
    "  PRIMARY KEY (device, stream, dict_id, idx)) WITHOUT ROWID;"
/* v4: one row per (device, stream) ever heard of, with its cumulative ack. */
#define STORE_STREAMS_TABLE \
    "CREATE TABLE streams (" \
    "  device TEXT NOT NULL," \
    "  stream TEXT NOT NULL," \
    "  started_ms INTEGER NOT NULL," \
    "  acked_through INTEGER NOT NULL DEFAULT 0," \
    "  PRIMARY KEY (device, stream));"

/*
 * v5: pushed configuration (store_config.h). desired_configs is keyed by
 * version alone: one counter for the fleet. The history's unique key is
 * what makes recording a report idempotent (a retained report replayed,
 * two aggregators recording the same one).
 */
#define STORE_CONFIG_REPORT_COLUMNS \
    "  version INTEGER NOT NULL," \
    "  result INTEGER NOT NULL," \
    "  reason TEXT NOT NULL DEFAULT ''," \
    "  device_ms INTEGER NOT NULL," \
    "  clock_synced INTEGER NOT NULL," \
    "  running_version INTEGER NOT NULL," \
    "  received_ms INTEGER NOT NULL"
#define STORE_CONFIG_TABLES \
    "CREATE TABLE desired_configs (" \
    "  version INTEGER PRIMARY KEY," \
    "  target_kind TEXT NOT NULL CHECK (target_kind IN ('device', 'group'))," \
    "  target TEXT NOT NULL," \
    "  signed BLOB NOT NULL," \
    "  key_id TEXT NOT NULL," \
    "  deadline_ms INTEGER NOT NULL DEFAULT 0," \
    "  created_ms INTEGER NOT NULL," \
    "  pushed_by TEXT NOT NULL DEFAULT ''," \
    "  source TEXT NOT NULL DEFAULT '');" \
    "CREATE INDEX desired_configs_target ON desired_configs (target_kind, target, version);" \
    "CREATE TABLE config_reports (" \
    "  device TEXT PRIMARY KEY," \
    STORE_CONFIG_REPORT_COLUMNS ");" \
    "CREATE TABLE config_report_history (" \
    "  id INTEGER PRIMARY KEY," \
    "  device TEXT NOT NULL," \
    STORE_CONFIG_REPORT_COLUMNS "," \
    "  UNIQUE (device, version, result, device_ms));" \
    "CREATE INDEX config_report_history_device ON config_report_history (device, id);"
/* From v4: a migration of its own, so that it is renumbered as a whole
 * when another migration lands first. */
#define STORE_MIGRATE_CONFIG \
    "ALTER TABLE devices ADD COLUMN config_groups TEXT NOT NULL DEFAULT '';" \
    "ALTER TABLE devices ADD COLUMN config_version INTEGER NOT NULL DEFAULT 0;" \
    STORE_CONFIG_TABLES

static const char store_schema[] =
    "CREATE TABLE devices ("
    "  id TEXT PRIMARY KEY,"
    "  online INTEGER NOT NULL DEFAULT 0,"
    "  first_seen_ms INTEGER NOT NULL,"
    "  last_seen_ms INTEGER NOT NULL,"
    "  boot_id TEXT NOT NULL DEFAULT '',"
    "  agent_version TEXT NOT NULL DEFAULT '',"
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
    "  clock_mono_ms INTEGER NOT NULL DEFAULT 0,"
    /* v4: the current stream (its ack is in streams). */
    "  stream TEXT NOT NULL DEFAULT '',"
    /* v5: what its last online Status said of its config (store_config.h). */
    "  config_groups TEXT NOT NULL DEFAULT '',"
    "  config_version INTEGER NOT NULL DEFAULT 0);"
    STORE_STREAMS_TABLE
    "CREATE TABLE batches" STORE_BATCHES_COLUMNS
    STORE_BATCHES_INDEX
    STORE_QUARANTINE_TABLE
    STORE_DICTS_TABLE
    "CREATE TABLE metrics ("
    "  id INTEGER PRIMARY KEY,"
    "  device TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  unit TEXT NOT NULL,"
    /* v3: the collector's tags, canonical "k=v,k2=v2" (latest wins). */
    "  tags TEXT NOT NULL DEFAULT '',"
    "  UNIQUE (device, name));"
    /* One value column per type; vtype (enum et_type) says which is set.
     * seq is the batch's within its stream (the batch row says which). */
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
    "CREATE INDEX samples_metric_ts ON samples (metric_id, ts_ms);"
    STORE_CONFIG_TABLES;

/*
 * Migrations: store_migrations[v - 1] takes a store from version v to v + 1.
 * Rows stored before v2 carry no re-timing record (unsynced = 0), so their
 * samples keep the quality they arrived with. v4 puts every stored batch
 * and each device's ack into the legacy stream ''; the batches table is
 * rebuilt because its key grows (SQLite cannot alter a primary key), every
 * row copied. v5 adds pushed configs (STORE_MIGRATE_CONFIG), v6 the
 * quarantine table, v7 the streams' metric dictionaries.
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
    STORE_STREAMS_TABLE
    "INSERT INTO streams (device, stream, started_ms, acked_through)"
    "  SELECT id, '', first_seen_ms, acked_through FROM devices;"
    "ALTER TABLE devices ADD COLUMN stream TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE devices DROP COLUMN acked_through;"
    "CREATE TABLE batches_v4" STORE_BATCHES_COLUMNS
    "INSERT INTO batches_v4 (device, stream, seq, received_ms, n_samples, historical, boot_id,"
    "  time_quality, first_sample_id, last_sample_id, unsynced)"
    "  SELECT device, '', seq, received_ms, n_samples, historical, boot_id, time_quality,"
    "  first_sample_id, last_sample_id, unsynced FROM batches;"
    "DROP TABLE batches;"
    "ALTER TABLE batches_v4 RENAME TO batches;"
    STORE_BATCHES_INDEX,
    STORE_MIGRATE_CONFIG,
    STORE_QUARANTINE_TABLE,
    STORE_DICTS_TABLE,
};

int store_sqlite_stmt(struct store_sqlite *ss, sqlite3_stmt **slot, const char *sql,
                      const struct store_arg *args, size_t n, sqlite3_stmt **out)
{
    int rc;

    if (!*slot) {
        rc = sqlite3_prepare_v3(ss->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
        if (rc != SQLITE_OK)
            return store_sqlite_failed(ss, et_sqlite_errno(ss->db, rc), "prepare");
    } else {
        sqlite3_reset(*slot);
        sqlite3_clear_bindings(*slot);
    }
    /* The values are borrowed until the statement has run: SQLITE_STATIC. */
    for (size_t i = 0; i < n; i++) {
        int col = (int)i + 1;

        switch (args[i].type) {
        case STORE_ARG_TEXT:
            sqlite3_bind_text(*slot, col, args[i].v.text ? args[i].v.text : "", -1,
                              SQLITE_STATIC);
            break;
        case STORE_ARG_INT:
            sqlite3_bind_int64(*slot, col, args[i].v.i);
            break;
        case STORE_ARG_REAL:
            sqlite3_bind_double(*slot, col, args[i].v.real);
            break;
        case STORE_ARG_BLOB:
            sqlite3_bind_blob64(*slot, col, args[i].v.blob.p, args[i].v.blob.n, SQLITE_STATIC);
            break;
        case STORE_ARG_NULL:
            break;   /* cleared above */
        }
    }
    *out = *slot;
    return 0;
}

int store_sqlite_failed(struct store_sqlite *ss, int ret, const char *what)
{
    if (ret < 0 && ret != -EEXIST && ret != -ENOENT) {
        snprintf(ss->last_error, sizeof(ss->last_error), "%s: %s", what,
                 sqlite3_errmsg(ss->db));
        et_log(ss->readonly ? ET_LOG_ERROR : ET_LOG_DEBUG, "store", "%s", ss->last_error);
    }
    return ret;
}

int store_sqlite_rows(struct store_sqlite *ss, sqlite3_stmt *st, et_sqlite_row_fn fn,
                      struct store_rows *rows, const char *what)
{
    int ret = et_sqlite_each_row(st, fn, rows);

    return rows->stopped ? ret : store_sqlite_failed(ss, ret, what);
}

/* ---- schema ------------------------------------------------------------- */

/* The version and the number of tables, or -errno with err set. */
static int store_read_version(struct store_sqlite *ss, int64_t *version, int64_t *tables,
                              char *err, size_t errlen)
{
    int rc = et_sqlite_int(ss->db, "PRAGMA user_version", version);

    if (rc == SQLITE_OK)
        rc = et_sqlite_int(ss->db, "SELECT COUNT(*) FROM sqlite_master", tables);
    if (rc == SQLITE_OK)
        return 0;
    if ((rc & 0xff) == SQLITE_NOTADB) {
        snprintf(err, errlen, "not an SQLite database");
        return -EPROTO;
    }
    snprintf(err, errlen, "%s", sqlite3_errmsg(ss->db));
    return et_sqlite_errno(ss->db, rc);
}

/* Refuse what is not ours to read or change. */
static int store_version_ok(int64_t version, int64_t tables, char *err, size_t errlen)
{
    if (version > STORE_SCHEMA_VERSION) {
        snprintf(err, errlen, "schema version %lld was made by a newer edgetel"
                 " (this one knows %d)", (long long)version, STORE_SCHEMA_VERSION);
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
    int64_t version = 0, tables = 0;
    int ret, rc;
    char sql[64];

    rc = sqlite3_exec(ss->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "locking the store to set up its schema: %s",
                 sqlite3_errmsg(ss->db));
        return et_sqlite_errno(ss->db, rc);
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
        for (int64_t v = version; rc == SQLITE_OK && v < STORE_SCHEMA_VERSION; v++)
            rc = sqlite3_exec(ss->db, store_migrations[v - 1], NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
        rc = sqlite3_exec(ss->db, sql, NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s the schema: %s", version ? "migrating" : "creating",
                 sqlite3_errmsg(ss->db));
        ret = et_sqlite_errno(ss->db, rc);
    }
done:
    if (ret < 0) {
        sqlite3_exec(ss->db, "ROLLBACK", NULL, NULL, NULL);
        return ret;
    }
    rc = sqlite3_exec(ss->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "committing the schema: %s", sqlite3_errmsg(ss->db));
        ret = et_sqlite_errno(ss->db, rc);
        sqlite3_exec(ss->db, "ROLLBACK", NULL, NULL, NULL);
        return ret;
    }
    if (version > 0 && version < STORE_SCHEMA_VERSION)
        et_info("store", "schema migrated from version %lld to %d", (long long)version,
                STORE_SCHEMA_VERSION);
    return 0;
}

static int store_check_schema(struct store_sqlite *ss, char *err, size_t errlen)
{
    int64_t version = 0, tables = 0;
    int ret;

    /* Both numbers from one snapshot: between two separate reads another
     * aggregator may commit a new store's schema, and "version 0 with
     * tables" would then look like somebody else's database. */
    sqlite3_exec(ss->db, "BEGIN", NULL, NULL, NULL);
    ret = store_read_version(ss, &version, &tables, err, errlen);
    sqlite3_exec(ss->db, "COMMIT", NULL, NULL, NULL);
    if (ret == 0)
        ret = store_version_ok(version, tables, err, errlen);
    ss->version = version;
    if (ret < 0 || version == STORE_SCHEMA_VERSION)
        return ret;
    if (ss->readonly) {
        if (version >= STORE_SCHEMA_READABLE)
            return 0;
        snprintf(err, errlen, "empty database, not yet an edgetel store");
        return -EPROTO;
    }
    ret = store_upgrade(ss, err, errlen);
    if (ret == 0)
        ss->version = STORE_SCHEMA_VERSION;
    return ret;
}

/* ---- damage ------------------------------------------------------------- */

/*
 * A damaged store is refused when it is opened for writing, with what to
 * do, rather than found batch by batch later: an aggregator that starts
 * on it fails every batch, and its devices keep resending for ever. The
 * file is the operator's to rescue (sqlite3 .recover reads much of a
 * damaged file), so edgetel never deletes or replaces it.
 */
static int store_damaged(const char *path, const char *detail, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s is damaged (%s): stop every aggregator that uses it, move the "
             "file and its -wal and -shm files aside, then restore it from a backup or start "
             "on a new empty store; edgetel never deletes it", path, detail);
    return -EUCLEAN;
}

static int64_t store_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct check_deadline {
    int64_t until_ms;
    bool hit;
};

static int check_progress(void *ctx)
{
    struct check_deadline *d = ctx;

    d->hit = store_mono_ms() >= d->until_ms;
    return d->hit;   /* non-zero interrupts the check */
}

/*
 * PRAGMA quick_check reads every page once (no index cross-check), and
 * stops at the first problem. Measured on a healthy store of 312 MiB
 * (5 M samples): 5.3 to 6.8 s from a cold page cache, 0.85 to 1.6 s warm,
 * from exec to "started" (ARCHITECTURE.md, "Hostile devices"). A store too
 * large to read within STORE_CHECK_MAX_MS is checked that far and the
 * aggregator starts anyway, saying so: a fleet's store is PostgreSQL.
 */
static int store_check_damage(struct store_sqlite *ss, const char *path, char *err,
                              size_t errlen)
{
    struct check_deadline d = { .until_ms = store_mono_ms() + STORE_CHECK_MAX_MS };
    char text[512];
    int rc;

    sqlite3_progress_handler(ss->db, 10000, check_progress, &d);
    rc = et_sqlite_text(ss->db, "PRAGMA quick_check(1)", text, sizeof(text));
    sqlite3_progress_handler(ss->db, 0, NULL, NULL);
    if (d.hit) {
        et_warn("store", "%s: the check for damage at start stopped after %d s (a large "
                "store); the part read was sound", path, STORE_CHECK_MAX_MS / 1000);
        return 0;
    }
    if (et_sqlite_damaged(rc))
        return store_damaged(path, sqlite3_errmsg(ss->db), err, errlen);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "checking the file for damage: %s", sqlite3_errmsg(ss->db));
        return et_sqlite_errno(ss->db, rc);
    }
    if (strcmp(text, "ok") != 0) {
        /* quick_check's report may run over lines; a log line is one. */
        for (char *p = text; *p; p++)
            if (*p == '\n')
                *p = ' ';
        return store_damaged(path, text, err, errlen);
    }
    return 0;
}

/*
 * The settings of a writing handle. Two aggregators starting together on
 * a new store both switch it to WAL, and SQLite answers one of them
 * SQLITE_BUSY at once rather than through the busy handler (the lock
 * upgrade would deadlock); so that one tries again, for as long as a
 * writer would wait for another. Bounded by STORE_BUSY_TIMEOUT_MS.
 */
static int store_settings(struct store_sqlite *ss)
{
    const struct timespec pause = { .tv_sec = 0, .tv_nsec = 50 * 1000 * 1000 };
    int64_t until = store_mono_ms() + STORE_BUSY_TIMEOUT_MS;
    int rc;

    for (;;) {
        rc = sqlite3_exec(ss->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                          " PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = "
                          STORE_WAL_PAGES "; PRAGMA cache_size = " STORE_CACHE_KIB ";",
                          NULL, NULL, NULL);
        if ((rc & 0xff) != SQLITE_BUSY || store_mono_ms() >= until)
            return rc;
        nanosleep(&pause, NULL);
    }
}

/* ---- open and close ----------------------------------------------------- */

static void sqlite_close(struct et_store *s)
{
    struct store_sqlite *ss = (struct store_sqlite *)s;

    if (ss->in_tx)
        sqlite3_exec(ss->db, "ROLLBACK", NULL, NULL, NULL);
    for (size_t i = 0; i < SW_COUNT; i++)
        sqlite3_finalize(ss->writer_stmts[i]);
    for (size_t i = 0; i < SR_COUNT; i++)
        sqlite3_finalize(ss->reader_stmts[i]);
    for (size_t i = 0; i < SC_COUNT; i++)
        sqlite3_finalize(ss->config_stmts[i]);
    sqlite3_close_v2(ss->db);
    store_metric_free(&ss->metric_cache);
    free(ss);
}

static int sqlite_open(struct et_store **out, const char *path, unsigned flags,
                       char *err, size_t errlen)
{
    struct store_sqlite *ss;
    struct stat sb;
    int oflags, rc, ret;
    size_t used;

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
    ss->base.backend = &et_store_sqlite;
    ss->readonly = flags & ET_STORE_READONLY;
    ss->reader.ops = &store_sqlite_reader_ops;
    ss->base.reader = &ss->reader;
    ss->config.ops = &store_sqlite_config_ops;
    ss->base.config = &ss->config;
    if (!ss->readonly) {
        ss->writer.ops = &store_sqlite_writer_ops;
        ss->base.writer = &ss->writer;
    }

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
    rc = et_sqlite_open(path, oflags | SQLITE_OPEN_NOMUTEX, STORE_BUSY_TIMEOUT_MS, &ss->db,
                        err, errlen);
    if (rc != SQLITE_OK) {
        ret = et_sqlite_errno(NULL, rc);
        used = strlen(err);
        if ((rc & 0xff) == SQLITE_CANTOPEN && used < errlen)
            snprintf(err + used, errlen - used, " (does the directory exist and"
                     " may this user write there?)");
        goto fail;
    }
    if (!ss->readonly) {
        rc = store_settings(ss);
        if ((rc & 0xff) == SQLITE_CORRUPT) {
            ret = store_damaged(path, sqlite3_errmsg(ss->db), err, errlen);
            goto fail;
        }
        if (rc != SQLITE_OK) {
            ret = (rc & 0xff) == SQLITE_NOTADB ? -EPROTO : et_sqlite_errno(ss->db, rc);
            snprintf(err, errlen, "%s", (rc & 0xff) == SQLITE_NOTADB
                     ? "not an SQLite database" : sqlite3_errmsg(ss->db));
            goto fail;
        }
        /* Before any schema work: a migration must not write into damage. */
        ret = store_check_damage(ss, path, err, errlen);
        if (ret < 0)
            goto fail;
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

const struct et_store_backend et_store_sqlite = {
    .type = "sqlite",
    .open = sqlite_open,
    .close = sqlite_close,
    .copy = &store_sqlite_copy_ops,
};
