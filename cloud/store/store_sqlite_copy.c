/*
 * The SQLite store read for store copy (backend.h, et_store_copy_ops):
 * streams, batch rows in key order, a batch's samples. Statements are
 * prepared per call: copy runs them a batch at a time, not a sample.
 */
#include "store_sqlite.h"

#include <errno.h>
#include <math.h>

#include "edgetel/sqlite.h"

/* A store of the current schema only: an older one is migrated by opening
 * it for writing (an aggregator, or edgetelctl config push) first. */
static int usable(struct store_sqlite *ss)
{
    return ss->version < STORE_SCHEMA_QUARANTINE ? -EPROTO : 0;
}

static int prepare(struct store_sqlite *ss, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(ss->db, sql, -1, st, NULL);

    return rc == SQLITE_OK ? 0 : store_sqlite_failed(ss, et_sqlite_errno(ss->db, rc),
                                                     "reading for a copy");
}

static int copy_streams(struct et_store *s, et_store_copy_stream_cb cb, void *ctx)
{
    struct store_sqlite *ss = (struct store_sqlite *)s;
    sqlite3_stmt *st = NULL;
    int ret = usable(ss), rc;

    if (ret == 0)
        ret = prepare(ss, "SELECT device, stream, started_ms, acked_through FROM streams"
                      " ORDER BY device, started_ms, stream", &st);
    while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const struct et_store_copy_stream row = {
            .device = et_sqlite_col_text(st, 0),
            .stream_hex = et_sqlite_col_text(st, 1),
            .started_ms = sqlite3_column_int64(st, 2),
            .acked_through = et_sqlite_col_u64(st, 3),
        };

        ret = cb(ctx, &row);
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = store_sqlite_failed(ss, et_sqlite_errno(ss->db, rc), "reading streams");
    sqlite3_finalize(st);
    return ret;
}

static int copy_batches(struct et_store *s, const char *device, const char *stream,
                        uint64_t seq, unsigned limit, et_store_copy_batch_cb cb, void *ctx)
{
    struct store_sqlite *ss = (struct store_sqlite *)s;
    sqlite3_stmt *st = NULL;
    int ret = usable(ss), rc = SQLITE_DONE;

    if (ret == 0)
        ret = prepare(ss, "SELECT device, stream, seq, received_ms, n_samples, historical,"
                      " boot_id, time_quality, first_sample_id, last_sample_id, unsynced"
                      " FROM batches WHERE (device, stream, seq) > (?1, ?2, ?3)"
                      " ORDER BY device, stream, seq LIMIT ?4", &st);
    if (ret == 0) {
        sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, stream, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, et_sqlite_u64_arg(seq));
        sqlite3_bind_int64(st, 4, limit);
    }
    while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const struct et_store_batch b = {
            .device = et_sqlite_col_text(st, 0),
            .stream_hex = et_sqlite_col_text(st, 1),
            .seq = et_sqlite_col_u64(st, 2),
            .received_ms = sqlite3_column_int64(st, 3),
            .n_samples = (uint32_t)sqlite3_column_int64(st, 4),
            .historical = sqlite3_column_int(st, 5) != 0,
            .boot_id_hex = et_sqlite_col_text(st, 6),
            .time_quality = (enum et_time_quality)sqlite3_column_int(st, 7),
            .first_sample_id = sqlite3_column_int64(st, 8),
            .last_sample_id = sqlite3_column_int64(st, 9),
            .unsynced_samples = (uint32_t)sqlite3_column_int64(st, 10),
        };

        ret = cb(ctx, &b);
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = store_sqlite_failed(ss, et_sqlite_errno(ss->db, rc), "reading batches");
    sqlite3_finalize(st);
    return ret;
}

static int copy_batch_samples(struct et_store *s, const struct et_store_batch *b,
                              et_store_sample_cb cb, void *ctx)
{
    struct store_sqlite *ss = (struct store_sqlite *)s;
    sqlite3_stmt *st = NULL;
    int ret = usable(ss), rc = SQLITE_DONE;

    /* The id range finds the batch's rows; seq and the device's metrics
     * make sure of them (as the writer's search for waiting samples). */
    if (ret == 0)
        ret = prepare(ss, "SELECT id, metric_id, ts_ms, mono_ms, vtype, v_f64, v_i64, v_bool,"
                      " v_str, time_quality, seq FROM samples"
                      " WHERE id BETWEEN ?2 AND ?3 AND seq = ?4"
                      " AND metric_id IN (SELECT id FROM metrics WHERE device = ?1)"
                      " ORDER BY id", &st);
    if (ret == 0) {
        sqlite3_bind_text(st, 1, b->device, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, b->first_sample_id);
        sqlite3_bind_int64(st, 3, b->last_sample_id);
        sqlite3_bind_int64(st, 4, et_sqlite_u64_arg(b->seq));
    }
    while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct et_store_sample smp = {
            .id = sqlite3_column_int64(st, 0),
            .metric_id = sqlite3_column_int64(st, 1),
            .ts_ms = sqlite3_column_int64(st, 2),
            .mono_ms = sqlite3_column_int64(st, 3),
            .value.type = (enum et_type)sqlite3_column_int(st, 4),
            .time_quality = (enum et_time_quality)sqlite3_column_int(st, 9),
            .seq = et_sqlite_col_u64(st, 10),
        };

        switch (smp.value.type) {
        case ET_TYPE_F64:
            smp.value.u.f64 = sqlite3_column_type(st, 5) == SQLITE_NULL
                              ? NAN : sqlite3_column_double(st, 5);
            break;
        case ET_TYPE_I64:
            smp.value.u.i64 = sqlite3_column_int64(st, 6);
            break;
        case ET_TYPE_BOOL:
            smp.value.u.b = sqlite3_column_int(st, 7) != 0;
            break;
        default:
            smp.value.type = ET_TYPE_STR;
            smp.value.u.str = et_sqlite_col_text(st, 8);
            break;
        }
        ret = cb(ctx, &smp);
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = store_sqlite_failed(ss, et_sqlite_errno(ss->db, rc), "reading samples");
    sqlite3_finalize(st);
    return ret;
}

static int copy_count(struct et_store *s, uint64_t *batches, uint64_t *samples)
{
    struct store_sqlite *ss = (struct store_sqlite *)s;
    int64_t b = 0, n = 0;
    int rc;

    if (usable(ss) < 0)
        return -EPROTO;
    rc = et_sqlite_int(ss->db, "SELECT COUNT(*) FROM batches", &b);

    if (rc == SQLITE_OK)
        rc = et_sqlite_int(ss->db, "SELECT COUNT(*) FROM samples", &n);
    *batches = (uint64_t)b;
    *samples = (uint64_t)n;
    return rc == SQLITE_OK ? 0 : store_sqlite_failed(ss, et_sqlite_errno(ss->db, rc),
                                                     "counting");
}

const struct et_store_copy_ops store_sqlite_copy_ops = {
    .streams = copy_streams,
    .batches = copy_batches,
    .batch_samples = copy_batch_samples,
    .count = copy_count,
};
