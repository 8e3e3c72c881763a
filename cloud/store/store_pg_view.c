/*
 * The PostgreSQL store's reads for the web view (store_reader.h:
 * metric_list, series, device_counts), answering what the SQLite
 * backend's store_sqlite_view.c answers. Each is one statement whose cost
 * is bounded by what it answers, on the samples table partitioned by day
 * (store_pg_part.c):
 *   - the metric list reads, per metric, the first and the last entry of
 *     the (metric_id, ts) index in each partition, never the samples;
 *   - a series names its time range as timestamptz parameters, so only
 *     the range's partitions are read (pruned when the plan is made, or
 *     when a generic plan starts), each through the (metric_id, ts) index;
 *   - the counts read today's partition (and the empty ones made ahead)
 *     by time, or the rows stored since the last count by id, and join the
 *     metrics once per metric, not once per sample.
 */
#include "store_pg.h"

#include <errno.h>
#include <math.h>

/* Counts per metric of the samples that match, then per device. */
#define COUNTS(where) \
    "SELECT m.device, SUM(c.n)::bigint FROM (SELECT metric_id, COUNT(*) AS n FROM samples" \
    " WHERE " where " GROUP BY metric_id) c JOIN metrics m ON m.id = c.metric_id" \
    " GROUP BY m.device"

const char *const store_pg_view_sql[PG_VIEW_COUNT] = {
    /* MIN and MAX of the index's second column for one first column: a
     * probe at either end of the index in each partition. Names in byte
     * order, as SQLite orders them, whatever the database's collation. */
    [PG_VIEW_METRIC_LIST] =
        "SELECT m.id, m.device, m.name, m.unit, 0,"
        " COALESCE(" PG_MS_OF("(SELECT MIN(ts) FROM samples WHERE metric_id = m.id)") ", 0),"
        " COALESCE(" PG_MS_OF("(SELECT MAX(ts) FROM samples WHERE metric_id = m.id)") ", 0),"
        " m.tags FROM metrics m WHERE m.device = $1 ORDER BY m.name COLLATE \"C\"",
    /*
     * A number per sample: the typed column of its vtype (0 f64, 1 i64,
     * 2 bool as 0 or 1; a string has none). PostgreSQL keeps NaN, which
     * has no place among numbers: NULLIF takes it out, as SQLite's NULL
     * does. time_quality 2 unsynced, 3 corrected, 4 uncorrectable
     * (et_time_quality). $3 is the range's start in ms, for the bucket;
     * $5 and $6 the range as timestamptz, which prunes the partitions.
     */
    [PG_VIEW_SERIES] =
        "SELECT x.b, COUNT(*), COUNT(x.v), MIN(x.v), AVG(x.v), MAX(x.v), MIN(x.t), MAX(x.t),"
        " COUNT(*) FILTER (WHERE x.q = 2), COUNT(*) FILTER (WHERE x.q = 3),"
        " COUNT(*) FILTER (WHERE x.q = 4)"
        " FROM (SELECT (" PG_MS_OF("s.ts") " - $3::bigint) / $4::bigint AS b,"
        "   " PG_MS_OF("s.ts") " AS t, s.time_quality AS q,"
        "   CASE s.vtype WHEN 0 THEN NULLIF(s.v_f64, 'NaN') WHEN 1 THEN s.v_i64::float8"
        "    WHEN 2 THEN s.v_bool::int::float8 END AS v"
        "   FROM samples s"
        "   WHERE s.metric_id = (SELECT id FROM metrics WHERE device = $1 AND name = $2)"
        "   AND s.ts >= $5::timestamptz AND s.ts < $6::timestamptz) x"
        " GROUP BY x.b ORDER BY x.b",
    /*
     * By time: every metric's samples since $1, read from today's
     * partition; "id + 0" keeps the planner off the id index, which would
     * read every partition's rows by id (the bound $2 only leaves out what
     * committed after the count's last id, for the next count by id).
     * By id: the rows after $2 through $3 by the id index, of today's
     * partitions only.
     */
    [PG_VIEW_COUNTS_BY_TIME] = COUNTS("ts >= $1::timestamptz AND id + 0 <= $2::bigint"),
    [PG_VIEW_COUNTS_BY_ID] =
        COUNTS("id > $2::bigint AND id <= $3::bigint AND ts >= $1::timestamptz"),
};

static int query(struct et_store_reader *r, enum store_pg_view_stmt id,
                 const struct pg_params *p, PGresult **res, const char *what)
{
    return store_pg_run(store_pg_of_reader(r), PG_PART_VIEW, id, store_pg_view_sql[id], p, res,
                        what);
}

int store_pg_metric_list(struct et_store_reader *r, const char *device, et_store_metric_cb cb,
                         void *ctx)
{
    return store_pg_metrics_read(store_pg_of_reader(r), PG_PART_VIEW, PG_VIEW_METRIC_LIST,
                                 store_pg_view_sql[PG_VIEW_METRIC_LIST], device, cb, ctx);
}

/* A number of a bucket: 0 where there is none (a bucket without numbers). */
static double number_or_0(const PGresult *res, int row, int col)
{
    return pg_col_null(res, row, col) ? 0 : pg_col_f64(res, row, col);
}

static int bucket_rows(PGresult *res, et_store_bucket_cb cb, void *ctx)
{
    int ret = 0;

    for (int i = 0; ret == 0 && i < PQntuples(res); i++) {
        struct et_store_bucket b = {
            .index = pg_col_i64(res, i, 0),
            .samples = pg_col_u64(res, i, 1),
            .values = pg_col_u64(res, i, 2),
            .min = number_or_0(res, i, 3),
            .avg = number_or_0(res, i, 4),
            .max = number_or_0(res, i, 5),
            .first_ts_ms = pg_col_i64(res, i, 6),
            .last_ts_ms = pg_col_i64(res, i, 7),
            .unsynced = pg_col_u64(res, i, 8),
            .corrected = pg_col_u64(res, i, 9),
            .uncorrectable = pg_col_u64(res, i, 10),
        };

        /* AVG of +inf and -inf is NaN: no mean, as SQLite's NULL says. */
        b.avg_known = !pg_col_null(res, i, 4) && !isnan(b.avg);
        if (!b.avg_known)
            b.avg = 0;
        ret = cb(ctx, &b);
    }
    return ret;
}

int store_pg_series(struct et_store_reader *r, const struct et_store_series_query *q,
                    et_store_bucket_cb cb, void *ctx)
{
    struct pg_params p = { .n = 0 };
    char since[48], until[48];
    PGresult *res;
    int ret;

    if (q->bucket_ms < 1 || q->until_ms <= q->since_ms)
        return -EINVAL;
    pg_ms_text(q->since_ms, since, sizeof(since));
    pg_ms_text(q->until_ms, until, sizeof(until));
    pg_text(&p, q->device);
    pg_text(&p, q->metric);
    pg_int(&p, q->since_ms);
    pg_int(&p, q->bucket_ms);
    pg_text(&p, since);
    pg_text(&p, until);
    ret = query(r, PG_VIEW_SERIES, &p, &res, "reading a series");
    if (ret == 0)
        ret = bucket_rows(res, cb, ctx);
    PQclear(res);
    return ret;
}

int store_pg_device_counts(struct et_store_reader *r, int64_t since_ms, int64_t after_id,
                           int64_t through_id, et_store_count_cb cb, void *ctx)
{
    struct pg_params p = { .n = 0 };
    char since[48];
    PGresult *res;
    int ret;

    pg_ms_text(since_ms, since, sizeof(since));
    pg_text(&p, since);
    if (after_id > 0)
        pg_int(&p, after_id);
    pg_int(&p, through_id);
    ret = query(r, after_id > 0 ? PG_VIEW_COUNTS_BY_ID : PG_VIEW_COUNTS_BY_TIME, &p, &res,
                "counting samples");
    for (int i = 0; ret == 0 && i < PQntuples(res); i++) {
        struct et_store_count c = {
            .device = pg_col_text(res, i, 0),
            .samples = pg_col_u64(res, i, 1),
        };

        ret = cb(ctx, &c);
    }
    PQclear(res);
    return ret;
}
