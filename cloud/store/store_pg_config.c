/*
 * The PostgreSQL store's config part: store_config.h in SQL, the same
 * statements as the SQLite backend's (store_sqlite_config.c) in
 * PostgreSQL's words. Two things differ because several processes write
 * at once:
 *   - config push reads the highest version and adds the next one in one
 *     transaction; SQLite's BEGIN IMMEDIATE serialises two pushes, here an
 *     advisory lock held to the commit does (desired_top inside a
 *     transaction takes it).
 *   - a Status's config version joins the device's other writes of the
 *     transaction (store_pg_writer.c), written at the commit in key order.
 */
#include "store_pg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DESIRED_COLUMNS \
    "version, target_kind, target, key_id, deadline_ms, created_ms, pushed_by, source"
#define DEVICE_CONFIG_COLUMNS \
    " d.id IS NOT NULL, d.config_groups, d.config_version, r.device IS NOT NULL, r.version," \
    " r.result, r.reason, r.device_ms, r.clock_synced, r.running_version, r.received_ms"
#define REPORT_COLUMNS \
    "device, version, result, reason, device_ms, clock_synced, running_version, received_ms"

enum config_stmt {
    C_DESIRED_LOCK,
    C_DESIRED_TOP,
    C_DESIRED_ADD,
    C_DESIRED_GET,
    C_DESIRED_LATEST,
    C_DESIRED_AFTER,
    C_DEVICE_SET,
    C_DEVICES,
    C_DEVICE_ONE,
    C_GROUP_MEMBERS,
    C_HISTORY_ADD,
    C_HISTORY_TRIM,
    C_REPORT_SET,
    C_HISTORY,
    C_COUNT
};

static const char *const config_sql[C_COUNT] = {
    [C_DESIRED_LOCK] =
        "SELECT pg_advisory_xact_lock(hashtext('edgetel.desired'), hashtext(current_schema()))",
    [C_DESIRED_TOP] = "SELECT COALESCE(MAX(version), 0) FROM desired_configs",
    [C_DESIRED_ADD] =
        "INSERT INTO desired_configs (" DESIRED_COLUMNS ", signed)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    [C_DESIRED_GET] = "SELECT " DESIRED_COLUMNS ", signed FROM desired_configs WHERE version = $1",
    [C_DESIRED_LATEST] =
        "SELECT " DESIRED_COLUMNS " FROM desired_configs WHERE target_kind = $1 AND target = $2"
        " ORDER BY version DESC LIMIT 1",
    [C_DESIRED_AFTER] =
        "SELECT " DESIRED_COLUMNS " FROM desired_configs c WHERE version > $1 AND version ="
        " (SELECT MAX(version) FROM desired_configs WHERE target_kind = c.target_kind"
        "  AND target = c.target) ORDER BY version",
    [C_DEVICE_SET] =
        "UPDATE devices SET config_groups = COALESCE($2, config_groups), config_version = $3"
        " WHERE id = $1",
    [C_DEVICES] =
        "WITH ids (id) AS (SELECT id FROM devices"
        "  UNION SELECT target FROM desired_configs WHERE target_kind = 'device'"
        "  UNION SELECT device FROM config_reports)"
        " SELECT ids.id," DEVICE_CONFIG_COLUMNS
        " FROM ids LEFT JOIN devices d ON d.id = ids.id"
        " LEFT JOIN config_reports r ON r.device = ids.id ORDER BY ids.id",
    [C_DEVICE_ONE] =
        "SELECT ids.id," DEVICE_CONFIG_COLUMNS
        " FROM (SELECT $1::text AS id) ids LEFT JOIN devices d ON d.id = ids.id"
        " LEFT JOIN config_reports r ON r.device = ids.id",
    [C_GROUP_MEMBERS] =
        "SELECT d.id," DEVICE_CONFIG_COLUMNS
        " FROM devices d LEFT JOIN config_reports r ON r.device = d.id"
        " WHERE d.id > $2 AND position(',' || $1::text || ',' IN ',' || d.config_groups || ',') > 0"
        " ORDER BY d.id LIMIT $3",
    [C_HISTORY_ADD] =
        "INSERT INTO config_report_history (" REPORT_COLUMNS ")"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (device, version, result, device_ms) DO NOTHING",
    [C_HISTORY_TRIM] =
        "DELETE FROM config_report_history WHERE device = $1 AND id <="
        " (SELECT id FROM config_report_history WHERE device = $1"
        "  ORDER BY id DESC LIMIT 1 OFFSET $2)",
    [C_REPORT_SET] =
        "INSERT INTO config_reports AS c (" REPORT_COLUMNS ")"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (device) DO UPDATE SET version = excluded.version,"
        " result = excluded.result, reason = excluded.reason, device_ms = excluded.device_ms,"
        " clock_synced = excluded.clock_synced, running_version = excluded.running_version,"
        " received_ms = excluded.received_ms"
        " WHERE excluded.version > c.version"
        "  OR (excluded.version = c.version AND excluded.device_ms >= c.device_ms"
        "   AND (excluded.result <> c.result OR excluded.device_ms <> c.device_ms))",
    [C_HISTORY] =
        "SELECT " REPORT_COLUMNS " FROM config_report_history WHERE device = $1"
        " ORDER BY id DESC LIMIT $2",
};

static struct store_pg *of_config(struct et_store_config *sc)
{
    return (struct store_pg *)((char *)sc - offsetof(struct store_pg, config));
}

static int run(struct store_pg *pg, enum config_stmt id, const struct pg_params *p,
               PGresult **res, const char *what)
{
    return store_pg_run(pg, PG_PART_CONFIG, id, config_sql[id], p, res, what);
}

/* Run a write; *changed (may be NULL) says whether it changed a row. */
static int write_rows(struct store_pg *pg, enum config_stmt id, const struct pg_params *p,
                      bool *changed, const char *what)
{
    PGresult *r;
    int ret;

    if (pg->readonly)
        return -EROFS;
    ret = run(pg, id, p, &r, what);
    if (ret == 0 && changed)
        *changed = atoi(PQcmdTuples(r)) > 0;
    PQclear(r);
    return ret;
}

static const char *kind_name(enum et_config_target kind)
{
    return kind == ET_CONFIG_TARGET_GROUP ? "group" : "device";
}

/* ---- desired configs ---------------------------------------------------- */

static int pg_desired_top(struct et_store_config *sc, uint64_t *version)
{
    struct store_pg *pg = of_config(sc);
    PGresult *r;
    int ret = 0;

    *version = 0;
    /* In a push's transaction: the next push waits for this one's commit. */
    if (pg->in_tx)
        ret = run(pg, C_DESIRED_LOCK, NULL, NULL, "locking config versions");
    if (ret == 0)
        ret = run(pg, C_DESIRED_TOP, NULL, &r, "reading the highest config version");
    if (ret == 0)
        *version = pg_col_u64(r, 0, 0);
    if (ret == 0)
        PQclear(r);
    return ret;
}

static int pg_desired_add(struct et_store_config *sc, const struct et_store_desired *d)
{
    struct store_pg *pg = of_config(sc);
    struct pg_params p = { .n = 0 };

    if (d->version == 0 || d->version > ET_STORE_SEQ_MAX || !d->signed_config ||
        d->signed_len == 0 || d->signed_len > ET_STORE_CONFIG_SIGNED_MAX ||
        (d->kind != ET_CONFIG_TARGET_DEVICE && d->kind != ET_CONFIG_TARGET_GROUP))
        return pg->readonly ? -EROFS : -EINVAL;
    pg_u64(&p, d->version);
    pg_text(&p, kind_name(d->kind));
    pg_text(&p, d->target);
    pg_text(&p, d->key_id);
    pg_u64(&p, d->deadline_ms);
    pg_int(&p, d->created_ms);
    pg_text(&p, d->pushed_by);
    pg_text(&p, d->source);
    pg_blob(&p, d->signed_config, d->signed_len);
    return write_rows(pg, C_DESIRED_ADD, &p, NULL, "adding a desired config");
}

/* Each row (DESIRED_COLUMNS, then the bytes when selected) to cb. */
static int desired_rows(PGresult *r, et_store_desired_cb cb, void *ctx)
{
    int ret = 0;

    for (int i = 0; ret == 0 && i < PQntuples(r); i++) {
        unsigned char *bytes = NULL;
        size_t len = 0;
        struct et_store_desired d = {
            .version = pg_col_u64(r, i, 0),
            .kind = strcmp(pg_col_text(r, i, 1), "group") == 0 ? ET_CONFIG_TARGET_GROUP
                                                               : ET_CONFIG_TARGET_DEVICE,
            .target = pg_col_text(r, i, 2),
            .key_id = pg_col_text(r, i, 3),
            .deadline_ms = pg_col_u64(r, i, 4),
            .created_ms = pg_col_i64(r, i, 5),
            .pushed_by = pg_col_text(r, i, 6),
            .source = pg_col_text(r, i, 7),
        };

        if (PQnfields(r) > 8) {
            bytes = PQunescapeBytea((const unsigned char *)pg_col_text(r, i, 8), &len);
            if (!bytes)
                return -ENOMEM;
            d.signed_config = bytes;
            d.signed_len = len;
        }
        ret = cb(ctx, &d);
        PQfreemem(bytes);
    }
    return ret;
}

static int desired_query(struct et_store_config *sc, enum config_stmt id,
                         const struct pg_params *p, bool one, et_store_desired_cb cb, void *ctx,
                         const char *what)
{
    PGresult *r;
    int ret = run(of_config(sc), id, p, &r, what);

    if (ret < 0)
        return ret;
    ret = one && PQntuples(r) == 0 ? -ENOENT : desired_rows(r, cb, ctx);
    PQclear(r);
    return ret;
}

static int pg_desired_get(struct et_store_config *sc, uint64_t version,
                          et_store_desired_cb cb, void *ctx)
{
    struct pg_params p = { .n = 0 };

    pg_u64(&p, version);
    return desired_query(sc, C_DESIRED_GET, &p, true, cb, ctx, "reading a desired config");
}

static int pg_desired_latest(struct et_store_config *sc, enum et_config_target kind,
                             const char *target, et_store_desired_cb cb, void *ctx)
{
    struct pg_params p = { .n = 0 };

    pg_text(&p, kind_name(kind));
    pg_text(&p, target);
    return desired_query(sc, C_DESIRED_LATEST, &p, true, cb, ctx, "finding a desired config");
}

static int pg_desired_after(struct et_store_config *sc, uint64_t after,
                            et_store_desired_cb cb, void *ctx)
{
    struct pg_params p = { .n = 0 };

    pg_u64(&p, after);
    return desired_query(sc, C_DESIRED_AFTER, &p, false, cb, ctx,
                         "finding new desired configs");
}

/* ---- devices ------------------------------------------------------------ */

static int pg_device_set(struct et_store_config *sc, const char *device, const char *groups,
                         uint64_t running_version)
{
    struct store_pg *pg = of_config(sc);
    struct pg_params p = { .n = 0 };
    bool changed = false;
    int ret;

    if (pg->readonly)
        return -EROFS;
    if (store_pg_device_config(pg, device, groups, running_version) == 0)
        return 0;
    pg_text(&p, device);
    if (groups)
        pg_text(&p, groups);
    else
        pg_null(&p);
    pg_u64(&p, running_version);
    ret = write_rows(pg, C_DEVICE_SET, &p, &changed, "recording a device's config");
    return ret == 0 && !changed ? -ENOENT : ret;
}

static void read_report(const PGresult *r, int row, int first, struct et_store_config_report *rep)
{
    rep->version = pg_col_u64(r, row, first);
    rep->result = (int)pg_col_i64(r, row, first + 1);
    rep->reason = pg_col_text(r, row, first + 2);
    rep->device_ms = pg_col_i64(r, row, first + 3);
    rep->clock_synced = pg_col_bool(r, row, first + 4);
    rep->running_version = pg_col_u64(r, row, first + 5);
    rep->received_ms = pg_col_i64(r, row, first + 6);
}

static int device_config_query(struct et_store_config *sc, enum config_stmt id,
                               const struct pg_params *p, et_store_device_config_cb cb,
                               void *ctx, const char *what)
{
    PGresult *r = NULL;
    int ret = run(of_config(sc), id, p, &r, what);

    for (int i = 0; ret == 0 && i < PQntuples(r); i++) {
        struct et_store_device_config dc = {
            .device = pg_col_text(r, i, 0),
            .known = pg_col_bool(r, i, 1),
            .groups = pg_col_text(r, i, 2),
            .running_version = pg_col_u64(r, i, 3),
            .has_report = pg_col_bool(r, i, 4),
        };

        dc.report.device = dc.device;
        read_report(r, i, 5, &dc.report);
        ret = cb(ctx, &dc);
    }
    PQclear(r);
    return ret;
}

static int pg_devices(struct et_store_config *sc, const char *only,
                      et_store_device_config_cb cb, void *ctx)
{
    struct pg_params p = { .n = 0 };

    if (!only)
        return device_config_query(sc, C_DEVICES, NULL, cb, ctx, "listing devices' configs");
    pg_text(&p, only);
    return device_config_query(sc, C_DEVICE_ONE, &p, cb, ctx, "reading a device's config");
}

static int pg_group_members(struct et_store_config *sc, const char *group, const char *after,
                            unsigned limit, et_store_device_config_cb cb, void *ctx)
{
    struct pg_params p = { .n = 0 };

    pg_text(&p, group);
    pg_text(&p, after);
    pg_int(&p, limit);
    return device_config_query(sc, C_GROUP_MEMBERS, &p, cb, ctx, "listing a group's devices");
}

/* ---- reports ------------------------------------------------------------ */

/*
 * All or nothing: inside the writer's transaction (an aggregator's group)
 * a savepoint, alone a transaction of its own.
 */
static int pg_report_record(struct et_store_config *sc, const struct et_store_config_report *rep,
                            unsigned keep, bool *added, bool *latest)
{
    struct store_pg *pg = of_config(sc);
    struct pg_params p = { .n = 0 };
    bool was_added = false, is_latest = false, own = !pg->in_tx;
    int ret;

    if (pg->readonly)
        return -EROFS;
    ret = store_pg_exec(pg, own ? "BEGIN" : "SAVEPOINT config_report",
                        "starting to record a config report");
    if (ret < 0)
        return ret;
    pg_text(&p, rep->device);
    pg_u64(&p, rep->version);
    pg_int(&p, rep->result);
    pg_text(&p, rep->reason);
    pg_int(&p, rep->device_ms);
    pg_int(&p, rep->clock_synced);
    pg_u64(&p, rep->running_version);
    pg_int(&p, rep->received_ms);
    ret = write_rows(pg, C_HISTORY_ADD, &p, &was_added, "recording a config report");
    if (ret == 0 && was_added) {
        struct pg_params t = { .n = 0 };

        pg_text(&t, rep->device);
        pg_int(&t, keep ? keep : 1);
        ret = write_rows(pg, C_HISTORY_TRIM, &t, NULL, "trimming a device's config reports");
    }
    if (ret == 0)
        ret = write_rows(pg, C_REPORT_SET, &p, &is_latest,
                         "recording a device's latest config report");
    if (ret == 0)
        ret = store_pg_exec(pg, own ? "COMMIT" : "RELEASE config_report",
                            "recording a config report");
    if (ret < 0) {
        PQclear(PQexec(pg->conn, own ? "ROLLBACK"
                                     : "ROLLBACK TO config_report; RELEASE config_report"));
        return ret;
    }
    if (added)
        *added = was_added;
    if (latest)
        *latest = is_latest;
    return 0;
}

static int pg_report_history(struct et_store_config *sc, const char *device, unsigned limit,
                             et_store_config_report_cb cb, void *ctx)
{
    struct pg_params p = { .n = 0 };
    PGresult *r = NULL;
    int ret;

    pg_text(&p, device);
    pg_int(&p, limit);
    ret = run(of_config(sc), C_HISTORY, &p, &r, "reading a device's config reports");
    for (int i = 0; ret == 0 && i < PQntuples(r); i++) {
        struct et_store_config_report rep = { .device = pg_col_text(r, i, 0) };

        read_report(r, i, 1, &rep);
        ret = cb(ctx, &rep);
    }
    PQclear(r);
    return ret;
}

static const char *pg_config_last_error(struct et_store_config *sc)
{
    return of_config(sc)->last_error;
}

const struct et_store_config_ops store_pg_config_ops = {
    .desired_top = pg_desired_top,
    .desired_add = pg_desired_add,
    .desired_get = pg_desired_get,
    .desired_latest = pg_desired_latest,
    .desired_after = pg_desired_after,
    .device_set = pg_device_set,
    .devices = pg_devices,
    .group_members = pg_group_members,
    .report_record = pg_report_record,
    .report_history = pg_report_history,
    .last_error = pg_config_last_error,
};
