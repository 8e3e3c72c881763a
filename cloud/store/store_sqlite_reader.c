/*
 * The SQLite store's reader: store_reader.h in SQL. Each read is one
 * statement and one et_sqlite_each_row() over a row function that turns
 * the row into the struct of store.h for the caller's callback.
 */
#include "store_sqlite.h"

#include <math.h>
#include <stdbool.h>

#include "edgetel/sqlite.h"

#define SAMPLE_COLUMNS \
    "s.id, s.metric_id, m.device, m.name, m.unit, s.ts_ms, s.mono_ms, s.vtype," \
    " s.v_f64, s.v_i64, s.v_bool, s.v_str, s.time_quality, s.seq"

static const char *const reader_sql[SR_COUNT] = {
    /* The ack and start of the device's current stream. */
    [SR_DEVICES] =
        "SELECT d.id, d.online, d.first_seen_ms, d.last_seen_ms, d.boot_id, d.agent_version,"
        " COALESCE(s.acked_through, 0), d.samples_stored,"
        " (SELECT COUNT(*) FROM batches b WHERE b.device = d.id),"
        " d.has_status, d.outbox_batches, d.dropped_samples, d.clock_synced, d.reason,"
        " s.device IS NOT NULL, d.stream, COALESCE(s.started_ms, 0)"
        " FROM devices d LEFT JOIN streams s ON s.device = d.id AND s.stream = d.stream"
        " WHERE (?1 IS NULL OR d.id = ?1) ORDER BY d.id",
    /* A store an aggregator has not migrated yet (read-only: edgetelctl):
     * one ack per device, no streams. */
    [SR_DEVICES_V3] =
        "SELECT d.id, d.online, d.first_seen_ms, d.last_seen_ms, d.boot_id, d.agent_version,"
        " d.acked_through, d.samples_stored,"
        " (SELECT COUNT(*) FROM batches b WHERE b.device = d.id),"
        " d.has_status, d.outbox_batches, d.dropped_samples, d.clock_synced, d.reason,"
        " 0, '', 0"
        " FROM devices d WHERE (?1 IS NULL OR d.id = ?1) ORDER BY d.id",
    [SR_METRICS] =
        "SELECT m.id, m.device, m.name, m.unit, COUNT(s.id), MIN(s.ts_ms), MAX(s.ts_ms), m.tags"
        " FROM metrics m LEFT JOIN samples s ON s.metric_id = m.id"
        " WHERE m.device = ?1 GROUP BY m.id, m.device, m.name, m.unit ORDER BY m.name",
    [SR_QUERY] =
        "SELECT " SAMPLE_COLUMNS " FROM samples s JOIN metrics m ON m.id = s.metric_id"
        " WHERE m.device = ?1 AND m.name = ?2 AND s.ts_ms >= ?3 AND s.ts_ms < ?4"
        " ORDER BY s.ts_ms, s.id",
    [SR_AFTER] =
        "SELECT " SAMPLE_COLUMNS " FROM samples s JOIN metrics m ON m.id = s.metric_id"
        " WHERE s.id > ?1 AND (?2 IS NULL OR m.device = ?2) ORDER BY s.id LIMIT ?3",
    [SR_LAST_ID] = "SELECT COALESCE(MAX(id), 0) FROM samples",
    [SR_QUARANTINED] =
        "SELECT device, stream, seq, received_ms, n_samples, reason, payload FROM quarantine"
        " WHERE (?1 IS NULL OR device = ?1) ORDER BY received_ms, device, stream, seq",
};

static struct store_sqlite *of_reader(struct et_store_reader *r)
{
    return (struct store_sqlite *)((char *)r - offsetof(struct store_sqlite, reader));
}

/* Hand the rows of statement id, bound to args, to fn (store_sqlite_rows()). */
static int each_row(struct et_store_reader *r, enum store_reader_stmt id, const char *what,
                    const struct store_arg *args, size_t n, et_sqlite_row_fn fn,
                    struct store_rows *rows)
{
    struct store_sqlite *ss = of_reader(r);
    sqlite3_stmt *st;
    int ret;

    ret = store_sqlite_stmt(ss, &ss->reader_stmts[id], reader_sql[id], args, n, &st);
    return ret < 0 ? ret : store_sqlite_rows(ss, st, fn, rows, what);
}

static int device_row(void *ctx, sqlite3_stmt *st)
{
    struct store_rows *rows = ctx;
    struct et_store_device d = {
        .id = et_sqlite_col_text(st, 0),
        .online = sqlite3_column_int(st, 1) != 0,
        .first_seen_ms = sqlite3_column_int64(st, 2),
        .last_seen_ms = sqlite3_column_int64(st, 3),
        .boot_id_hex = et_sqlite_col_text(st, 4),
        .agent_version = et_sqlite_col_text(st, 5),
        .acked_through = et_sqlite_col_u64(st, 6),
        .samples_stored = et_sqlite_col_u64(st, 7),
        .batches_stored = et_sqlite_col_u64(st, 8),
        .has_status = sqlite3_column_int(st, 9) != 0,
        .outbox_batches = et_sqlite_col_u64(st, 10),
        .dropped_samples = et_sqlite_col_u64(st, 11),
        .clock_synced = sqlite3_column_int(st, 12) != 0,
        .reason = et_sqlite_col_text(st, 13),
        .has_stream = sqlite3_column_int(st, 14) != 0,
        .stream_hex = et_sqlite_col_text(st, 15),
        .stream_started_ms = sqlite3_column_int64(st, 16),
    };

    return store_rows_cb(rows, rows->cb.device(rows->ctx, &d));
}

static int sqlite_devices(struct et_store_reader *r, const char *only, et_store_device_cb cb,
                          void *ctx)
{
    struct store_rows rows = { .cb.device = cb, .ctx = ctx };
    enum store_reader_stmt id =
        of_reader(r)->version < STORE_SCHEMA_STREAMS ? SR_DEVICES_V3 : SR_DEVICES;

    return each_row(r, id, "listing devices", STORE_ARGS(only ? STORE_TEXT(only) : STORE_NULL),
                    device_row, &rows);
}

int store_sqlite_metric_row(void *ctx, sqlite3_stmt *st)
{
    struct store_rows *rows = ctx;
    struct et_store_metric m = {
        .id = sqlite3_column_int64(st, 0),
        .device = et_sqlite_col_text(st, 1),
        .name = et_sqlite_col_text(st, 2),
        .unit = et_sqlite_col_text(st, 3),
        .samples = et_sqlite_col_u64(st, 4),
        .first_ts_ms = sqlite3_column_int64(st, 5),
        .last_ts_ms = sqlite3_column_int64(st, 6),
        .tags = et_sqlite_col_text(st, 7),
    };

    return store_rows_cb(rows, rows->cb.metric(rows->ctx, &m));
}

static int sqlite_metrics(struct et_store_reader *r, const char *device, et_store_metric_cb cb,
                          void *ctx)
{
    struct store_rows rows = { .cb.metric = cb, .ctx = ctx };

    return each_row(r, SR_METRICS, "listing metrics", STORE_ARGS(STORE_TEXT(device)),
                    store_sqlite_metric_row, &rows);
}

/* A row of SAMPLE_COLUMNS. */
static int sample_row(void *ctx, sqlite3_stmt *st)
{
    struct store_rows *rows = ctx;
    struct et_store_sample smp = {
        .id = sqlite3_column_int64(st, 0),
        .metric_id = sqlite3_column_int64(st, 1),
        .device = et_sqlite_col_text(st, 2),
        .metric = et_sqlite_col_text(st, 3),
        .unit = et_sqlite_col_text(st, 4),
        .ts_ms = sqlite3_column_int64(st, 5),
        .mono_ms = sqlite3_column_int64(st, 6),
        .value.type = (enum et_type)sqlite3_column_int(st, 7),
        .time_quality = (enum et_time_quality)sqlite3_column_int(st, 12),
        .seq = et_sqlite_col_u64(st, 13),
    };

    switch (smp.value.type) {
    case ET_TYPE_F64:
        /* SQLite stores a NaN as NULL (infinities it keeps as REAL): in
         * an F64 row a NULL is the NaN the device sent. */
        smp.value.u.f64 = sqlite3_column_type(st, 8) == SQLITE_NULL
                          ? NAN : sqlite3_column_double(st, 8);
        break;
    case ET_TYPE_I64:
        smp.value.u.i64 = sqlite3_column_int64(st, 9);
        break;
    case ET_TYPE_BOOL:
        smp.value.u.b = sqlite3_column_int(st, 10) != 0;
        break;
    case ET_TYPE_STR:
    default:
        smp.value.type = ET_TYPE_STR;
        smp.value.u.str = et_sqlite_col_text(st, 11);
        break;
    }
    return store_rows_cb(rows, rows->cb.sample(rows->ctx, &smp));
}

static int sqlite_query(struct et_store_reader *r, const struct et_store_query *q,
                        et_store_sample_cb cb, void *ctx)
{
    struct store_rows rows = { .cb.sample = cb, .ctx = ctx };

    return each_row(r, SR_QUERY, "reading samples",
                    STORE_ARGS(STORE_TEXT(q->device), STORE_TEXT(q->metric),
                               STORE_INT(q->since_ms), STORE_INT(q->until_ms)),
                    sample_row, &rows);
}

static int sqlite_samples_after(struct et_store_reader *r, int64_t after_id, const char *device,
                                unsigned limit, et_store_sample_cb cb, void *ctx)
{
    struct store_rows rows = { .cb.sample = cb, .ctx = ctx };

    return each_row(r, SR_AFTER, "reading samples",
                    STORE_ARGS(STORE_INT(after_id), device ? STORE_TEXT(device) : STORE_NULL,
                               STORE_INT(limit)),
                    sample_row, &rows);
}

static int read_id(void *ctx, sqlite3_stmt *st)
{
    *(int64_t *)ctx = sqlite3_column_int64(st, 0);
    return 0;
}

static int sqlite_last_sample_id(struct et_store_reader *r, int64_t *id)
{
    struct store_sqlite *ss = of_reader(r);
    sqlite3_stmt *st;
    int ret;

    ret = store_sqlite_stmt(ss, &ss->reader_stmts[SR_LAST_ID], reader_sql[SR_LAST_ID], NULL, 0,
                            &st);
    if (ret < 0)
        return ret;
    return store_sqlite_failed(ss, et_sqlite_one_row(st, read_id, id),
                               "reading the last sample id");
}

static int quarantined_row(void *ctx, sqlite3_stmt *st)
{
    struct store_rows *rows = ctx;
    struct et_store_quarantined q = {
        .device = et_sqlite_col_text(st, 0),
        .stream_hex = et_sqlite_col_text(st, 1),
        .seq = et_sqlite_col_u64(st, 2),
        .received_ms = sqlite3_column_int64(st, 3),
        .n_samples = (uint32_t)sqlite3_column_int64(st, 4),
        .reason = et_sqlite_col_text(st, 5),
    };

    /* Blob first, then its size: the documented order for a stable pointer. */
    q.payload = sqlite3_column_blob(st, 6);
    q.len = (size_t)sqlite3_column_bytes(st, 6);
    return store_rows_cb(rows, rows->cb.quarantined(rows->ctx, &q));
}

static int sqlite_quarantined(struct et_store_reader *r, const char *device,
                              et_store_quarantined_cb cb, void *ctx)
{
    struct store_rows rows = { .cb.quarantined = cb, .ctx = ctx };

    /* A store an aggregator has not migrated yet has nothing in quarantine. */
    if (of_reader(r)->version < STORE_SCHEMA_QUARANTINE)
        return 0;
    return each_row(r, SR_QUARANTINED, "listing quarantined batches",
                    STORE_ARGS(device ? STORE_TEXT(device) : STORE_NULL), quarantined_row,
                    &rows);
}

const struct et_store_reader_ops store_sqlite_reader_ops = {
    .devices = sqlite_devices,
    .metrics = sqlite_metrics,
    .query = sqlite_query,
    .samples_after = sqlite_samples_after,
    .last_sample_id = sqlite_last_sample_id,
    .quarantined = sqlite_quarantined,
    .metric_list = store_sqlite_metric_list,
    .series = store_sqlite_series,
    .device_counts = store_sqlite_device_counts,
};
