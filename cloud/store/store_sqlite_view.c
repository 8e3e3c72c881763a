/*
 * The SQLite store's reads for the web view (store_reader.h: metric_list,
 * series, device_counts). Each is one statement whose cost is bounded by
 * what it answers: the metric list reads two index entries a metric, a
 * series reads the samples of its range once through the (metric_id,
 * ts_ms) index, the counts read either today's samples by that index or
 * the rows stored since the last count by id.
 */
#include "store_sqlite.h"

#include <errno.h>

#include "edgetel/sqlite.h"

static const char *const view_sql[SR_COUNT] = {
    /* MIN and MAX of one indexed column are one index probe each. */
    [SR_METRIC_LIST] =
        "SELECT m.id, m.device, m.name, m.unit, 0,"
        " COALESCE((SELECT MIN(ts_ms) FROM samples WHERE metric_id = m.id), 0),"
        " COALESCE((SELECT MAX(ts_ms) FROM samples WHERE metric_id = m.id), 0), m.tags"
        " FROM metrics m WHERE m.device = ?1 ORDER BY m.name",
    /*
     * A number per sample: the typed column of its vtype (0 f64, 1 i64,
     * 2 bool; a string has none, and a NaN is stored as NULL). time_quality
     * 2 unsynced, 3 corrected, 4 uncorrectable (et_time_quality).
     */
    [SR_SERIES] =
        "SELECT (s.ts_ms - ?3) / ?5 AS b, COUNT(*), COUNT(s.v), MIN(s.v), AVG(s.v), MAX(s.v),"
        " MIN(s.ts_ms), MAX(s.ts_ms), SUM(s.time_quality = 2), SUM(s.time_quality = 3),"
        " SUM(s.time_quality = 4)"
        " FROM (SELECT ts_ms, time_quality,"
        "   CASE vtype WHEN 0 THEN v_f64 WHEN 1 THEN v_i64 WHEN 2 THEN v_bool END AS v"
        "   FROM samples WHERE metric_id = (SELECT id FROM metrics WHERE device = ?1 AND name = ?2)"
        "   AND ts_ms >= ?3 AND ts_ms < ?4) s"
        " GROUP BY b ORDER BY b",
    /*
     * By time: every metric's samples since ?1 through the index; "+s.id"
     * keeps the planner off a scan of every row by id. By id: the rows
     * after ?2, each joined to its metric (CROSS JOIN keeps samples the
     * outer loop).
     */
    [SR_COUNTS_BY_TIME] =
        "SELECT m.device, COUNT(*) FROM metrics m CROSS JOIN samples s"
        " ON s.metric_id = m.id AND s.ts_ms >= ?1 WHERE +s.id <= ?3 GROUP BY m.device",
    [SR_COUNTS_BY_ID] =
        "SELECT m.device, COUNT(*) FROM samples s CROSS JOIN metrics m ON m.id = s.metric_id"
        " WHERE s.id > ?2 AND s.id <= ?3 AND +s.ts_ms >= ?1 GROUP BY m.device",
};

static struct store_sqlite *of_reader(struct et_store_reader *r)
{
    return (struct store_sqlite *)((char *)r - offsetof(struct store_sqlite, reader));
}

static int view_rows(struct et_store_reader *r, enum store_reader_stmt id, const char *what,
                     const struct store_arg *args, size_t n, et_sqlite_row_fn fn,
                     struct store_rows *rows)
{
    struct store_sqlite *ss = of_reader(r);
    sqlite3_stmt *st;
    int ret = store_sqlite_stmt(ss, &ss->reader_stmts[id], view_sql[id], args, n, &st);

    return ret < 0 ? ret : store_sqlite_rows(ss, st, fn, rows, what);
}

int store_sqlite_metric_list(struct et_store_reader *r, const char *device,
                             et_store_metric_cb cb, void *ctx)
{
    struct store_rows rows = { .cb.metric = cb, .ctx = ctx };

    return view_rows(r, SR_METRIC_LIST, "listing metrics", STORE_ARGS(STORE_TEXT(device)),
                     store_sqlite_metric_row, &rows);
}

static int bucket_row(void *ctx, sqlite3_stmt *st)
{
    struct store_rows *rows = ctx;
    struct et_store_bucket b = {
        .index = sqlite3_column_int64(st, 0),
        .samples = et_sqlite_col_u64(st, 1),
        .values = et_sqlite_col_u64(st, 2),
        .min = sqlite3_column_double(st, 3),
        .avg = sqlite3_column_double(st, 4),
        .max = sqlite3_column_double(st, 5),
        /* AVG of +inf and -inf is NaN, which SQLite hands out as NULL. */
        .avg_known = sqlite3_column_type(st, 4) != SQLITE_NULL,
        .first_ts_ms = sqlite3_column_int64(st, 6),
        .last_ts_ms = sqlite3_column_int64(st, 7),
        .unsynced = et_sqlite_col_u64(st, 8),
        .corrected = et_sqlite_col_u64(st, 9),
        .uncorrectable = et_sqlite_col_u64(st, 10),
    };

    return store_rows_cb(rows, rows->cb.bucket(rows->ctx, &b));
}

int store_sqlite_series(struct et_store_reader *r, const struct et_store_series_query *q,
                        et_store_bucket_cb cb, void *ctx)
{
    struct store_rows rows = { .cb.bucket = cb, .ctx = ctx };

    if (q->bucket_ms < 1 || q->until_ms <= q->since_ms)
        return -EINVAL;
    return view_rows(r, SR_SERIES, "reading a series",
                     STORE_ARGS(STORE_TEXT(q->device), STORE_TEXT(q->metric),
                                STORE_INT(q->since_ms), STORE_INT(q->until_ms),
                                STORE_INT(q->bucket_ms)),
                     bucket_row, &rows);
}

static int count_row(void *ctx, sqlite3_stmt *st)
{
    struct store_rows *rows = ctx;
    struct et_store_count c = {
        .device = et_sqlite_col_text(st, 0),
        .samples = et_sqlite_col_u64(st, 1),
    };

    return store_rows_cb(rows, rows->cb.count(rows->ctx, &c));
}

int store_sqlite_device_counts(struct et_store_reader *r, int64_t since_ms, int64_t after_id,
                               int64_t through_id, et_store_count_cb cb, void *ctx)
{
    struct store_rows rows = { .cb.count = cb, .ctx = ctx };

    return view_rows(r, after_id > 0 ? SR_COUNTS_BY_ID : SR_COUNTS_BY_TIME, "counting samples",
                     STORE_ARGS(STORE_INT(since_ms), STORE_INT(after_id), STORE_INT(through_id)),
                     count_row, &rows);
}
