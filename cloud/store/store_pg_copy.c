/*
 * The PostgreSQL store read for store copy (backend.h, et_store_copy_ops):
 * streams, batch rows in key order, a batch's samples. Statements are
 * sent unprepared: copy runs them a batch at a time, not a sample.
 */
#include "store_pg.h"

#include <errno.h>
#include <stdio.h>

/* sql with p; each row to row(ctx, res, i) until it returns non-zero. */
static int each(struct store_pg *pg, const char *sql, const struct pg_params *p,
                int (*row)(void *ctx, const PGresult *res, int i), void *ctx, const char *what)
{
    PGresult *r = PQexecParams(pg->conn, sql, p ? p->n : 0, NULL, p ? p->values : NULL,
                               p ? p->lengths : NULL, p ? p->formats : NULL, 0);
    int ret = 0;

    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        ret = store_pg_failed(pg, store_pg_errno(pg, r), what, PQresultErrorMessage(r));
    for (int i = 0; ret == 0 && i < PQntuples(r); i++)
        ret = row(ctx, r, i);
    PQclear(r);
    return ret;
}

struct rows {
    void *cb;
    void *ctx;
};

static int stream_row(void *ctx, const PGresult *r, int i)
{
    struct rows *rows = ctx;
    const struct et_store_copy_stream st = {
        .device = pg_col_text(r, i, 0),
        .stream_hex = pg_col_text(r, i, 1),
        .started_ms = pg_col_i64(r, i, 2),
        .acked_through = pg_col_u64(r, i, 3),
    };

    return ((et_store_copy_stream_cb)rows->cb)(rows->ctx, &st);
}

static int copy_streams(struct et_store *s, et_store_copy_stream_cb cb, void *ctx)
{
    struct rows rows = { .cb = (void *)cb, .ctx = ctx };

    return each((struct store_pg *)s, "SELECT device, stream, started_ms, acked_through"
                " FROM streams ORDER BY device, started_ms, stream", NULL, stream_row, &rows,
                "reading streams");
}

static int batch_row(void *ctx, const PGresult *r, int i)
{
    struct rows *rows = ctx;
    const struct et_store_batch b = {
        .device = pg_col_text(r, i, 0),
        .stream_hex = pg_col_text(r, i, 1),
        .seq = pg_col_u64(r, i, 2),
        .received_ms = pg_col_i64(r, i, 3),
        .n_samples = (uint32_t)pg_col_i64(r, i, 4),
        .historical = pg_col_bool(r, i, 5),
        .boot_id_hex = pg_col_text(r, i, 6),
        .time_quality = (enum et_time_quality)pg_col_i64(r, i, 7),
        .first_sample_id = pg_col_i64(r, i, 8),
        .last_sample_id = pg_col_i64(r, i, 9),
        .unsynced_samples = (uint32_t)pg_col_i64(r, i, 10),
    };

    return ((et_store_copy_batch_cb)rows->cb)(rows->ctx, &b);
}

static int copy_batches(struct et_store *s, const char *device, const char *stream,
                        uint64_t seq, unsigned limit, et_store_copy_batch_cb cb, void *ctx)
{
    struct rows rows = { .cb = (void *)cb, .ctx = ctx };
    struct pg_params p = { .n = 0 };

    pg_text(&p, device);
    pg_text(&p, stream);
    pg_u64(&p, seq);
    pg_int(&p, limit);
    /* Paged by the key in the database's own order: each page starts
     * after the last row of the one before. */
    return each((struct store_pg *)s,
                "SELECT device, stream, seq, received_ms, n_samples, historical, boot_id,"
                " time_quality, first_sample_id, last_sample_id, unsynced FROM batches"
                " WHERE (device, stream, seq) > ($1, $2, $3::bigint)"
                " ORDER BY device, stream, seq LIMIT $4", &p, batch_row, &rows,
                "reading batches");
}

static int sample_row(void *ctx, const PGresult *r, int i)
{
    struct rows *rows = ctx;
    struct et_store_sample smp = {
        .id = pg_col_i64(r, i, 0),
        .metric_id = pg_col_i64(r, i, 1),
        .ts_ms = pg_col_i64(r, i, 2),
        .mono_ms = pg_col_i64(r, i, 3),
        .value.type = (enum et_type)pg_col_i64(r, i, 4),
        .time_quality = (enum et_time_quality)pg_col_i64(r, i, 9),
        .seq = pg_col_u64(r, i, 10),
    };

    pg_col_value(r, i, 5, &smp.value);
    return ((et_store_sample_cb)rows->cb)(rows->ctx, &smp);
}

static int copy_batch_samples(struct et_store *s, const struct et_store_batch *b,
                              et_store_sample_cb cb, void *ctx)
{
    struct rows rows = { .cb = (void *)cb, .ctx = ctx };
    struct pg_params p = { .n = 0 };

    pg_text(&p, b->device);
    pg_int(&p, b->first_sample_id);
    pg_int(&p, b->last_sample_id);
    pg_u64(&p, b->seq);
    return each((struct store_pg *)s,
                "SELECT id, metric_id, " PG_MS_OF("ts") ", mono_ms, vtype, v_f64, v_i64, v_bool,"
                " v_str, time_quality, seq FROM samples"
                " WHERE id BETWEEN $2 AND $3 AND seq = $4"
                " AND metric_id IN (SELECT id FROM metrics WHERE device = $1) ORDER BY id",
                &p, sample_row, &rows, "reading samples");
}

static int count_row(void *ctx, const PGresult *r, int i)
{
    uint64_t *out = ctx;

    out[0] = pg_col_u64(r, i, 0);
    out[1] = pg_col_u64(r, i, 1);
    return 0;
}

static int copy_count(struct et_store *s, uint64_t *batches, uint64_t *samples)
{
    uint64_t n[2] = { 0, 0 };
    int ret = each((struct store_pg *)s, "SELECT (SELECT count(*) FROM batches),"
                   " (SELECT count(*) FROM samples)", NULL, count_row, n, "counting");

    *batches = n[0];
    *samples = n[1];
    return ret;
}

const struct et_store_copy_ops store_pg_copy_ops = {
    .streams = copy_streams,
    .batches = copy_batches,
    .batch_samples = copy_batch_samples,
    .count = copy_count,
};
