/*
 * The PostgreSQL store's writer: store_writer.h in SQL, for several
 * aggregator instances writing one database at once (READ COMMITTED).
 * Here: transactions, devices, metrics, batches and samples; streams and
 * their acks are store_pg_stream.c's, re-timing's storage store_pg_retime.c's.
 *
 * What is written at once, what waits for the commit, and why:
 *   - The batch row (the claim on (device, stream, seq)), new devices,
 *     streams and metrics, quarantined batches: at once, each an INSERT
 *     ... ON CONFLICT DO NOTHING. A second instance inserting the same
 *     key waits for the first's transaction and then finds it taken:
 *     -EEXIST, which ingest takes for a duplicate (store_writer.h).
 *   - Samples: buffered as binary COPY rows and sent in one COPY at the
 *     commit (or before a statement that reads them). Their ids are the
 *     transaction's xid times 2^24 plus their place (store_pg.h): known
 *     when the sample is handed in, in order of visibility for tail.
 *   - The hot rows every batch touches (its device's last seen, sample
 *     count and clock; its stream's ack; a Status; a device's config
 *     version) and where each batch's samples are: kept here, merged per
 *     device and stream, and written at the commit after locking the rows
 *     in key order (SELECT ... ORDER BY ... FOR UPDATE; store_pg_commit.c). Instances whose
 *     groups share devices then wait for each other for the length of a
 *     commit instead of deadlocking over rows taken in the order messages
 *     came. Reads in the same transaction see these writes (the values
 *     kept here stand in for the rows').
 * A deadlock or serialization failure that remains (two instances
 * claiming the same batches in opposite orders) fails the transaction:
 * ingest rolls the group back and drops its Acks, and the devices send
 * again.
 */
#include "store_pg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/ingest.h"

enum writer_stmt {
    W_BATCH_SEEN,
    W_DEVICE_INSERT,
    W_STATUS_GET,
    W_METRIC_GET,
    W_METRIC_INSERT,
    W_METRIC_UNIT,
    W_METRIC_TAGS,
    W_BATCH_INSERT,
    W_QUARANTINE,
    W_XID,
    W_COUNT
};

static const char *const writer_sql[W_COUNT] = {
    [W_BATCH_SEEN] =
        "SELECT 1 FROM batches WHERE device = $1 AND stream = $2 AND seq = $3"
        " UNION ALL SELECT 1 FROM quarantine WHERE device = $1 AND stream = $2 AND seq = $3",
    [W_DEVICE_INSERT] =
        "INSERT INTO devices (id, first_seen_ms, last_seen_ms) VALUES ($1, $2, $2)"
        " ON CONFLICT (id) DO NOTHING",
    [W_STATUS_GET] = "SELECT online, has_status FROM devices WHERE id = $1",
    [W_METRIC_GET] = "SELECT id, unit, tags FROM metrics WHERE device = $1 AND name = $2",
    [W_METRIC_INSERT] =
        "INSERT INTO metrics (device, name, unit) VALUES ($1, $2, $3)"
        " ON CONFLICT (device, name) DO NOTHING RETURNING id",
    [W_METRIC_UNIT] = "UPDATE metrics SET unit = $2 WHERE id = $1",
    [W_METRIC_TAGS] = "UPDATE metrics SET tags = $2 WHERE id = $1 AND tags <> $2",
    [W_BATCH_INSERT] =
        "INSERT INTO batches (device, seq, received_ms, n_samples, historical, boot_id,"
        " time_quality, first_sample_id, last_sample_id, unsynced, stream)"
        " VALUES ($1, $2, $3, $4, $5::int::boolean, $6, $7, $8, $9, $10, $11)"
        " ON CONFLICT (device, stream, seq) DO NOTHING",
    [W_QUARANTINE] =
        "INSERT INTO quarantine (device, stream, seq, received_ms, n_samples, reason, payload)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (device, stream, seq) DO NOTHING",
    [W_XID] = "SELECT pg_current_xact_id()::text::bigint",
};

static int run(struct store_pg *pg, enum writer_stmt id, const struct pg_params *p,
               PGresult **res, const char *what)
{
    return store_pg_run(pg, PG_PART_WRITER, id, writer_sql[id], p, res, what);
}

/* ---- transactions ------------------------------------------------------- */

void store_pg_writer_forget(struct store_pg *pg)
{
    pg->id_base = 0;
    pg->id_next = 0;
    pg->copy.len = 0;
    pg->copy.failed = false;
    pg->copy_rows = 0;
    pg->n_batches = 0;
    pg->batches_unsynced = false;
    pg->n_devices = 0;
    pg->n_acks = 0;
    pg->unsynced_none = false;
    pg->ack_seqs.valid = false;
}

void store_pg_writer_free(struct store_pg *pg)
{
    store_metric_free(&pg->metric_cache);
    free(pg->ack_seqs.seqs);
    pg_buf_free(&pg->copy);
    free(pg->batches);
    free(pg->devices);
    free(pg->acks);
}

/* A lost connection is made again before a transaction, not inside one. */
static int reconnect(struct store_pg *pg)
{
    if (PQstatus(pg->conn) == CONNECTION_OK)
        return 0;
    PQreset(pg->conn);
    memset(pg->prepared, 0, sizeof(pg->prepared));
    store_metric_clear(&pg->metric_cache);
    if (PQstatus(pg->conn) != CONNECTION_OK)
        return store_pg_failed(pg, -ECONNRESET, "connecting", PQerrorMessage(pg->conn));
    return store_pg_exec(pg, "SET TIME ZONE 'UTC'", "setting up the connection");
}

static int pg_begin(struct et_store_writer *w)
{
    struct store_pg *pg = store_pg_of_writer(w);
    int ret;

    if (pg->in_tx)
        return -EALREADY;
    ret = reconnect(pg);
    if (ret == 0)
        ret = store_pg_exec(pg, "BEGIN", "begin");
    if (ret == 0) {
        pg->in_tx = true;
        store_pg_writer_forget(pg);
    }
    return ret;
}

static int pg_rollback(struct et_store_writer *w)
{
    struct store_pg *pg = store_pg_of_writer(w);

    if (!pg->in_tx)
        return 0;
    pg->in_tx = false;
    store_pg_writer_forget(pg);
    /* Metrics this transaction made are gone with it, and so may their tags be. */
    store_metric_clear(&pg->metric_cache);
    if (PQstatus(pg->conn) != CONNECTION_OK)
        return 0;
    return store_pg_exec(pg, "ROLLBACK", "rollback");
}

static int pg_commit(struct et_store_writer *w)
{
    struct store_pg *pg = store_pg_of_writer(w);
    int ret;

    if (!pg->in_tx)
        return -EINVAL;
    ret = store_pg_flush(pg);
    if (ret == 0)
        ret = store_pg_exec(pg, "COMMIT", "commit");
    if (ret < 0) {
        pg_rollback(w);
        return ret;
    }
    pg->in_tx = false;
    return 0;
}

/* A call that buffers, made outside a transaction, gets one of its own (store_pg.h). */
int store_pg_solo_begin(struct store_pg *pg, bool *own)
{
    *own = !pg->in_tx;
    return *own ? pg_begin(&pg->writer) : 0;
}

int store_pg_solo_end(struct store_pg *pg, bool own, int ret)
{
    if (!own)
        return ret;
    if (ret < 0) {
        pg_rollback(&pg->writer);
        return ret;
    }
    return pg_commit(&pg->writer);
}

/* ---- devices ------------------------------------------------------------ */

static int device_ensure(struct store_pg *pg, const char *device, int64_t now_ms, bool *created)
{
    struct pg_params p = { .n = 0 };
    PGresult *r;
    int ret;

    /* A row this connection saw is there still: devices are never deleted. */
    if (store_metric_find(&pg->metric_cache, device, "")) {
        if (created)
            *created = false;
        return 0;
    }
    pg_text(&p, device);
    pg_int(&p, now_ms);
    ret = run(pg, W_DEVICE_INSERT, &p, &r, "adding a device");
    if (ret == 0 && created)
        *created = store_pg_changes(r) > 0;
    if (ret == 0)
        store_metric_add(&pg->metric_cache, device, "", "", NULL, 0);
    PQclear(r);
    return ret;
}

static int pg_device_seen(struct et_store_writer *w, const char *device, int64_t now_ms,
                          const char *boot_id_hex, uint64_t add_samples, bool *created)
{
    struct store_pg *pg = store_pg_of_writer(w);
    struct pg_pending_device *d;
    bool own;
    int ret = store_pg_solo_begin(pg, &own);

    if (ret == 0)
        ret = device_ensure(pg, device, now_ms, created);
    if (ret == 0 && !(d = store_pg_pending_device(pg, device, true)))
        ret = -ENOMEM;
    if (ret == 0) {
        if (now_ms > d->seen_ms)
            d->seen_ms = now_ms;
        if (boot_id_hex && boot_id_hex[0])
            snprintf(d->boot, sizeof(d->boot), "%s", boot_id_hex);
        d->add_samples += add_samples;
        /* The batch's boot is newer than a Status recorded before it here. */
        if (boot_id_hex && boot_id_hex[0] && d->status)
            snprintf(d->status_boot, sizeof(d->status_boot), "%s", boot_id_hex);
    }
    return store_pg_solo_end(pg, own, ret);
}

static int pg_device_status(struct et_store_writer *w, const struct et_store_status *in,
                            int64_t now_ms, struct et_store_status_was *was)
{
    struct store_pg *pg = store_pg_of_writer(w);
    struct et_store_status_was before = { .created = false };
    struct pg_pending_device *d = NULL;
    struct pg_params p = { .n = 0 };
    PGresult *r = NULL;
    bool own;
    int ret = store_pg_solo_begin(pg, &own);

    if (ret == 0)
        ret = device_ensure(pg, in->device, now_ms, &before.created);
    if (ret == 0 && !(d = store_pg_pending_device(pg, in->device, true)))
        ret = -ENOMEM;
    if (ret == 0 && d->status) {
        before.online = d->online;
        before.had_status = true;
    } else if (ret == 0) {
        pg_text(&p, in->device);
        ret = run(pg, W_STATUS_GET, &p, &r, "reading a device's status");
        if (ret == 0 && PQntuples(r) == 1) {
            before.online = pg_col_bool(r, 0, 0);
            before.had_status = pg_col_bool(r, 0, 1);
        }
        PQclear(r);
    }
    if (ret == 0) {
        d->status = true;
        d->online = in->online;
        if (in->boot_id_hex && in->boot_id_hex[0])
            snprintf(d->status_boot, sizeof(d->status_boot), "%s", in->boot_id_hex);
        if (in->agent_version && in->agent_version[0])
            snprintf(d->agent_version, sizeof(d->agent_version), "%s", in->agent_version);
        d->outbox_batches = in->outbox_batches;
        d->dropped_samples = in->dropped_samples;
        d->clock_synced = in->clock_synced;
        snprintf(d->reason, sizeof(d->reason), "%s", in->reason ? in->reason : "");
        d->status_wall_ms = in->device_wall_ms;
        if (was)
            *was = before;
    }
    return store_pg_solo_end(pg, own, ret);
}

/* The config part's device_set, merged into the device's pending row when
 * the transaction has one (ingest: after the Status); else -ENOENT and the
 * config part updates the row itself. */
int store_pg_device_config(struct store_pg *pg, const char *device, const char *groups,
                           uint64_t running_version)
{
    struct pg_pending_device *d = pg->in_tx ? store_pg_pending_device(pg, device, false) : NULL;

    if (!d)
        return -ENOENT;
    d->config = true;
    if (groups) {
        d->has_groups = true;
        snprintf(d->groups, sizeof(d->groups), "%s", groups);
    }
    d->config_version = running_version;
    return 0;
}

/* ---- metrics, batches, samples ------------------------------------------ */

static int pg_metric_id(struct et_store_writer *w, const char *device, const char *name,
                        const char *unit, int64_t *id)
{
    struct store_pg *pg = store_pg_of_writer(w);
    struct store_metric *m = store_metric_find(&pg->metric_cache, device, name);
    struct pg_params p = { .n = 0 };
    PGresult *r = NULL;
    bool same;
    int ret;

    if (m) {
        *id = m->id;
        if (m->unit && strcmp(m->unit, unit) == 0)
            return 0;
        goto set_unit;
    }
    pg_text(&p, device);
    pg_text(&p, name);
    ret = run(pg, W_METRIC_GET, &p, &r, "looking up a metric");
    if (ret == 0 && PQntuples(r) == 0) {
        PQclear(r);
        pg_text(&p, unit);
        /* Another instance adding it at once: this waits, then finds it. */
        ret = run(pg, W_METRIC_INSERT, &p, &r, "adding a metric");
        if (ret == 0 && PQntuples(r) == 1) {
            *id = pg_col_i64(r, 0, 0);
            PQclear(r);
            store_metric_add(&pg->metric_cache, device, name, unit, "", *id);
            return 0;
        }
        PQclear(r);
        r = NULL;
        p.n = 2;
        if (ret == 0)
            ret = run(pg, W_METRIC_GET, &p, &r, "looking up a metric");
    }
    if (ret == 0 && PQntuples(r) != 1)
        ret = store_pg_failed(pg, -EIO, "looking up a metric", "no row after adding it");
    if (ret < 0) {
        PQclear(r);
        return ret;
    }
    *id = pg_col_i64(r, 0, 0);
    store_metric_add(&pg->metric_cache, device, name, pg_col_text(r, 0, 1), pg_col_text(r, 0, 2), *id);
    same = strcmp(pg_col_text(r, 0, 1), unit) == 0;
    PQclear(r);
    if (same)
        return 0;
set_unit:
    p.n = 0;
    pg_int(&p, *id);
    pg_text(&p, unit);
    ret = run(pg, W_METRIC_UNIT, &p, NULL, "updating a metric's unit");
    if (ret == 0 && (m = store_metric_by_id(&pg->metric_cache, *id)))
        store_metric_set(&m->unit, unit);
    return ret;
}

static int pg_metric_tags(struct et_store_writer *w, int64_t id, const char *tags)
{
    struct store_pg *pg = store_pg_of_writer(w);
    struct store_metric *m = store_metric_by_id(&pg->metric_cache, id);
    struct pg_params p = { .n = 0 };
    int ret;

    if (m && m->tags && strcmp(m->tags, tags) == 0)
        return 0;
    pg_int(&p, id);
    pg_text(&p, tags);
    ret = run(pg, W_METRIC_TAGS, &p, NULL, "updating a metric's tags");
    if (ret == 0 && m)
        store_metric_set(&m->tags, tags);
    return ret;
}

static int pg_batch_seen(struct et_store_writer *w, const char *device, const char *stream,
                         uint64_t seq, bool *seen)
{
    struct store_pg *pg = store_pg_of_writer(w);
    struct pg_params p = { .n = 0 };
    PGresult *r;
    int ret;

    *seen = false;
    if (seq > ET_STORE_SEQ_MAX)
        return 0;
    pg_text(&p, device);
    pg_text(&p, stream);
    pg_u64(&p, seq);
    ret = run(pg, W_BATCH_SEEN, &p, &r, "looking up a batch");
    if (ret == 0)
        *seen = PQntuples(r) > 0;
    PQclear(r);
    return ret;
}

static int pg_quarantine(struct et_store_writer *w, const struct et_store_quarantined *q)
{
    struct store_pg *pg = store_pg_of_writer(w);
    struct pg_params p = { .n = 0 };
    bool seen = false;
    PGresult *r;
    int ret;

    if (q->seq > ET_STORE_SEQ_MAX)
        return -ERANGE;
    ret = pg_batch_seen(w, q->device, q->stream_hex, q->seq, &seen);
    if (ret == 0 && seen)
        return -EEXIST;
    if (ret < 0)
        return ret;
    pg_text(&p, q->device);
    pg_text(&p, q->stream_hex);
    pg_u64(&p, q->seq);
    pg_int(&p, q->received_ms);
    pg_int(&p, q->n_samples);
    pg_text(&p, q->reason);
    pg_blob(&p, q->payload, q->len);
    pg->ack_seqs.valid = false;
    ret = run(pg, W_QUARANTINE, &p, &r, "quarantining a batch");
    if (ret == 0 && store_pg_changes(r) == 0)
        ret = -EEXIST;
    PQclear(r);
    return ret;
}

static int pg_insert_batch(struct et_store_writer *w, const struct et_store_batch *b)
{
    struct store_pg *pg = store_pg_of_writer(w);
    struct pg_params p = { .n = 0 };
    PGresult *r;
    int ret;

    if (b->seq > ET_STORE_SEQ_MAX)
        return -ERANGE;
    pg_text(&p, b->device);
    pg_u64(&p, b->seq);
    pg_int(&p, b->received_ms);
    pg_int(&p, b->n_samples);
    pg_int(&p, b->historical);
    pg_text(&p, b->boot_id_hex);
    pg_int(&p, b->time_quality);
    pg_int(&p, b->first_sample_id);
    pg_int(&p, b->last_sample_id);
    pg_int(&p, b->unsynced_samples);
    pg_text(&p, b->stream_hex);
    pg->ack_seqs.valid = false;
    if (b->unsynced_samples)
        pg->unsynced_none = false;
    ret = run(pg, W_BATCH_INSERT, &p, &r, "storing a batch");
    if (ret == 0 && store_pg_changes(r) == 0)
        ret = -EEXIST;
    /* Its samples may still be buffered: a search for waiting ones sends them first. */
    if (ret == 0 && b->unsynced_samples)
        pg->batches_unsynced = true;
    PQclear(r);
    return ret;
}

static int pg_batch_samples(struct et_store_writer *w, const char *device, const char *stream,
                            uint64_t seq, int64_t first_sample_id, int64_t last_sample_id,
                            uint32_t unsynced_samples)
{
    struct store_pg *pg = store_pg_of_writer(w);
    struct pg_pending_batch *b;
    bool own;
    int ret = store_pg_solo_begin(pg, &own);

    if (ret == 0 && !(b = store_pg_grow((void **)&pg->batches, pg->n_batches, &pg->cap_batches,
                               sizeof(*b))))
        ret = -ENOMEM;
    if (ret == 0) {
        snprintf(b->device, sizeof(b->device), "%s", device);
        snprintf(b->stream, sizeof(b->stream), "%s", stream ? stream : "");
        b->seq = seq;
        b->first = first_sample_id;
        b->last = last_sample_id;
        b->unsynced = unsynced_samples;
        pg->n_batches++;
        if (unsynced_samples) {
            pg->batches_unsynced = true;
            pg->unsynced_none = false;
        }
    }
    return store_pg_solo_end(pg, own, ret);
}

/* The next sample id of the transaction (store_pg.h). */
static int next_id(struct store_pg *pg, int64_t *id)
{
    PGresult *r;
    int64_t xid;
    int ret;

    if (!pg->id_base) {
        ret = run(pg, W_XID, NULL, &r, "numbering samples");
        if (ret < 0)
            return ret;
        xid = pg_col_i64(r, 0, 0);
        PQclear(r);
        if (xid <= 0 || xid >= STORE_PG_XID_MAX)
            return store_pg_failed(pg, -EOVERFLOW, "numbering samples",
                                   "the transaction id is past what sample ids hold");
        pg->id_base = xid << STORE_PG_ID_SHIFT;
        pg->id_next = 1;
    }
    if (pg->id_next >= (INT64_C(1) << STORE_PG_ID_SHIFT))
        return store_pg_failed(pg, -E2BIG, "numbering samples",
                               "more samples in one transaction than sample ids hold");
    *id = pg->id_base + pg->id_next++;
    return 0;
}

static int pg_insert_sample(struct et_store_writer *w, const struct et_store_sample *smp,
                            int64_t *id)
{
    struct store_pg *pg = store_pg_of_writer(w);
    int64_t sid = 0;
    bool own;
    int ret;

    if (smp->value.type < ET_TYPE_F64 || smp->value.type > ET_TYPE_STR)
        return -EINVAL;
    if (smp->seq > ET_STORE_SEQ_MAX)
        return -ERANGE;
    ret = store_pg_solo_begin(pg, &own);
    if (ret == 0)
        ret = next_id(pg, &sid);
    if (ret < 0)
        return store_pg_solo_end(pg, own, ret);
    store_pg_copy_sample(pg, smp, sid);
    if (pg->copy.failed)
        ret = -ENOMEM;
    if (ret == 0 && id)
        *id = sid;
    return store_pg_solo_end(pg, own, ret);
}

static const char *pg_last_error(struct et_store_writer *w)
{
    return store_pg_of_writer(w)->last_error;
}

const struct et_store_writer_ops store_pg_writer_ops = {
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .batch_seen = pg_batch_seen,
    .device_seen = pg_device_seen,
    .device_status = pg_device_status,
    .metric_id = pg_metric_id,
    .metric_tags = pg_metric_tags,
    .insert_batch = pg_insert_batch,
    .insert_sample = pg_insert_sample,
    .ack_get = store_pg_ack_get,
    .ack_set = store_pg_ack_set,
    .seqs_after = store_pg_seqs_after,
    .clock_get = store_pg_clock_get,
    .clock_set = store_pg_clock_set,
    .unsynced_samples = store_pg_unsynced_samples,
    .sample_time = store_pg_sample_time,
    .unsynced_done = store_pg_unsynced_done,
    .last_error = pg_last_error,
    .stream_get = store_pg_stream_get,
    .stream_start = store_pg_stream_start,
    .quarantine = pg_quarantine,
    .batch_samples = pg_batch_samples,
    .dict_put = store_pg_dict_put,
    .dict_get = store_pg_dict_get,
};
