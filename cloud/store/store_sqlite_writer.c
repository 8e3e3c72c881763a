/*
 * The SQLite store's writer: store_writer.h in SQL. Each call runs the
 * statements for what it is given and decides nothing (see store_writer.h
 * for the contract, cloud/ for the rules that make these calls).
 */
#include "store_sqlite.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "edgetel/sqlite.h"

static const char *const writer_sql[SW_COUNT] = {
    [SW_BEGIN] = "BEGIN IMMEDIATE",
    [SW_COMMIT] = "COMMIT",
    [SW_ROLLBACK] = "ROLLBACK",
    /* A quarantined seq counts as stored (store_writer.h). */
    [SW_BATCH_SEEN] =
        "SELECT 1 FROM batches WHERE device = ?1 AND stream = ?2 AND seq = ?3"
        " UNION ALL SELECT 1 FROM quarantine WHERE device = ?1 AND stream = ?2 AND seq = ?3",
    [SW_DEVICE_INSERT] =
        "INSERT INTO devices (id, first_seen_ms, last_seen_ms) VALUES (?1, ?2, ?2)"
        " ON CONFLICT (id) DO NOTHING",
    [SW_DEVICE_SEEN] =
        "UPDATE devices SET last_seen_ms = MAX(last_seen_ms, ?2),"
        " boot_id = CASE WHEN ?3 <> '' THEN ?3 ELSE boot_id END,"
        " samples_stored = samples_stored + ?4 WHERE id = ?1",
    [SW_STATUS_GET] = "SELECT online, has_status FROM devices WHERE id = ?1",
    [SW_STATUS] =
        "UPDATE devices SET online = ?2,"
        " boot_id = CASE WHEN ?3 <> '' THEN ?3 ELSE boot_id END,"
        " agent_version = CASE WHEN ?4 <> '' THEN ?4 ELSE agent_version END,"
        " has_status = 1, outbox_batches = ?5, dropped_samples = ?6, clock_synced = ?7,"
        " reason = ?8, status_wall_ms = ?9 WHERE id = ?1",
    [SW_METRIC_GET] = "SELECT id, unit, tags FROM metrics WHERE device = ?1 AND name = ?2",
    [SW_METRIC_INSERT] = "INSERT INTO metrics (device, name, unit) VALUES (?1, ?2, ?3)",
    [SW_METRIC_UNIT] = "UPDATE metrics SET unit = ?2 WHERE id = ?1",
    [SW_METRIC_TAGS] = "UPDATE metrics SET tags = ?2 WHERE id = ?1 AND tags != ?2",
    [SW_BATCH_INSERT] =
        "INSERT INTO batches (device, seq, received_ms, n_samples, historical, boot_id,"
        " time_quality, first_sample_id, last_sample_id, unsynced, stream)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [SW_SAMPLE_INSERT] =
        "INSERT INTO samples (metric_id, ts_ms, mono_ms, vtype, v_f64, v_i64, v_bool, v_str,"
        " time_quality, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [SW_ACK_GET] = "SELECT acked_through FROM streams WHERE device = ?1 AND stream = ?2",
    [SW_ACK_SET] =
        "UPDATE streams SET acked_through = MAX(acked_through, ?3)"
        " WHERE device = ?1 AND stream = ?2",
    [SW_SEQS_AFTER] =
        "SELECT seq FROM batches WHERE device = ?1 AND stream = ?2 AND seq > ?3"
        " UNION ALL SELECT seq FROM quarantine WHERE device = ?1 AND stream = ?2 AND seq > ?3"
        " ORDER BY seq LIMIT ?4",
    [SW_CLOCK_GET] =
        "SELECT clock_boot, clock_wall_ms, clock_mono_ms FROM devices WHERE id = ?1",
    [SW_CLOCK_SET] =
        "UPDATE devices SET clock_boot = ?2, clock_wall_ms = ?3, clock_mono_ms = ?4"
        " WHERE id = ?1",
    /* Only batches still waiting are in the partial index batches_unsynced.
     * The id range finds a batch's rows; seq and the device's metrics make
     * sure of them where ids of concurrent writers interleave. CROSS JOIN
     * and the unary + hold SQLite to that plan: left to itself it walks
     * every sample of the device's metrics instead. */
    [SW_UNSYNCED_SAMPLES] =
        "SELECT s.id, s.metric_id, s.ts_ms, s.mono_ms, s.time_quality, s.seq"
        " FROM batches b CROSS JOIN samples s"
        "  ON s.id BETWEEN b.first_sample_id AND b.last_sample_id AND s.seq = b.seq"
        " WHERE b.device = ?1 AND b.boot_id = ?2 AND b.unsynced > 0"
        "  AND +s.metric_id IN (SELECT id FROM metrics WHERE device = ?1)",
    [SW_SAMPLE_TIME] = "UPDATE samples SET ts_ms = ?2, time_quality = ?3 WHERE id = ?1",
    [SW_UNSYNCED_DONE] =
        "UPDATE batches SET unsynced = 0 WHERE device = ?1 AND boot_id = ?2 AND unsynced > 0",
    /* The highest stored seq and when it came: two lookups on the key's end. */
    [SW_STREAM_GET] =
        "SELECT started_ms, acked_through,"
        " (SELECT MAX(seq) FROM batches WHERE device = ?1 AND stream = ?2),"
        " (SELECT received_ms FROM batches WHERE device = ?1 AND stream = ?2"
        "  ORDER BY seq DESC LIMIT 1)"
        " FROM streams WHERE device = ?1 AND stream = ?2",
    [SW_STREAM_CURRENT] =
        "SELECT d.stream, s.acked_through FROM devices d"
        " JOIN streams s ON s.device = d.id AND s.stream = d.stream WHERE d.id = ?1",
    [SW_STREAM_INSERT] = "INSERT INTO streams (device, stream, started_ms) VALUES (?1, ?2, ?3)",
    [SW_STREAM_MAKE_CURRENT] = "UPDATE devices SET stream = ?2 WHERE id = ?1",
    [SW_QUARANTINE] =
        "INSERT INTO quarantine (device, stream, seq, received_ms, n_samples, reason, payload)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [SW_BATCH_SAMPLES] =
        "UPDATE batches SET first_sample_id = ?4, last_sample_id = ?5, unsynced = ?6"
        " WHERE device = ?1 AND stream = ?2 AND seq = ?3",
    [SW_DICT_PUT] =
        "INSERT INTO dictionaries (device, stream, dict_id, idx, metric_id, type, scale)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
    [SW_DICT_GET] =
        "SELECT idx, metric_id, type, scale FROM dictionaries"
        " WHERE device = ?1 AND stream = ?2 AND dict_id = ?3",
};

static struct store_sqlite *of_writer(struct et_store_writer *w)
{
    return (struct store_sqlite *)((char *)w - offsetof(struct store_sqlite, writer));
}

/* The writer's statement id, reset and bound to args. */
static int stmt(struct store_sqlite *ss, enum store_writer_stmt id, const struct store_arg *args,
                size_t n, sqlite3_stmt **st)
{
    return store_sqlite_stmt(ss, &ss->writer_stmts[id], writer_sql[id], args, n, st);
}

/* Run statement id with args, its rows unread; a failure is logged as what. */
static int run(struct store_sqlite *ss, enum store_writer_stmt id, const char *what,
               const struct store_arg *args, size_t n)
{
    sqlite3_stmt *st;
    int ret = stmt(ss, id, args, n, &st);

    return ret < 0 ? ret : store_sqlite_failed(ss, et_sqlite_run(st), what);
}

/* Read the one row of statement id with fn: 0, -ENOENT without one, or -errno (logged). */
static int one_row(struct store_sqlite *ss, enum store_writer_stmt id, const char *what,
                   const struct store_arg *args, size_t n, et_sqlite_row_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    int ret = stmt(ss, id, args, n, &st);

    return ret < 0 ? ret : store_sqlite_failed(ss, et_sqlite_one_row(st, fn, ctx), what);
}

/* ---- transactions ------------------------------------------------------- */

static int sqlite_begin(struct et_store_writer *w)
{
    struct store_sqlite *ss = of_writer(w);
    int ret;

    if (ss->in_tx)
        return -EALREADY;
    ret = run(ss, SW_BEGIN, "begin", NULL, 0);
    if (ret == 0)
        ss->in_tx = true;
    return ret;
}

static int sqlite_rollback(struct et_store_writer *w)
{
    struct store_sqlite *ss = of_writer(w);

    if (!ss->in_tx)
        return 0;
    ss->in_tx = false;
    /* Metrics this transaction made are gone with it, and so may their tags be. */
    store_metric_clear(&ss->metric_cache);
    /* An error inside the transaction may already have ended it. */
    if (sqlite3_get_autocommit(ss->db))
        return 0;
    return run(ss, SW_ROLLBACK, "rollback", NULL, 0);
}

static int sqlite_commit(struct et_store_writer *w)
{
    struct store_sqlite *ss = of_writer(w);
    int ret;

    if (!ss->in_tx)
        return -EINVAL;
    ret = run(ss, SW_COMMIT, "commit", NULL, 0);
    if (ret < 0) {
        sqlite_rollback(w);
        return ret;
    }
    ss->in_tx = false;
    return 0;
}

/* ---- devices ------------------------------------------------------------ */

/* Insert the device row if it is new; *created (may be NULL) says whether it was. */
static int device_ensure(struct store_sqlite *ss, const char *device, int64_t now_ms,
                         bool *created)
{
    int ret;

    /* A row this writer saw is there still: devices are never deleted. */
    if (store_metric_find(&ss->metric_cache, device, "")) {
        if (created)
            *created = false;
        return 0;
    }
    ret = run(ss, SW_DEVICE_INSERT, "adding a device",
              STORE_ARGS(STORE_TEXT(device), STORE_INT(now_ms)));
    if (ret == 0 && created)
        *created = sqlite3_changes(ss->db) > 0;
    if (ret == 0)
        store_metric_add(&ss->metric_cache, device, "", "", NULL, 0);
    return ret;
}

static int sqlite_device_seen(struct et_store_writer *w, const char *device, int64_t now_ms,
                              const char *boot_id_hex, uint64_t add_samples, bool *created)
{
    struct store_sqlite *ss = of_writer(w);
    int ret = device_ensure(ss, device, now_ms, created);

    if (ret < 0)
        return ret;
    return run(ss, SW_DEVICE_SEEN, "updating a device",
               STORE_ARGS(STORE_TEXT(device), STORE_INT(now_ms), STORE_TEXT(boot_id_hex),
                          STORE_U64(add_samples)));
}

static int read_status_was(void *ctx, sqlite3_stmt *row)
{
    struct et_store_status_was *was = ctx;

    was->online = sqlite3_column_int(row, 0) != 0;
    was->had_status = sqlite3_column_int(row, 1) != 0;
    return 0;
}

static int sqlite_device_status(struct et_store_writer *w, const struct et_store_status *in,
                                int64_t now_ms, struct et_store_status_was *was)
{
    struct store_sqlite *ss = of_writer(w);
    struct et_store_status_was before = { .created = false };
    int ret;

    ret = device_ensure(ss, in->device, now_ms, &before.created);
    if (ret == 0)
        ret = one_row(ss, SW_STATUS_GET, "reading a device's status",
                      STORE_ARGS(STORE_TEXT(in->device)), read_status_was, &before);
    if (ret == 0)
        ret = run(ss, SW_STATUS, "recording a device status",
                  STORE_ARGS(STORE_TEXT(in->device), STORE_INT(in->online),
                             STORE_TEXT(in->boot_id_hex), STORE_TEXT(in->agent_version),
                             STORE_U64(in->outbox_batches), STORE_U64(in->dropped_samples),
                             STORE_INT(in->clock_synced), STORE_TEXT(in->reason),
                             STORE_INT(in->device_wall_ms)));
    if (ret == 0 && was)
        *was = before;
    return ret;
}

/* ---- metrics, batches, samples ------------------------------------------ */

/* A metric row found: kept in the writer's cache as it is stored. */
struct metric_found {
    struct store_metric_cache *cache;
    const char *device, *name;
    const char *unit;          /* the unit asked for */
    int64_t id;
    bool same_unit;
};

static int read_metric(void *ctx, sqlite3_stmt *row)
{
    struct metric_found *mf = ctx;

    mf->id = sqlite3_column_int64(row, 0);
    mf->same_unit = strcmp(et_sqlite_col_text(row, 1), mf->unit) == 0;
    store_metric_add(mf->cache, mf->device, mf->name, et_sqlite_col_text(row, 1),
                     et_sqlite_col_text(row, 2), mf->id);
    return 0;
}

static int sqlite_metric_id(struct et_store_writer *w, const char *device, const char *name,
                            const char *unit, int64_t *id)
{
    struct store_sqlite *ss = of_writer(w);
    struct store_metric *m = store_metric_find(&ss->metric_cache, device, name);
    struct metric_found mf = { .cache = &ss->metric_cache, .device = device, .name = name,
                               .unit = unit };
    int ret;

    if (m) {
        *id = m->id;
        if (m->unit && strcmp(m->unit, unit) == 0)
            return 0;
        goto set_unit;
    }
    ret = one_row(ss, SW_METRIC_GET, "looking up a metric",
                  STORE_ARGS(STORE_TEXT(device), STORE_TEXT(name)), read_metric, &mf);
    if (ret == -ENOENT) {
        ret = run(ss, SW_METRIC_INSERT, "adding a metric",
                  STORE_ARGS(STORE_TEXT(device), STORE_TEXT(name), STORE_TEXT(unit)));
        if (ret == 0) {
            *id = sqlite3_last_insert_rowid(ss->db);
            store_metric_add(&ss->metric_cache, device, name, unit, "", *id);
        }
        return ret;
    }
    if (ret < 0)
        return ret;
    *id = mf.id;
    if (mf.same_unit)
        return 0;
set_unit:
    ret = run(ss, SW_METRIC_UNIT, "updating a metric's unit",
              STORE_ARGS(STORE_INT(*id), STORE_TEXT(unit)));
    if (ret == 0 && (m = store_metric_by_id(&ss->metric_cache, *id)))
        store_metric_set(&m->unit, unit);
    return ret;
}

static int sqlite_metric_tags(struct et_store_writer *w, int64_t id, const char *tags)
{
    struct store_sqlite *ss = of_writer(w);
    struct store_metric *m = store_metric_by_id(&ss->metric_cache, id);
    int ret;

    if (m && m->tags && strcmp(m->tags, tags) == 0)
        return 0;
    ret = run(ss, SW_METRIC_TAGS, "updating a metric's tags",
              STORE_ARGS(STORE_INT(id), STORE_TEXT(tags)));
    if (ret == 0 && m)
        store_metric_set(&m->tags, tags);
    return ret;
}

static int row_exists(void *ctx, sqlite3_stmt *row)
{
    return 0;
}

static int sqlite_batch_seen(struct et_store_writer *w, const char *device, const char *stream,
                             uint64_t seq, bool *seen)
{
    int ret;

    *seen = false;
    if (seq > ET_STORE_SEQ_MAX)
        return 0;   /* such a seq cannot have been stored */
    ret = one_row(of_writer(w), SW_BATCH_SEEN, "looking up a batch",
                  STORE_ARGS(STORE_TEXT(device), STORE_TEXT(stream), STORE_U64(seq)), row_exists,
                  NULL);
    if (ret == -ENOENT)
        return 0;
    *seen = ret == 0;
    return ret;
}

static int sqlite_quarantine(struct et_store_writer *w, const struct et_store_quarantined *q)
{
    struct store_sqlite *ss = of_writer(w);
    sqlite3_stmt *st;
    bool seen = false;
    int ret;

    if (q->seq > ET_STORE_SEQ_MAX)
        return -ERANGE;
    ret = sqlite_batch_seen(w, q->device, q->stream_hex, q->seq, &seen);
    if (ret == 0 && seen)
        return -EEXIST;
    if (ret == 0)
        ret = stmt(ss, SW_QUARANTINE,
                   STORE_ARGS(STORE_TEXT(q->device), STORE_TEXT(q->stream_hex),
                              STORE_U64(q->seq), STORE_INT(q->received_ms),
                              STORE_INT(q->n_samples), STORE_TEXT(q->reason)), &st);
    if (ret < 0)
        return ret;
    /* The bytes as they came: bound as a blob, which the text-and-number
     * arguments above do not carry. */
    ret = sqlite3_bind_blob(st, 7, q->payload, (int)q->len, SQLITE_STATIC);
    ret = ret == SQLITE_OK ? et_sqlite_run(st) : et_sqlite_errno(ss->db, ret);
    sqlite3_clear_bindings(st);
    return store_sqlite_failed(ss, ret, "quarantining a batch");
}

static int sqlite_insert_batch(struct et_store_writer *w, const struct et_store_batch *b)
{
    if (b->seq > ET_STORE_SEQ_MAX)
        return -ERANGE;
    return run(of_writer(w), SW_BATCH_INSERT, "storing a batch",
               STORE_ARGS(STORE_TEXT(b->device), STORE_U64(b->seq), STORE_INT(b->received_ms),
                          STORE_INT(b->n_samples), STORE_INT(b->historical),
                          STORE_TEXT(b->boot_id_hex), STORE_INT(b->time_quality),
                          STORE_INT(b->first_sample_id), STORE_INT(b->last_sample_id),
                          STORE_INT(b->unsynced_samples), STORE_TEXT(b->stream_hex)));
}

static int sqlite_batch_samples(struct et_store_writer *w, const char *device,
                                const char *stream, uint64_t seq, int64_t first_sample_id,
                                int64_t last_sample_id, uint32_t unsynced_samples)
{
    struct store_sqlite *ss = of_writer(w);
    int ret = run(ss, SW_BATCH_SAMPLES, "recording a batch's samples",
                  STORE_ARGS(STORE_TEXT(device), STORE_TEXT(stream), STORE_U64(seq),
                             STORE_INT(first_sample_id), STORE_INT(last_sample_id),
                             STORE_INT(unsynced_samples)));

    return ret == 0 && sqlite3_changes(ss->db) == 0 ? -ENOENT : ret;
}

static int sqlite_insert_sample(struct et_store_writer *w, const struct et_store_sample *smp,
                                int64_t *id)
{
    struct store_sqlite *ss = of_writer(w);
    /* One value column per type; the others stay NULL. */
    struct store_arg value[4] = { STORE_NULL, STORE_NULL, STORE_NULL, STORE_NULL };
    int ret;

    switch (smp->value.type) {
    case ET_TYPE_F64:
        /* A NaN goes in as NULL (SQLite's own doing); the reader gives it back as NaN. */
        value[0] = STORE_REAL(smp->value.u.f64);
        break;
    case ET_TYPE_I64:
        value[1] = STORE_INT(smp->value.u.i64);
        break;
    case ET_TYPE_BOOL:
        value[2] = STORE_INT(smp->value.u.b);
        break;
    case ET_TYPE_STR:
        value[3] = STORE_TEXT(smp->value.u.str);
        break;
    default:
        return -EINVAL;
    }
    if (smp->seq > ET_STORE_SEQ_MAX)
        return -ERANGE;
    ret = run(ss, SW_SAMPLE_INSERT, "storing a sample",
              STORE_ARGS(STORE_INT(smp->metric_id), STORE_INT(smp->ts_ms),
                         STORE_INT(smp->mono_ms), STORE_INT(smp->value.type), value[0],
                         value[1], value[2], value[3], STORE_INT(smp->time_quality),
                         STORE_U64(smp->seq)));
    if (ret == 0 && id)
        *id = sqlite3_last_insert_rowid(ss->db);
    return ret;
}

/* ---- the cumulative ack's storage ---------------------------------------- */

static int read_u64(void *ctx, sqlite3_stmt *row)
{
    *(uint64_t *)ctx = et_sqlite_col_u64(row, 0);
    return 0;
}

static int sqlite_ack_get(struct et_store_writer *w, const char *device, const char *stream,
                          uint64_t *acked_through)
{
    return one_row(of_writer(w), SW_ACK_GET, "reading a stream's ack",
                   STORE_ARGS(STORE_TEXT(device), STORE_TEXT(stream)), read_u64, acked_through);
}

static int sqlite_ack_set(struct et_store_writer *w, const char *device, const char *stream,
                          uint64_t acked_through)
{
    return run(of_writer(w), SW_ACK_SET, "writing a stream's ack",
               STORE_ARGS(STORE_TEXT(device), STORE_TEXT(stream), STORE_U64(acked_through)));
}

struct seq_page {
    uint64_t *seqs;
    size_t n;
};

static int read_seq(void *ctx, sqlite3_stmt *row)
{
    struct seq_page *page = ctx;

    page->seqs[page->n++] = et_sqlite_col_u64(row, 0);
    return 0;
}

static int sqlite_seqs_after(struct et_store_writer *w, const char *device, const char *stream,
                             uint64_t after, uint64_t *seqs, size_t max, size_t *n)
{
    struct store_sqlite *ss = of_writer(w);
    struct seq_page page = { .seqs = seqs };
    sqlite3_stmt *st;
    int ret;

    *n = 0;
    ret = stmt(ss, SW_SEQS_AFTER,
               STORE_ARGS(STORE_TEXT(device), STORE_TEXT(stream), STORE_U64(after),
                          STORE_U64(max)), &st);
    if (ret < 0)
        return ret;
    ret = store_sqlite_failed(ss, et_sqlite_each_row(st, read_seq, &page),
                              "scanning a device's batches");
    *n = page.n;
    return ret;
}

/* ---- re-timing's storage ------------------------------------------------ */

static int read_clock(void *ctx, sqlite3_stmt *row)
{
    struct et_store_clock *clk = ctx;

    snprintf(clk->boot_id_hex, sizeof(clk->boot_id_hex), "%s", et_sqlite_col_text(row, 0));
    clk->base_wall_ms = sqlite3_column_int64(row, 1);
    clk->base_mono_ms = sqlite3_column_int64(row, 2);
    return 0;
}

static int sqlite_clock_get(struct et_store_writer *w, const char *device,
                            struct et_store_clock *out)
{
    int ret;

    memset(out, 0, sizeof(*out));
    ret = one_row(of_writer(w), SW_CLOCK_GET, "reading a device's clock",
                  STORE_ARGS(STORE_TEXT(device)), read_clock, out);
    return ret == -ENOENT ? 0 : ret;
}

static int sqlite_clock_set(struct et_store_writer *w, const char *device,
                            const struct et_store_clock *clk)
{
    return run(of_writer(w), SW_CLOCK_SET, "recording a device's clock",
               STORE_ARGS(STORE_TEXT(device), STORE_TEXT(clk->boot_id_hex),
                          STORE_INT(clk->base_wall_ms), STORE_INT(clk->base_mono_ms)));
}

static int read_unsynced(void *ctx, sqlite3_stmt *row)
{
    struct store_rows *rows = ctx;
    struct et_store_sample smp = {
        .id = sqlite3_column_int64(row, 0),
        .metric_id = sqlite3_column_int64(row, 1),
        .ts_ms = sqlite3_column_int64(row, 2),
        .mono_ms = sqlite3_column_int64(row, 3),
        .time_quality = (enum et_time_quality)sqlite3_column_int(row, 4),
        .seq = et_sqlite_col_u64(row, 5),
    };

    return store_rows_cb(rows, rows->cb.sample(rows->ctx, &smp));
}

static int sqlite_unsynced_samples(struct et_store_writer *w, const char *device,
                                   const char *boot_id_hex, et_store_sample_cb cb, void *ctx)
{
    struct store_sqlite *ss = of_writer(w);
    struct store_rows rows = { .cb.sample = cb, .ctx = ctx };
    sqlite3_stmt *st;
    int ret;

    ret = stmt(ss, SW_UNSYNCED_SAMPLES, STORE_ARGS(STORE_TEXT(device), STORE_TEXT(boot_id_hex)),
               &st);
    if (ret < 0)
        return ret;
    return store_sqlite_rows(ss, st, read_unsynced, &rows, "finding samples to re-time");
}

static int sqlite_sample_time(struct et_store_writer *w, int64_t id, int64_t ts_ms,
                              enum et_time_quality tq)
{
    return run(of_writer(w), SW_SAMPLE_TIME, "re-timing samples",
               STORE_ARGS(STORE_INT(id), STORE_INT(ts_ms), STORE_INT(tq)));
}

static int sqlite_unsynced_done(struct et_store_writer *w, const char *device,
                                const char *boot_id_hex)
{
    return run(of_writer(w), SW_UNSYNCED_DONE, "marking batches re-timed",
               STORE_ARGS(STORE_TEXT(device), STORE_TEXT(boot_id_hex)));
}

static const char *sqlite_last_error(struct et_store_writer *w)
{
    return of_writer(w)->last_error;
}

/* ---- streams ------------------------------------------------------------- */

static int read_stream(void *ctx, sqlite3_stmt *row)
{
    struct et_store_stream *st = ctx;

    st->started_ms = sqlite3_column_int64(row, 0);
    st->acked_through = et_sqlite_col_u64(row, 1);
    st->top_seq = et_sqlite_col_u64(row, 2);
    st->top_received_ms = sqlite3_column_int64(row, 3);
    return 0;
}

static int sqlite_stream_get(struct et_store_writer *w, const char *device, const char *stream,
                             struct et_store_stream *out)
{
    memset(out, 0, sizeof(*out));
    return one_row(of_writer(w), SW_STREAM_GET, "reading a stream",
                   STORE_ARGS(STORE_TEXT(device), STORE_TEXT(stream)), read_stream, out);
}

static int read_stream_was(void *ctx, sqlite3_stmt *row)
{
    struct et_store_stream_was *was = ctx;

    was->had = true;
    snprintf(was->stream_hex, sizeof(was->stream_hex), "%s", et_sqlite_col_text(row, 0));
    was->acked_through = et_sqlite_col_u64(row, 1);
    return 0;
}

static int sqlite_stream_start(struct et_store_writer *w, const char *device, const char *stream,
                               int64_t now_ms, struct et_store_stream_was *was)
{
    struct store_sqlite *ss = of_writer(w);
    struct et_store_stream_was before = { .had = false };
    int ret;

    ret = one_row(ss, SW_STREAM_CURRENT, "reading a device's stream",
                  STORE_ARGS(STORE_TEXT(device)), read_stream_was, &before);
    if (ret == -ENOENT)
        ret = 0;
    if (ret == 0)
        ret = run(ss, SW_STREAM_INSERT, "recording a stream",
                  STORE_ARGS(STORE_TEXT(device), STORE_TEXT(stream), STORE_INT(now_ms)));
    if (ret == 0)
        ret = run(ss, SW_STREAM_MAKE_CURRENT, "recording a device's stream",
                  STORE_ARGS(STORE_TEXT(device), STORE_TEXT(stream)));
    if (ret == 0 && sqlite3_changes(ss->db) == 0)
        ret = -ENOENT;   /* no device row */
    if (ret == 0 && was)
        *was = before;
    return ret;
}

/* ---- streams' metric dictionaries ---------------------------------------- */

/* A dictionary's id is the seq of its first batch: the same bound as a seq. */
static int sqlite_dict_put(struct et_store_writer *w, const char *device, const char *stream,
                           uint64_t dict_id, const struct et_store_dict_entry *e)
{
    if (dict_id > ET_STORE_SEQ_MAX)
        return -ERANGE;
    return run(of_writer(w), SW_DICT_PUT, "keeping a metric dictionary",
               STORE_ARGS(STORE_TEXT(device), STORE_TEXT(stream), STORE_U64(dict_id),
                          STORE_INT(e->idx), STORE_INT(e->metric_id), STORE_INT(e->type),
                          STORE_REAL(e->scale)));
}

static int sqlite_dict_get(struct et_store_writer *w, const char *device, const char *stream,
                           uint64_t dict_id, et_store_dict_cb cb, void *ctx)
{
    struct store_sqlite *ss = of_writer(w);
    sqlite3_stmt *st;
    int ret, rc;

    if (dict_id > ET_STORE_SEQ_MAX)
        return 0;   /* none could be kept */
    ret = stmt(ss, SW_DICT_GET, STORE_ARGS(STORE_TEXT(device), STORE_TEXT(stream),
                                           STORE_U64(dict_id)), &st);
    if (ret < 0)
        return ret;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct et_store_dict_entry e = {
            .idx = (uint32_t)sqlite3_column_int64(st, 0),
            .metric_id = sqlite3_column_int64(st, 1),
            .type = sqlite3_column_int(st, 2),
            .scale = sqlite3_column_double(st, 3),
        };

        ret = cb(ctx, &e);
        if (ret) {
            sqlite3_reset(st);
            return ret;
        }
    }
    ret = rc == SQLITE_DONE ? 0 : et_sqlite_errno(ss->db, rc);
    sqlite3_reset(st);
    return store_sqlite_failed(ss, ret, "reading a metric dictionary");
}

const struct et_store_writer_ops store_sqlite_writer_ops = {
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .batch_seen = sqlite_batch_seen,
    .device_seen = sqlite_device_seen,
    .device_status = sqlite_device_status,
    .metric_id = sqlite_metric_id,
    .metric_tags = sqlite_metric_tags,
    .insert_batch = sqlite_insert_batch,
    .insert_sample = sqlite_insert_sample,
    .ack_get = sqlite_ack_get,
    .ack_set = sqlite_ack_set,
    .seqs_after = sqlite_seqs_after,
    .clock_get = sqlite_clock_get,
    .clock_set = sqlite_clock_set,
    .unsynced_samples = sqlite_unsynced_samples,
    .sample_time = sqlite_sample_time,
    .unsynced_done = sqlite_unsynced_done,
    .last_error = sqlite_last_error,
    .stream_get = sqlite_stream_get,
    .stream_start = sqlite_stream_start,
    .quarantine = sqlite_quarantine,
    .batch_samples = sqlite_batch_samples,
    .dict_put = sqlite_dict_put,
    .dict_get = sqlite_dict_get,
};
