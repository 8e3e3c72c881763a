/*
 * The PostgreSQL writer's storage for re-timing (store_writer.h:
 * clock_get, clock_set, unsynced_samples, sample_time, unsynced_done);
 * the rule itself is cloud/retime.c. A device's clock is kept with its
 * other hot columns for the commit (store_pg_commit.c); the samples and
 * batches a search reads are sent first when one of them may wait.
 */
#include "store_pg.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

enum retime_stmt {
    T_CLOCK_GET,
    T_UNSYNCED_SAMPLES,
    T_SAMPLE_TIME,
    T_UNSYNCED_DONE,
    T_COUNT
};

/* The epoch in ms as a timestamptz expression of parameter $N (bigint ms). */
#define TS_OF(n) "('epoch'::timestamptz + $" #n "::bigint * interval '1 millisecond')"

static const char *const retime_sql[T_COUNT] = {
    [T_CLOCK_GET] = "SELECT clock_boot, clock_wall_ms, clock_mono_ms FROM devices WHERE id = $1",
    /* Only batches still waiting are in the partial index batches_unsynced;
     * a batch's rows are its id range, checked by seq and the device's
     * metrics. */
    [T_UNSYNCED_SAMPLES] =
        "SELECT s.id, s.metric_id, " PG_MS_OF("s.ts") ", s.mono_ms, s.time_quality, s.seq"
        " FROM batches b JOIN samples s"
        "  ON s.id BETWEEN b.first_sample_id AND b.last_sample_id AND s.seq = b.seq"
        " WHERE b.device = $1 AND b.boot_id = $2 AND b.unsynced > 0"
        "  AND s.metric_id IN (SELECT id FROM metrics WHERE device = $1)",
    /* A new time may move the row to another day's partition. */
    [T_SAMPLE_TIME] =
        "UPDATE samples SET ts = " TS_OF(2) ", time_quality = $3 WHERE id = $1",
    [T_UNSYNCED_DONE] =
        "UPDATE batches SET unsynced = 0 WHERE device = $1 AND boot_id = $2 AND unsynced > 0",
};

static int run(struct store_pg *pg, enum retime_stmt id, const struct pg_params *p,
               PGresult **res, const char *what)
{
    return store_pg_run(pg, PG_PART_RETIME, id, retime_sql[id], p, res, what);
}

int store_pg_clock_get(struct et_store_writer *w, const char *device,
                       struct et_store_clock *out)
{
    struct store_pg *pg = store_pg_of_writer(w);
    struct pg_pending_device *d = store_pg_pending_device(pg, device, false);
    struct pg_params p = { .n = 0 };
    PGresult *r;
    int ret;

    memset(out, 0, sizeof(*out));
    if (d && d->clock) {
        *out = d->clk;
        return 0;
    }
    pg_text(&p, device);
    ret = run(pg, T_CLOCK_GET, &p, &r, "reading a device's clock");
    if (ret == 0 && PQntuples(r) == 1) {
        snprintf(out->boot_id_hex, sizeof(out->boot_id_hex), "%s", pg_col_text(r, 0, 0));
        out->base_wall_ms = pg_col_i64(r, 0, 1);
        out->base_mono_ms = pg_col_i64(r, 0, 2);
    }
    PQclear(r);
    return ret;
}

int store_pg_clock_set(struct et_store_writer *w, const char *device,
                       const struct et_store_clock *clk)
{
    struct store_pg *pg = store_pg_of_writer(w);
    struct pg_pending_device *d;
    bool own;
    int ret = store_pg_solo_begin(pg, &own);

    if (ret == 0 && !(d = store_pg_pending_device(pg, device, true)))
        ret = -ENOMEM;
    if (ret == 0) {
        d->clock = true;
        d->clk = *clk;
    }
    return store_pg_solo_end(pg, own, ret);
}

/* Before a statement that reads samples or where they are: what waits goes first. */
static int flush_for_samples(struct store_pg *pg)
{
    int ret = store_pg_flush_samples(pg);

    return ret == 0 ? store_pg_flush_batches(pg) : ret;
}

int store_pg_unsynced_samples(struct et_store_writer *w, const char *device,
                              const char *boot_id_hex, et_store_sample_cb cb, void *ctx)
{
    struct store_pg *pg = store_pg_of_writer(w);
    struct pg_params p = { .n = 0 };
    PGresult *r;
    int ret = 0;

    /* Only a batch waiting for re-timing can be in the answer: the
     * common case (every batch synced) sends nothing first. */
    if (pg->batches_unsynced)
        ret = flush_for_samples(pg);
    if (ret < 0)
        return ret;
    pg_text(&p, device);
    pg_text(&p, boot_id_hex);
    ret = run(pg, T_UNSYNCED_SAMPLES, &p, &r, "finding samples to re-time");
    if (ret == 0) {
        store_pg_key(pg->unsynced_key, sizeof(pg->unsynced_key), device, boot_id_hex);
        pg->unsynced_none = PQntuples(r) == 0;
    }
    for (int i = 0; ret == 0 && i < PQntuples(r); i++) {
        struct et_store_sample smp = {
            .id = pg_col_i64(r, i, 0),
            .metric_id = pg_col_i64(r, i, 1),
            .ts_ms = pg_col_i64(r, i, 2),
            .mono_ms = pg_col_i64(r, i, 3),
            .time_quality = (enum et_time_quality)pg_col_i64(r, i, 4),
            .seq = pg_col_u64(r, i, 5),
        };

        ret = cb(ctx, &smp);
    }
    PQclear(r);
    return ret;
}

int store_pg_sample_time(struct et_store_writer *w, int64_t id, int64_t ts_ms,
                         enum et_time_quality tq)
{
    struct store_pg *pg = store_pg_of_writer(w);
    struct pg_params p = { .n = 0 };
    int ret = store_pg_flush_samples(pg);

    if (ret < 0)
        return ret;
    pg_int(&p, id);
    pg_int(&p, ts_ms);
    pg_int(&p, tq);
    return run(pg, T_SAMPLE_TIME, &p, NULL, "re-timing samples");
}

int store_pg_unsynced_done(struct et_store_writer *w, const char *device,
                           const char *boot_id_hex)
{
    struct store_pg *pg = store_pg_of_writer(w);
    struct pg_params p = { .n = 0 };
    char key[128];
    int ret;

    /*
     * The search just before found none waiting, and nothing that could
     * wait was written since: nothing to mark (the usual case, every
     * batch synced). Marking anyway could clear a batch another instance
     * committed in between, whose samples nobody re-timed.
     */
    store_pg_key(key, sizeof(key), device, boot_id_hex);
    if (pg->unsynced_none && strcmp(key, pg->unsynced_key) == 0)
        return 0;
    ret = pg->batches_unsynced ? store_pg_flush_batches(pg) : 0;
    if (ret < 0)
        return ret;
    pg_text(&p, device);
    pg_text(&p, boot_id_hex);
    return run(pg, T_UNSYNCED_DONE, &p, NULL, "marking batches re-timed");
}
