/*
 * The PostgreSQL store's reader: store_reader.h in SQL. Each read is one
 * statement whose rows become the structs of store.h for the caller's
 * callback.
 *
 * Tail (samples_after, last_sample_id) reads only ids below a horizon:
 * the oldest transaction still running when the read's snapshot was
 * taken, times 2^24 (store_pg.h). Every transaction below it has ended,
 * so every row with an id below it is visible or never will be, and a row
 * that becomes visible later has an id above it: tail never skips a row
 * that commits after it passed by, however the writers' commits
 * interleave. What a running transaction wrote shows once it ends.
 */
#include "store_pg.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#define HORIZON "(pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 24)"
#define SAMPLE_COLUMNS \
    "s.id, s.metric_id, m.device, m.name, m.unit, " PG_MS_OF("s.ts") ", s.mono_ms, s.vtype," \
    " s.v_f64, s.v_i64, s.v_bool, s.v_str, s.time_quality, s.seq"

enum reader_stmt { R_DEVICES, R_METRICS, R_QUERY, R_AFTER, R_LAST_ID, R_QUARANTINED, R_COUNT };

static const char *const reader_sql[R_COUNT] = {
    [R_DEVICES] =
        "SELECT d.id, d.online, d.first_seen_ms, d.last_seen_ms, d.boot_id, d.agent_version,"
        " COALESCE(s.acked_through, 0), d.samples_stored,"
        " (SELECT COUNT(*) FROM batches b WHERE b.device = d.id),"
        " d.has_status, d.outbox_batches, d.dropped_samples, d.clock_synced, d.reason,"
        " s.device IS NOT NULL, d.stream, COALESCE(s.started_ms, 0)"
        " FROM devices d LEFT JOIN streams s ON s.device = d.id AND s.stream = d.stream"
        " WHERE ($1::text IS NULL OR d.id = $1) ORDER BY d.id",
    [R_METRICS] =
        "SELECT m.id, m.device, m.name, m.unit, COUNT(s.id), " PG_MS_OF("MIN(s.ts)") ","
        " " PG_MS_OF("MAX(s.ts)") ", m.tags"
        " FROM metrics m LEFT JOIN samples s ON s.metric_id = m.id"
        " WHERE m.device = $1 GROUP BY m.id ORDER BY m.name",
    [R_QUERY] =
        "SELECT " SAMPLE_COLUMNS " FROM samples s JOIN metrics m ON m.id = s.metric_id"
        " WHERE m.device = $1 AND m.name = $2 AND s.ts >= $3::timestamptz"
        " AND s.ts < $4::timestamptz ORDER BY s.ts, s.id",
    [R_AFTER] =
        "SELECT " SAMPLE_COLUMNS " FROM samples s JOIN metrics m ON m.id = s.metric_id"
        " WHERE s.id > $1 AND s.id < " HORIZON " AND ($2::text IS NULL OR m.device = $2)"
        " ORDER BY s.id LIMIT $3",
    [R_LAST_ID] = "SELECT LEAST(COALESCE(MAX(id), 0), " HORIZON " - 1) FROM samples",
    [R_QUARANTINED] =
        "SELECT device, stream, seq, received_ms, n_samples, reason, payload FROM quarantine"
        " WHERE ($1::text IS NULL OR device = $1) ORDER BY received_ms, device, stream, seq",
};

static int query(struct et_store_reader *r, enum reader_stmt id, const struct pg_params *p,
                 PGresult **res, const char *what)
{
    return store_pg_run(store_pg_of_reader(r), PG_PART_READER, id, reader_sql[id], p, res, what);
}

static int pg_devices(struct et_store_reader *r, const char *only, et_store_device_cb cb,
                      void *ctx)
{
    struct pg_params p = { .n = 0 };
    PGresult *res;
    int ret;

    if (only)
        pg_text(&p, only);
    else
        pg_null(&p);
    ret = query(r, R_DEVICES, &p, &res, "listing devices");
    for (int i = 0; ret == 0 && i < PQntuples(res); i++) {
        struct et_store_device d = {
            .id = pg_col_text(res, i, 0),
            .online = pg_col_bool(res, i, 1),
            .first_seen_ms = pg_col_i64(res, i, 2),
            .last_seen_ms = pg_col_i64(res, i, 3),
            .boot_id_hex = pg_col_text(res, i, 4),
            .agent_version = pg_col_text(res, i, 5),
            .acked_through = pg_col_u64(res, i, 6),
            .samples_stored = pg_col_u64(res, i, 7),
            .batches_stored = pg_col_u64(res, i, 8),
            .has_status = pg_col_bool(res, i, 9),
            .outbox_batches = pg_col_u64(res, i, 10),
            .dropped_samples = pg_col_u64(res, i, 11),
            .clock_synced = pg_col_bool(res, i, 12),
            .reason = pg_col_text(res, i, 13),
            .has_stream = pg_col_bool(res, i, 14),
            .stream_hex = pg_col_text(res, i, 15),
            .stream_started_ms = pg_col_i64(res, i, 16),
        };

        ret = cb(ctx, &d);
    }
    PQclear(res);
    return ret;
}

int store_pg_metrics_read(struct store_pg *pg, enum store_pg_part part, int id, const char *sql,
                          const char *device, et_store_metric_cb cb, void *ctx)
{
    struct pg_params p = { .n = 0 };
    PGresult *res;
    int ret;

    pg_text(&p, device);
    ret = store_pg_run(pg, part, id, sql, &p, &res, "listing metrics");
    for (int i = 0; ret == 0 && i < PQntuples(res); i++) {
        struct et_store_metric m = {
            .id = pg_col_i64(res, i, 0),
            .device = pg_col_text(res, i, 1),
            .name = pg_col_text(res, i, 2),
            .unit = pg_col_text(res, i, 3),
            .samples = pg_col_u64(res, i, 4),
            .first_ts_ms = pg_col_i64(res, i, 5),
            .last_ts_ms = pg_col_i64(res, i, 6),
            .tags = pg_col_text(res, i, 7),
        };

        ret = cb(ctx, &m);
    }
    PQclear(res);
    return ret;
}

static int pg_metrics(struct et_store_reader *r, const char *device, et_store_metric_cb cb,
                      void *ctx)
{
    return store_pg_metrics_read(store_pg_of_reader(r), PG_PART_READER, R_METRICS,
                                 reader_sql[R_METRICS], device, cb, ctx);
}

/* Each row of SAMPLE_COLUMNS to cb. */
static int sample_rows(PGresult *res, et_store_sample_cb cb, void *ctx)
{
    int ret = 0;

    for (int i = 0; ret == 0 && i < PQntuples(res); i++) {
        struct et_store_sample smp = {
            .id = pg_col_i64(res, i, 0),
            .metric_id = pg_col_i64(res, i, 1),
            .device = pg_col_text(res, i, 2),
            .metric = pg_col_text(res, i, 3),
            .unit = pg_col_text(res, i, 4),
            .ts_ms = pg_col_i64(res, i, 5),
            .mono_ms = pg_col_i64(res, i, 6),
            .value.type = (enum et_type)pg_col_i64(res, i, 7),
            .time_quality = (enum et_time_quality)pg_col_i64(res, i, 12),
            .seq = pg_col_u64(res, i, 13),
        };

        pg_col_value(res, i, 8, &smp.value);
        ret = cb(ctx, &smp);
    }
    return ret;
}

static int pg_query(struct et_store_reader *r, const struct et_store_query *q,
                    et_store_sample_cb cb, void *ctx)
{
    struct pg_params p = { .n = 0 };
    char since[48], until[48];
    PGresult *res;
    int ret;

    pg_ms_text(q->since_ms, since, sizeof(since));
    pg_ms_text(q->until_ms, until, sizeof(until));
    pg_text(&p, q->device);
    pg_text(&p, q->metric);
    pg_text(&p, since);
    pg_text(&p, until);
    ret = query(r, R_QUERY, &p, &res, "reading samples");
    if (ret == 0)
        ret = sample_rows(res, cb, ctx);
    PQclear(res);
    return ret;
}

static int pg_samples_after(struct et_store_reader *r, int64_t after_id, const char *device,
                            unsigned limit, et_store_sample_cb cb, void *ctx)
{
    struct pg_params p = { .n = 0 };
    PGresult *res;
    int ret;

    pg_int(&p, after_id);
    if (device)
        pg_text(&p, device);
    else
        pg_null(&p);
    pg_int(&p, limit);
    ret = query(r, R_AFTER, &p, &res, "reading samples");
    if (ret == 0)
        ret = sample_rows(res, cb, ctx);
    PQclear(res);
    return ret;
}

static int pg_last_sample_id(struct et_store_reader *r, int64_t *id)
{
    PGresult *res;
    int ret = query(r, R_LAST_ID, NULL, &res, "reading the last sample id");

    if (ret == 0)
        *id = pg_col_i64(res, 0, 0);
    PQclear(res);
    return ret;
}

static int pg_quarantined(struct et_store_reader *r, const char *device,
                          et_store_quarantined_cb cb, void *ctx)
{
    struct pg_params p = { .n = 0 };
    PGresult *res;
    int ret;

    if (device)
        pg_text(&p, device);
    else
        pg_null(&p);
    ret = query(r, R_QUARANTINED, &p, &res, "listing quarantined batches");
    for (int i = 0; ret == 0 && i < PQntuples(res); i++) {
        size_t len = 0;
        unsigned char *bytes = PQunescapeBytea((const unsigned char *)pg_col_text(res, i, 6),
                                               &len);
        struct et_store_quarantined q = {
            .device = pg_col_text(res, i, 0),
            .stream_hex = pg_col_text(res, i, 1),
            .seq = pg_col_u64(res, i, 2),
            .received_ms = pg_col_i64(res, i, 3),
            .n_samples = (uint32_t)pg_col_i64(res, i, 4),
            .reason = pg_col_text(res, i, 5),
            .payload = bytes,
            .len = len,
        };

        ret = bytes ? cb(ctx, &q) : -ENOMEM;
        PQfreemem(bytes);
    }
    PQclear(res);
    return ret;
}

const struct et_store_reader_ops store_pg_reader_ops = {
    .devices = pg_devices,
    .metrics = pg_metrics,
    .query = pg_query,
    .samples_after = pg_samples_after,
    .last_sample_id = pg_last_sample_id,
    .quarantined = pg_quarantined,
    .metric_list = store_pg_metric_list,
    .series = store_pg_series,
    .device_counts = store_pg_device_counts,
};
