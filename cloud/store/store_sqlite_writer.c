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
    [SW_BATCH_SEEN] = "SELECT 1 FROM batches WHERE device = ?1 AND seq = ?2",
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
    [SW_METRIC_GET] = "SELECT id, unit FROM metrics WHERE device = ?1 AND name = ?2",
    [SW_METRIC_INSERT] = "INSERT INTO metrics (device, name, unit) VALUES (?1, ?2, ?3)",
    [SW_METRIC_UNIT] = "UPDATE metrics SET unit = ?2 WHERE id = ?1",
    [SW_METRIC_TAGS] = "UPDATE metrics SET tags = ?2 WHERE id = ?1 AND tags != ?2",
    [SW_BATCH_INSERT] =
        "INSERT INTO batches (device, seq, received_ms, n_samples, historical, boot_id,"
        " time_quality, first_sample_id, last_sample_id, unsynced)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [SW_SAMPLE_INSERT] =
        "INSERT INTO samples (metric_id, ts_ms, mono_ms, vtype, v_f64, v_i64, v_bool, v_str,"
        " time_quality, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [SW_ACK_GET] = "SELECT acked_through FROM devices WHERE id = ?1",
    [SW_ACK_SET] = "UPDATE devices SET acked_through = ?2 WHERE id = ?1",
    [SW_SEQS_AFTER] =
        "SELECT seq FROM batches WHERE device = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
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
};

static struct store_sqlite *of_writer(struct et_store_writer *w)
{
    return (struct store_sqlite *)((char *)w - offsetof(struct store_sqlite, writer));
}

static int stmt(struct store_sqlite *ss, enum store_writer_stmt id, sqlite3_stmt **out)
{
    return store_sqlite_stmt(ss, &ss->writer_stmts[id], writer_sql[id], out);
}

/* Run a statement whose rows do not matter; failures logged as what. */
static int run(struct store_sqlite *ss, sqlite3_stmt *st, const char *what)
{
    return store_sqlite_failed(ss, et_sqlite_run(st), what);
}

static void bind_text(sqlite3_stmt *st, int col, const char *text)
{
    sqlite3_bind_text(st, col, text ? text : "", -1, SQLITE_STATIC);
}

static int bind_seq(sqlite3_stmt *st, int col, uint64_t seq)
{
    if (seq > ET_STORE_SEQ_MAX)
        return -ERANGE;
    sqlite3_bind_int64(st, col, (sqlite3_int64)seq);
    return 0;
}

/* ---- transactions ------------------------------------------------------- */

static int sqlite_begin(struct et_store_writer *w)
{
    struct store_sqlite *ss = of_writer(w);
    sqlite3_stmt *st = NULL;
    int ret;

    if (ss->in_tx)
        return -EALREADY;
    ret = stmt(ss, SW_BEGIN, &st);
    if (ret == 0)
        ret = run(ss, st, "begin");
    if (ret == 0)
        ss->in_tx = true;
    return ret;
}

static int sqlite_rollback(struct et_store_writer *w)
{
    struct store_sqlite *ss = of_writer(w);
    sqlite3_stmt *st = NULL;
    int ret;

    if (!ss->in_tx)
        return 0;
    ss->in_tx = false;
    /* An error inside the transaction may already have ended it. */
    if (sqlite3_get_autocommit(ss->db))
        return 0;
    ret = stmt(ss, SW_ROLLBACK, &st);
    if (ret == 0)
        ret = run(ss, st, "rollback");
    return ret;
}

static int sqlite_commit(struct et_store_writer *w)
{
    struct store_sqlite *ss = of_writer(w);
    sqlite3_stmt *st = NULL;
    int ret;

    if (!ss->in_tx)
        return -EINVAL;
    ret = stmt(ss, SW_COMMIT, &st);
    if (ret == 0)
        ret = run(ss, st, "commit");
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
    sqlite3_stmt *st = NULL;
    int ret;

    ret = stmt(ss, SW_DEVICE_INSERT, &st);
    if (ret < 0)
        return ret;
    bind_text(st, 1, device);
    sqlite3_bind_int64(st, 2, now_ms);
    ret = run(ss, st, "adding a device");
    if (ret == 0 && created)
        *created = sqlite3_changes(ss->db) > 0;
    return ret;
}

static int sqlite_device_seen(struct et_store_writer *w, const char *device, int64_t now_ms,
                              const char *boot_id_hex, uint64_t add_samples, bool *created)
{
    struct store_sqlite *ss = of_writer(w);
    sqlite3_stmt *st = NULL;
    int ret;

    ret = device_ensure(ss, device, now_ms, created);
    if (ret == 0)
        ret = stmt(ss, SW_DEVICE_SEEN, &st);
    if (ret < 0)
        return ret;
    bind_text(st, 1, device);
    sqlite3_bind_int64(st, 2, now_ms);
    bind_text(st, 3, boot_id_hex);
    sqlite3_bind_int64(st, 4, et_sqlite_u64_arg(add_samples));
    return run(ss, st, "updating a device");
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
    sqlite3_stmt *st = NULL;
    int ret;

    ret = device_ensure(ss, in->device, now_ms, &before.created);
    if (ret == 0)
        ret = stmt(ss, SW_STATUS_GET, &st);
    if (ret < 0)
        return ret;
    bind_text(st, 1, in->device);
    ret = store_sqlite_failed(ss, et_sqlite_one_row(st, read_status_was, &before),
                              "reading a device's status");
    if (ret == 0)
        ret = stmt(ss, SW_STATUS, &st);
    if (ret < 0)
        return ret;
    bind_text(st, 1, in->device);
    sqlite3_bind_int(st, 2, in->online);
    bind_text(st, 3, in->boot_id_hex);
    bind_text(st, 4, in->agent_version);
    sqlite3_bind_int64(st, 5, et_sqlite_u64_arg(in->outbox_batches));
    sqlite3_bind_int64(st, 6, et_sqlite_u64_arg(in->dropped_samples));
    sqlite3_bind_int(st, 7, in->clock_synced);
    bind_text(st, 8, in->reason);
    sqlite3_bind_int64(st, 9, in->device_wall_ms);
    ret = run(ss, st, "recording a device status");
    if (ret == 0 && was)
        *was = before;
    return ret;
}

/* ---- metrics, batches, samples ------------------------------------------ */

struct metric_found {
    int64_t id;
    const char *unit;          /* the unit asked for */
    bool same_unit;
};

static int read_metric(void *ctx, sqlite3_stmt *row)
{
    struct metric_found *mf = ctx;

    mf->id = sqlite3_column_int64(row, 0);
    mf->same_unit = strcmp(et_sqlite_col_text(row, 1), mf->unit) == 0;
    return 0;
}

static int sqlite_metric_id(struct et_store_writer *w, const char *device, const char *name,
                            const char *unit, int64_t *id)
{
    struct store_sqlite *ss = of_writer(w);
    struct metric_found mf = { .unit = unit };
    sqlite3_stmt *st = NULL;
    int ret;

    ret = stmt(ss, SW_METRIC_GET, &st);
    if (ret < 0)
        return ret;
    bind_text(st, 1, device);
    bind_text(st, 2, name);
    ret = store_sqlite_failed(ss, et_sqlite_one_row(st, read_metric, &mf),
                              "looking up a metric");
    if (ret == 0) {
        *id = mf.id;
        if (mf.same_unit)
            return 0;
        ret = stmt(ss, SW_METRIC_UNIT, &st);
        if (ret < 0)
            return ret;
        sqlite3_bind_int64(st, 1, mf.id);
        bind_text(st, 2, unit);
        return run(ss, st, "updating a metric's unit");
    }
    if (ret != -ENOENT)
        return ret;

    ret = stmt(ss, SW_METRIC_INSERT, &st);
    if (ret < 0)
        return ret;
    bind_text(st, 1, device);
    bind_text(st, 2, name);
    bind_text(st, 3, unit);
    ret = run(ss, st, "adding a metric");
    if (ret == 0)
        *id = sqlite3_last_insert_rowid(ss->db);
    return ret;
}

static int sqlite_metric_tags(struct et_store_writer *w, int64_t id, const char *tags)
{
    struct store_sqlite *ss = of_writer(w);
    sqlite3_stmt *st = NULL;
    int ret = stmt(ss, SW_METRIC_TAGS, &st);

    if (ret < 0)
        return ret;
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, tags);
    return run(ss, st, "updating a metric's tags");
}

static int row_exists(void *ctx, sqlite3_stmt *row)
{
    return 0;
}

static int sqlite_batch_seen(struct et_store_writer *w, const char *device, uint64_t seq,
                             bool *seen)
{
    struct store_sqlite *ss = of_writer(w);
    sqlite3_stmt *st = NULL;
    int ret;

    *seen = false;
    ret = stmt(ss, SW_BATCH_SEEN, &st);
    if (ret < 0)
        return ret;
    bind_text(st, 1, device);
    if (bind_seq(st, 2, seq) < 0)
        return 0;   /* such a seq cannot have been stored */
    ret = store_sqlite_failed(ss, et_sqlite_one_row(st, row_exists, NULL),
                              "looking up a batch");
    if (ret == -ENOENT)
        return 0;
    *seen = ret == 0;
    return ret;
}

static int sqlite_insert_batch(struct et_store_writer *w, const struct et_store_batch *b)
{
    struct store_sqlite *ss = of_writer(w);
    sqlite3_stmt *st = NULL;
    int ret;

    ret = stmt(ss, SW_BATCH_INSERT, &st);
    if (ret < 0)
        return ret;
    bind_text(st, 1, b->device);
    if (bind_seq(st, 2, b->seq) < 0)
        return -ERANGE;
    sqlite3_bind_int64(st, 3, b->received_ms);
    sqlite3_bind_int64(st, 4, b->n_samples);
    sqlite3_bind_int(st, 5, b->historical);
    bind_text(st, 6, b->boot_id_hex);
    sqlite3_bind_int(st, 7, (int)b->time_quality);
    sqlite3_bind_int64(st, 8, b->first_sample_id);
    sqlite3_bind_int64(st, 9, b->last_sample_id);
    sqlite3_bind_int64(st, 10, b->unsynced_samples);
    return run(ss, st, "storing a batch");
}

static int sqlite_insert_sample(struct et_store_writer *w, const struct et_store_sample *smp,
                                int64_t *id)
{
    struct store_sqlite *ss = of_writer(w);
    sqlite3_stmt *st = NULL;
    int ret;

    ret = stmt(ss, SW_SAMPLE_INSERT, &st);
    if (ret < 0)
        return ret;
    sqlite3_bind_int64(st, 1, smp->metric_id);
    sqlite3_bind_int64(st, 2, smp->ts_ms);
    sqlite3_bind_int64(st, 3, smp->mono_ms);
    sqlite3_bind_int(st, 4, (int)smp->value.type);
    switch (smp->value.type) {
    case ET_TYPE_F64:
        sqlite3_bind_double(st, 5, smp->value.u.f64);
        break;
    case ET_TYPE_I64:
        sqlite3_bind_int64(st, 6, smp->value.u.i64);
        break;
    case ET_TYPE_BOOL:
        sqlite3_bind_int(st, 7, smp->value.u.b);
        break;
    case ET_TYPE_STR:
        bind_text(st, 8, smp->value.u.str);
        break;
    default:
        return -EINVAL;
    }
    sqlite3_bind_int(st, 9, (int)smp->time_quality);
    if (bind_seq(st, 10, smp->seq) < 0)
        return -ERANGE;
    ret = run(ss, st, "storing a sample");
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

static int sqlite_ack_get(struct et_store_writer *w, const char *device, uint64_t *acked_through)
{
    struct store_sqlite *ss = of_writer(w);
    sqlite3_stmt *st = NULL;
    int ret;

    ret = stmt(ss, SW_ACK_GET, &st);
    if (ret < 0)
        return ret;
    bind_text(st, 1, device);
    return store_sqlite_failed(ss, et_sqlite_one_row(st, read_u64, acked_through),
                               "reading a device's ack");
}

static int sqlite_ack_set(struct et_store_writer *w, const char *device, uint64_t acked_through)
{
    struct store_sqlite *ss = of_writer(w);
    sqlite3_stmt *st = NULL;
    int ret;

    ret = stmt(ss, SW_ACK_SET, &st);
    if (ret < 0)
        return ret;
    bind_text(st, 1, device);
    sqlite3_bind_int64(st, 2, et_sqlite_u64_arg(acked_through));
    return run(ss, st, "writing a device's ack");
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

static int sqlite_seqs_after(struct et_store_writer *w, const char *device, uint64_t after,
                             uint64_t *seqs, size_t max, size_t *n)
{
    struct store_sqlite *ss = of_writer(w);
    struct seq_page page = { .seqs = seqs };
    sqlite3_stmt *st = NULL;
    int ret;

    *n = 0;
    ret = stmt(ss, SW_SEQS_AFTER, &st);
    if (ret < 0)
        return ret;
    bind_text(st, 1, device);
    sqlite3_bind_int64(st, 2, et_sqlite_u64_arg(after));
    sqlite3_bind_int64(st, 3, et_sqlite_u64_arg(max));
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
    struct store_sqlite *ss = of_writer(w);
    sqlite3_stmt *st = NULL;
    int ret;

    memset(out, 0, sizeof(*out));
    ret = stmt(ss, SW_CLOCK_GET, &st);
    if (ret < 0)
        return ret;
    bind_text(st, 1, device);
    ret = store_sqlite_failed(ss, et_sqlite_one_row(st, read_clock, out),
                              "reading a device's clock");
    return ret == -ENOENT ? 0 : ret;
}

static int sqlite_clock_set(struct et_store_writer *w, const char *device,
                            const struct et_store_clock *clk)
{
    struct store_sqlite *ss = of_writer(w);
    sqlite3_stmt *st = NULL;
    int ret;

    ret = stmt(ss, SW_CLOCK_SET, &st);
    if (ret < 0)
        return ret;
    bind_text(st, 1, device);
    bind_text(st, 2, clk->boot_id_hex);
    sqlite3_bind_int64(st, 3, clk->base_wall_ms);
    sqlite3_bind_int64(st, 4, clk->base_mono_ms);
    return run(ss, st, "recording a device's clock");
}

struct unsynced_rows {
    et_store_sample_cb cb;
    void *ctx;
    bool stopped;              /* cb's value, not the database's */
};

static int read_unsynced(void *ctx, sqlite3_stmt *row)
{
    struct unsynced_rows *ur = ctx;
    struct et_store_sample smp = {
        .id = sqlite3_column_int64(row, 0),
        .metric_id = sqlite3_column_int64(row, 1),
        .ts_ms = sqlite3_column_int64(row, 2),
        .mono_ms = sqlite3_column_int64(row, 3),
        .time_quality = (enum et_time_quality)sqlite3_column_int(row, 4),
        .seq = et_sqlite_col_u64(row, 5),
    };
    int ret = ur->cb(ur->ctx, &smp);

    ur->stopped = ret != 0;
    return ret;
}

static int sqlite_unsynced_samples(struct et_store_writer *w, const char *device,
                                   const char *boot_id_hex, et_store_sample_cb cb, void *ctx)
{
    struct store_sqlite *ss = of_writer(w);
    struct unsynced_rows ur = { .cb = cb, .ctx = ctx };
    sqlite3_stmt *st = NULL;
    int ret;

    ret = stmt(ss, SW_UNSYNCED_SAMPLES, &st);
    if (ret < 0)
        return ret;
    bind_text(st, 1, device);
    bind_text(st, 2, boot_id_hex);
    ret = et_sqlite_each_row(st, read_unsynced, &ur);
    return ur.stopped ? ret : store_sqlite_failed(ss, ret, "finding samples to re-time");
}

static int sqlite_sample_time(struct et_store_writer *w, int64_t id, int64_t ts_ms,
                              enum et_time_quality tq)
{
    struct store_sqlite *ss = of_writer(w);
    sqlite3_stmt *st = NULL;
    int ret;

    ret = stmt(ss, SW_SAMPLE_TIME, &st);
    if (ret < 0)
        return ret;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, ts_ms);
    sqlite3_bind_int(st, 3, (int)tq);
    return run(ss, st, "re-timing samples");
}

static int sqlite_unsynced_done(struct et_store_writer *w, const char *device,
                                const char *boot_id_hex)
{
    struct store_sqlite *ss = of_writer(w);
    sqlite3_stmt *st = NULL;
    int ret;

    ret = stmt(ss, SW_UNSYNCED_DONE, &st);
    if (ret < 0)
        return ret;
    bind_text(st, 1, device);
    bind_text(st, 2, boot_id_hex);
    return run(ss, st, "marking batches re-timed");
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
};
