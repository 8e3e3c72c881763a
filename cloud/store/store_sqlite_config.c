/*
 * The SQLite store's config part: store_config.h in SQL. Each call runs
 * the statements for what it is given and decides nothing: which config a
 * device should run and when one is sent are the relay's rules
 * (cloud/config_relay.c). The tables are in store_sqlite_open.c (schema 5).
 */
#include "store_sqlite.h"

#include <errno.h>
#include <string.h>

#include "edgetel/sqlite.h"

/* What a desired row is read as; the bytes follow when a statement selects them. */
#define DESIRED_COLUMNS \
    "version, target_kind, target, key_id, deadline_ms, created_ms, pushed_by, source"
/* A device with its latest report (columns of read_device_config). */
#define DEVICE_CONFIG_COLUMNS \
    " d.id IS NOT NULL, d.config_groups, d.config_version, r.device IS NOT NULL, r.version," \
    " r.result, r.reason, r.device_ms, r.clock_synced, r.running_version, r.received_ms"
#define REPORT_COLUMNS \
    "device, version, result, reason, device_ms, clock_synced, running_version, received_ms"

static const char *const config_sql[SC_COUNT] = {
    [SC_DESIRED_TOP] = "SELECT COALESCE(MAX(version), 0) FROM desired_configs",
    [SC_DESIRED_ADD] =
        "INSERT INTO desired_configs (" DESIRED_COLUMNS ", signed)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [SC_DESIRED_GET] = "SELECT " DESIRED_COLUMNS ", signed FROM desired_configs WHERE version = ?1",
    [SC_DESIRED_LATEST] =
        "SELECT " DESIRED_COLUMNS " FROM desired_configs WHERE target_kind = ?1 AND target = ?2"
        " ORDER BY version DESC LIMIT 1",
    /* Each target's newest, found through the (kind, target, version) index. */
    [SC_DESIRED_AFTER] =
        "SELECT " DESIRED_COLUMNS " FROM desired_configs c WHERE version > ?1 AND version ="
        " (SELECT MAX(version) FROM desired_configs WHERE target_kind = c.target_kind"
        "  AND target = c.target) ORDER BY version",
    [SC_DEVICE_SET] =
        "UPDATE devices SET config_groups = COALESCE(?2, config_groups), config_version = ?3"
        " WHERE id = ?1",
    [SC_DEVICES] =
        "WITH ids (id) AS (SELECT id FROM devices"
        "  UNION SELECT target FROM desired_configs WHERE target_kind = 'device'"
        "  UNION SELECT device FROM config_reports)"
        " SELECT ids.id," DEVICE_CONFIG_COLUMNS
        " FROM ids LEFT JOIN devices d ON d.id = ids.id"
        " LEFT JOIN config_reports r ON r.device = ids.id ORDER BY ids.id",
    [SC_DEVICE_ONE] =
        "SELECT ids.id," DEVICE_CONFIG_COLUMNS
        " FROM (SELECT ?1 AS id) ids LEFT JOIN devices d ON d.id = ids.id"
        " LEFT JOIN config_reports r ON r.device = ids.id",
    /* Group names hold no comma (they are device ids' characters). */
    [SC_GROUP_MEMBERS] =
        "SELECT d.id," DEVICE_CONFIG_COLUMNS
        " FROM devices d LEFT JOIN config_reports r ON r.device = d.id"
        " WHERE d.id > ?2 AND instr(',' || d.config_groups || ',', ',' || ?1 || ',') > 0"
        " ORDER BY d.id LIMIT ?3",
    [SC_SAVEPOINT] = "SAVEPOINT config_report",
    [SC_RELEASE] = "RELEASE config_report",
    [SC_ROLLBACK_TO] = "ROLLBACK TO config_report",
    [SC_HISTORY_ADD] =
        "INSERT INTO config_report_history (" REPORT_COLUMNS ")"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        " ON CONFLICT (device, version, result, device_ms) DO NOTHING",
    /* Everything at and below the (keep + 1)-th newest; nothing when fewer. */
    [SC_HISTORY_TRIM] =
        "DELETE FROM config_report_history WHERE device = ?1 AND id <="
        " (SELECT id FROM config_report_history WHERE device = ?1"
        "  ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    /* Later: a higher version, or the same one at the same or a later
     * device time that is not the very report recorded. */
    [SC_REPORT_SET] =
        "INSERT INTO config_reports (" REPORT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        " ON CONFLICT (device) DO UPDATE SET version = excluded.version,"
        " result = excluded.result, reason = excluded.reason, device_ms = excluded.device_ms,"
        " clock_synced = excluded.clock_synced, running_version = excluded.running_version,"
        " received_ms = excluded.received_ms"
        " WHERE excluded.version > config_reports.version"
        "  OR (excluded.version = config_reports.version"
        "   AND excluded.device_ms >= config_reports.device_ms"
        "   AND (excluded.result <> config_reports.result"
        "    OR excluded.device_ms <> config_reports.device_ms))",
    [SC_HISTORY] =
        "SELECT " REPORT_COLUMNS " FROM config_report_history WHERE device = ?1"
        " ORDER BY id DESC LIMIT ?2",
};

static struct store_sqlite *of_config(struct et_store_config *sc)
{
    return (struct store_sqlite *)((char *)sc - offsetof(struct store_sqlite, config));
}

/*
 * The store for a call: -EPROTO when its schema predates configs (a store
 * edgetelctl reads before an aggregator migrated it), -EROFS for a write
 * on a read-only one.
 */
static int usable(struct et_store_config *sc, bool writes, struct store_sqlite **out)
{
    struct store_sqlite *ss = of_config(sc);

    *out = ss;
    if (ss->version < STORE_SCHEMA_CONFIG)
        return -EPROTO;
    return writes && ss->readonly ? -EROFS : 0;
}

/* The config part's statement id, reset and bound to args. */
static int stmt(struct store_sqlite *ss, enum store_config_stmt id, const struct store_arg *args,
                size_t n, sqlite3_stmt **st)
{
    return store_sqlite_stmt(ss, &ss->config_stmts[id], config_sql[id], args, n, st);
}

/* Run statement id; *changed (may be NULL) says whether it changed a row. */
static int run(struct store_sqlite *ss, enum store_config_stmt id, const char *what,
               const struct store_arg *args, size_t n, bool *changed)
{
    sqlite3_stmt *st;
    int ret = stmt(ss, id, args, n, &st);

    if (ret == 0)
        ret = store_sqlite_failed(ss, et_sqlite_run(st), what);
    if (ret == 0 && changed)
        *changed = sqlite3_changes(ss->db) > 0;
    return ret;
}

/* Statement id for a read, after the schema check, reset and bound to args. */
static int prepared(struct et_store_config *sc, enum store_config_stmt id,
                    const struct store_arg *args, size_t n, struct store_sqlite **ss,
                    sqlite3_stmt **st)
{
    int ret = usable(sc, false, ss);

    return ret < 0 ? ret : stmt(*ss, id, args, n, st);
}

/*
 * Statement id's rows through fn to the caller's callback in rows; with
 * one, a statement of at most one row: -ENOENT when there is none.
 */
static int rows_of(struct et_store_config *sc, enum store_config_stmt id, const char *what,
                   const struct store_arg *args, size_t n, et_sqlite_row_fn fn,
                   struct store_rows *rows, bool one)
{
    struct store_sqlite *ss;
    sqlite3_stmt *st;
    int ret = prepared(sc, id, args, n, &ss, &st);

    if (ret < 0)
        return ret;
    if (!one)
        return store_sqlite_rows(ss, st, fn, rows, what);
    ret = et_sqlite_one_row(st, fn, rows);
    return rows->stopped ? ret : store_sqlite_failed(ss, ret, what);
}

static const char *kind_name(enum et_config_target kind)
{
    return kind == ET_CONFIG_TARGET_GROUP ? "group" : "device";
}

/* ---- desired configs ---------------------------------------------------- */

static int read_u64(void *ctx, sqlite3_stmt *row)
{
    *(uint64_t *)ctx = et_sqlite_col_u64(row, 0);
    return 0;
}

static int sqlite_desired_top(struct et_store_config *sc, uint64_t *version)
{
    struct store_sqlite *ss;
    sqlite3_stmt *st;
    int ret = prepared(sc, SC_DESIRED_TOP, NULL, 0, &ss, &st);

    *version = 0;
    return ret < 0 ? ret : store_sqlite_failed(ss, et_sqlite_one_row(st, read_u64, version),
                                               "reading the highest config version");
}

static int sqlite_desired_add(struct et_store_config *sc, const struct et_store_desired *d)
{
    struct store_sqlite *ss;
    int ret = usable(sc, true, &ss);

    if (ret < 0)
        return ret;
    if (d->version == 0 || d->version > ET_STORE_SEQ_MAX || !d->signed_config ||
        d->signed_len == 0 || d->signed_len > ET_STORE_CONFIG_SIGNED_MAX ||
        (d->kind != ET_CONFIG_TARGET_DEVICE && d->kind != ET_CONFIG_TARGET_GROUP))
        return -EINVAL;
    return run(ss, SC_DESIRED_ADD, "adding a desired config",
               STORE_ARGS(STORE_U64(d->version), STORE_TEXT(kind_name(d->kind)),
                          STORE_TEXT(d->target), STORE_TEXT(d->key_id),
                          STORE_U64(d->deadline_ms), STORE_INT(d->created_ms),
                          STORE_TEXT(d->pushed_by), STORE_TEXT(d->source),
                          STORE_BLOB(d->signed_config, d->signed_len)),
               NULL);
}

static int read_desired(void *ctx, sqlite3_stmt *row)
{
    struct store_rows *rows = ctx;
    struct et_store_desired d = {
        .version = et_sqlite_col_u64(row, 0),
        .kind = strcmp(et_sqlite_col_text(row, 1), "group") == 0 ? ET_CONFIG_TARGET_GROUP
                                                                  : ET_CONFIG_TARGET_DEVICE,
        .target = et_sqlite_col_text(row, 2),
        .key_id = et_sqlite_col_text(row, 3),
        .deadline_ms = et_sqlite_col_u64(row, 4),
        .created_ms = sqlite3_column_int64(row, 5),
        .pushed_by = et_sqlite_col_text(row, 6),
        .source = et_sqlite_col_text(row, 7),
    };

    if (sqlite3_column_count(row) > 8) {
        d.signed_config = sqlite3_column_blob(row, 8);
        d.signed_len = (size_t)sqlite3_column_bytes(row, 8);
    }
    return store_rows_cb(rows, rows->cb.desired(rows->ctx, &d));
}

static int sqlite_desired_get(struct et_store_config *sc, uint64_t version,
                              et_store_desired_cb cb, void *ctx)
{
    struct store_rows rows = { .cb.desired = cb, .ctx = ctx };

    return rows_of(sc, SC_DESIRED_GET, "reading a desired config",
                   STORE_ARGS(STORE_U64(version)), read_desired, &rows, true);
}

static int sqlite_desired_latest(struct et_store_config *sc, enum et_config_target kind,
                                 const char *target, et_store_desired_cb cb, void *ctx)
{
    struct store_rows rows = { .cb.desired = cb, .ctx = ctx };

    return rows_of(sc, SC_DESIRED_LATEST, "finding a desired config",
                   STORE_ARGS(STORE_TEXT(kind_name(kind)), STORE_TEXT(target)), read_desired,
                   &rows, true);
}

static int sqlite_desired_after(struct et_store_config *sc, uint64_t after,
                                et_store_desired_cb cb, void *ctx)
{
    struct store_rows rows = { .cb.desired = cb, .ctx = ctx };

    return rows_of(sc, SC_DESIRED_AFTER, "finding new desired configs",
                   STORE_ARGS(STORE_U64(after)), read_desired, &rows, false);
}

/* ---- devices ------------------------------------------------------------ */

static int sqlite_device_set(struct et_store_config *sc, const char *device, const char *groups,
                             uint64_t running_version)
{
    struct store_sqlite *ss;
    bool changed = false;
    int ret = usable(sc, true, &ss);

    if (ret == 0)
        ret = run(ss, SC_DEVICE_SET, "recording a device's config",
                  STORE_ARGS(STORE_TEXT(device), groups ? STORE_TEXT(groups) : STORE_NULL,
                             STORE_U64(running_version)),
                  &changed);
    return ret == 0 && !changed ? -ENOENT : ret;
}

/* A report's columns from first on, in REPORT_COLUMNS' order after device. */
static void read_report(sqlite3_stmt *row, int first, struct et_store_config_report *rep)
{
    rep->version = et_sqlite_col_u64(row, first);
    rep->result = sqlite3_column_int(row, first + 1);
    rep->reason = et_sqlite_col_text(row, first + 2);
    rep->device_ms = sqlite3_column_int64(row, first + 3);
    rep->clock_synced = sqlite3_column_int(row, first + 4) != 0;
    rep->running_version = et_sqlite_col_u64(row, first + 5);
    rep->received_ms = sqlite3_column_int64(row, first + 6);
}

static int read_device_config(void *ctx, sqlite3_stmt *row)
{
    struct store_rows *rows = ctx;
    struct et_store_device_config dc = {
        .device = et_sqlite_col_text(row, 0),
        .known = sqlite3_column_int(row, 1) != 0,
        .groups = et_sqlite_col_text(row, 2),
        .running_version = et_sqlite_col_u64(row, 3),
        .has_report = sqlite3_column_int(row, 4) != 0,
    };

    dc.report.device = dc.device;
    read_report(row, 5, &dc.report);
    return store_rows_cb(rows, rows->cb.device_config(rows->ctx, &dc));
}

static int sqlite_devices(struct et_store_config *sc, const char *only,
                          et_store_device_config_cb cb, void *ctx)
{
    struct store_rows rows = { .cb.device_config = cb, .ctx = ctx };

    if (only)
        return rows_of(sc, SC_DEVICE_ONE, "reading a device's config",
                       STORE_ARGS(STORE_TEXT(only)), read_device_config, &rows, false);
    return rows_of(sc, SC_DEVICES, "listing devices' configs", NULL, 0, read_device_config,
                   &rows, false);
}

static int sqlite_group_members(struct et_store_config *sc, const char *group, const char *after,
                                 unsigned limit, et_store_device_config_cb cb, void *ctx)
{
    struct store_rows rows = { .cb.device_config = cb, .ctx = ctx };

    return rows_of(sc, SC_GROUP_MEMBERS, "listing a group's devices",
                   STORE_ARGS(STORE_TEXT(group), STORE_TEXT(after), STORE_INT(limit)),
                   read_device_config, &rows, false);
}

/* ---- reports ------------------------------------------------------------ */

/*
 * A savepoint makes the three statements one, inside the writer's
 * transaction (an aggregator's group) or alone: a failure undoes them and
 * leaves the enclosing transaction as it was.
 */
static int sqlite_report_record(struct et_store_config *sc,
                                const struct et_store_config_report *rep, unsigned keep,
                                bool *added, bool *latest)
{
    struct store_sqlite *ss;
    bool was_added = false, is_latest = false;
    const struct store_arg args[] = {
        STORE_TEXT(rep->device), STORE_U64(rep->version), STORE_INT(rep->result),
        STORE_TEXT(rep->reason), STORE_INT(rep->device_ms), STORE_INT(rep->clock_synced),
        STORE_U64(rep->running_version), STORE_INT(rep->received_ms),
    };
    size_t n = sizeof(args) / sizeof(args[0]);
    int ret = usable(sc, true, &ss);

    if (ret < 0)
        return ret;
    ret = run(ss, SC_SAVEPOINT, "starting to record a config report", NULL, 0, NULL);
    if (ret < 0)
        return ret;
    ret = run(ss, SC_HISTORY_ADD, "recording a config report", args, n, &was_added);
    if (ret == 0 && was_added)
        ret = run(ss, SC_HISTORY_TRIM, "trimming a device's config reports",
                  STORE_ARGS(STORE_TEXT(rep->device), STORE_INT(keep ? keep : 1)), NULL);
    if (ret == 0)
        ret = run(ss, SC_REPORT_SET, "recording a device's latest config report", args, n,
                  &is_latest);
    if (ret == 0)
        ret = run(ss, SC_RELEASE, "recording a config report", NULL, 0, NULL);
    if (ret < 0) {
        /* After some errors SQLite has already ended the transaction. */
        if (!sqlite3_get_autocommit(ss->db)) {
            run(ss, SC_ROLLBACK_TO, "undoing a config report", NULL, 0, NULL);
            run(ss, SC_RELEASE, "undoing a config report", NULL, 0, NULL);
        }
        return ret;
    }
    if (added)
        *added = was_added;
    if (latest)
        *latest = is_latest;
    return 0;
}

static int read_history(void *ctx, sqlite3_stmt *row)
{
    struct store_rows *rows = ctx;
    struct et_store_config_report rep = { .device = et_sqlite_col_text(row, 0) };

    read_report(row, 1, &rep);
    return store_rows_cb(rows, rows->cb.report(rows->ctx, &rep));
}

static int sqlite_report_history(struct et_store_config *sc, const char *device, unsigned limit,
                                 et_store_config_report_cb cb, void *ctx)
{
    struct store_rows rows = { .cb.report = cb, .ctx = ctx };

    return rows_of(sc, SC_HISTORY, "reading a device's config reports",
                   STORE_ARGS(STORE_TEXT(device), STORE_INT(limit)), read_history, &rows,
                   false);
}

static const char *sqlite_config_last_error(struct et_store_config *sc)
{
    return of_config(sc)->last_error;
}

const struct et_store_config_ops store_sqlite_config_ops = {
    .desired_top = sqlite_desired_top,
    .desired_add = sqlite_desired_add,
    .desired_get = sqlite_desired_get,
    .desired_latest = sqlite_desired_latest,
    .desired_after = sqlite_desired_after,
    .device_set = sqlite_device_set,
    .devices = sqlite_devices,
    .group_members = sqlite_group_members,
    .report_record = sqlite_report_record,
    .report_history = sqlite_report_history,
    .last_error = sqlite_config_last_error,
};
