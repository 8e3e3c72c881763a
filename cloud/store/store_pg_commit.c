/*
 * What the PostgreSQL writer keeps for the commit (store_pg_writer.c says
 * why): samples as binary COPY rows, where each batch's samples are, and
 * the rows every batch touches, merged per device and per stream; and
 * their writing at the commit, the rows locked in key order first.
 */
#include "store_pg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum commit_stmt {
    C_FLUSH_BATCHES,
    C_LOCK_DEVICES,
    C_FLUSH_DEVICES,
    C_LOCK_STREAMS,
    C_FLUSH_ACKS,
    C_COUNT
};

static const char *const commit_sql[C_COUNT] = {
    [C_FLUSH_BATCHES] =
        "UPDATE batches b SET first_sample_id = v.f, last_sample_id = v.l, unsynced = v.u"
        " FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[],"
        "  $6::int[]) AS v(d, st, q, f, l, u)"
        " WHERE b.device = v.d AND b.stream = v.st AND b.seq = v.q",
    [C_LOCK_DEVICES] = "SELECT 1 FROM devices WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
    [C_FLUSH_DEVICES] =
        "UPDATE devices d SET"
        " last_seen_ms = GREATEST(d.last_seen_ms, v.seen),"
        " boot_id = CASE WHEN v.st AND v.sboot <> '' THEN v.sboot"
        "  WHEN v.boot <> '' THEN v.boot ELSE d.boot_id END,"
        " samples_stored = d.samples_stored + v.add,"
        " clock_boot = CASE WHEN v.clk THEN v.cb ELSE d.clock_boot END,"
        " clock_wall_ms = CASE WHEN v.clk THEN v.cw ELSE d.clock_wall_ms END,"
        " clock_mono_ms = CASE WHEN v.clk THEN v.cm ELSE d.clock_mono_ms END,"
        " online = CASE WHEN v.st THEN v.online ELSE d.online END,"
        " has_status = d.has_status OR v.st,"
        " agent_version = CASE WHEN v.st AND v.ver <> '' THEN v.ver ELSE d.agent_version END,"
        " outbox_batches = CASE WHEN v.st THEN v.outbox ELSE d.outbox_batches END,"
        " dropped_samples = CASE WHEN v.st THEN v.dropped ELSE d.dropped_samples END,"
        " clock_synced = CASE WHEN v.st THEN v.synced ELSE d.clock_synced END,"
        " reason = CASE WHEN v.st THEN v.why ELSE d.reason END,"
        " status_wall_ms = CASE WHEN v.st THEN v.wall ELSE d.status_wall_ms END,"
        " config_groups = CASE WHEN v.cfg AND v.groups IS NOT NULL THEN v.groups"
        "  ELSE d.config_groups END,"
        " config_version = CASE WHEN v.cfg THEN v.cver ELSE d.config_version END"
        " FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::boolean[],"
        "  $6::text[], $7::bigint[], $8::bigint[], $9::boolean[], $10::boolean[], $11::text[],"
        "  $12::text[], $13::bigint[], $14::bigint[], $15::boolean[], $16::text[],"
        "  $17::bigint[], $18::boolean[], $19::text[], $20::bigint[])"
        "  AS v(id, seen, boot, add, clk, cb, cw, cm, st, online, sboot, ver, outbox, dropped,"
        "  synced, why, wall, cfg, groups, cver)"
        " WHERE d.id = v.id",
    [C_LOCK_STREAMS] =
        "SELECT 1 FROM streams s JOIN unnest($1::text[], $2::text[]) AS v(d, st)"
        " ON s.device = v.d AND s.stream = v.st ORDER BY s.device, s.stream FOR UPDATE OF s",
    [C_FLUSH_ACKS] =
        "UPDATE streams s SET acked_through = GREATEST(s.acked_through, v.a)"
        " FROM unnest($1::text[], $2::text[], $3::bigint[]) AS v(d, st, a)"
        " WHERE s.device = v.d AND s.stream = v.st",
};

static int run(struct store_pg *pg, enum commit_stmt id, const struct pg_params *p,
               const char *what)
{
    return store_pg_run(pg, PG_PART_COMMIT, id, commit_sql[id], p, NULL, what);
}

/* Grow an array of elem-sized items to hold one more. */
void *store_pg_grow(void **items, size_t n, size_t *cap, size_t elem)
{
    if (n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        void *p = realloc(*items, c * elem);

        if (!p)
            return NULL;
        *items = p;
        *cap = c;
    }
    return (char *)*items + n * elem;
}

struct pg_pending_device *store_pg_pending_device(struct store_pg *pg, const char *id, bool make)
{
    struct pg_pending_device *d;

    for (size_t i = pg->n_devices; i-- > 0;)
        if (strcmp(pg->devices[i].id, id) == 0)
            return &pg->devices[i];
    if (!make)
        return NULL;
    d = store_pg_grow((void **)&pg->devices, pg->n_devices, &pg->cap_devices, sizeof(*d));
    if (!d)
        return NULL;
    memset(d, 0, sizeof(*d));
    snprintf(d->id, sizeof(d->id), "%s", id);
    pg->n_devices++;
    return d;
}

struct pg_pending_ack *store_pg_pending_ack(struct store_pg *pg, const char *device,
                                          const char *stream, bool make)
{
    struct pg_pending_ack *a;

    for (size_t i = pg->n_acks; i-- > 0;)
        if (strcmp(pg->acks[i].device, device) == 0 && strcmp(pg->acks[i].stream, stream) == 0)
            return &pg->acks[i];
    if (!make)
        return NULL;
    a = store_pg_grow((void **)&pg->acks, pg->n_acks, &pg->cap_acks, sizeof(*a));
    if (!a)
        return NULL;
    memset(a, 0, sizeof(*a));
    snprintf(a->device, sizeof(a->device), "%s", device);
    snprintf(a->stream, sizeof(a->stream), "%s", stream);
    pg->n_acks++;
    return a;
}

/* Send the buffered samples in one COPY. */
int store_pg_flush_samples(struct store_pg *pg)
{
    PGresult *r;
    int ret;

    if (pg->copy_rows == 0)
        return 0;
    if (pg->copy.failed)
        return -ENOMEM;
    pg_buf_be16(&pg->copy, 0xffff);   /* the trailer */
    r = PQexec(pg->conn, "COPY samples (id, metric_id, ts, mono_ms, vtype, v_f64, v_i64,"
               " v_bool, v_str, time_quality, seq) FROM STDIN (FORMAT binary)");
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        ret = store_pg_failed(pg, store_pg_errno(pg, r), "storing samples",
                              PQresultErrorMessage(r));
        PQclear(r);
        return ret;
    }
    PQclear(r);
    if (PQputCopyData(pg->conn, pg->copy.p, (int)pg->copy.len) != 1 ||
        PQputCopyEnd(pg->conn, NULL) != 1)
        return store_pg_failed(pg, -ECONNRESET, "storing samples", PQerrorMessage(pg->conn));
    ret = 0;
    while ((r = PQgetResult(pg->conn)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && ret == 0)
            ret = store_pg_failed(pg, store_pg_errno(pg, r), "storing samples",
                                  PQresultErrorMessage(r));
        PQclear(r);
    }
    pg->copy.len = 0;
    pg->copy_rows = 0;
    return ret;
}

/* A numeric or boolean field of n structs as an array literal. */
static void int_array(struct pg_buf *b, const void *base, size_t n, size_t stride, size_t off,
                      int kind)
{
    char num[32];

    pg_buf_str(b, "{");
    for (size_t i = 0; i < n; i++) {
        const char *item = (const char *)base + i * stride + off;

        switch (kind) {
        case 'i':
            snprintf(num, sizeof(num), "%s%" PRId64, i ? "," : "", *(const int64_t *)item);
            break;
        case 'u':
            snprintf(num, sizeof(num), "%s%" PRIu64, i ? "," : "",
                     *(const uint64_t *)item > (uint64_t)INT64_MAX
                     ? (uint64_t)INT64_MAX : *(const uint64_t *)item);
            break;
        case '3':
            snprintf(num, sizeof(num), "%s%" PRIu32, i ? "," : "", *(const uint32_t *)item);
            break;
        default:   /* bool */
            snprintf(num, sizeof(num), "%s%s", i ? "," : "", *(const bool *)item ? "t" : "f");
            break;
        }
        pg_buf_str(b, num);
    }
    pg_buf_add(b, "}", 2);
}

#define NUM_ARRAY(buf, arr, n, type, field, kind) \
    int_array(buf, arr, n, sizeof(type), offsetof(type, field), kind)

/* A char array field of n structs as a text array literal. */
#define TEXT_ARRAY(buf, arr, n, field) \
    pg_buf_text_array(buf, (arr)[0].field, n, sizeof((arr)[0]))

/* Run statement id with the n array literals a as its parameters (lock,
 * when not -1, with the first n_lock of them first); free them. */
static int run_arrays(struct store_pg *pg, int lock, int n_lock, int id, struct pg_buf *a, int n,
                      const char *what)
{
    struct pg_params p = { .n = 0 };
    int ret = 0;

    for (int i = 0; i < n; i++) {
        if (a[i].failed)
            ret = -ENOMEM;
        else
            pg_text(&p, a[i].p);
    }
    if (ret == 0 && lock >= 0) {
        struct pg_params l = p;

        /* Rows locked in key order first: the statement takes the keys only. */
        l.n = n_lock;
        ret = run(pg, (enum commit_stmt)lock, &l, what);
    }
    if (ret == 0)
        ret = run(pg, (enum commit_stmt)id, &p, what);
    for (int i = 0; i < n; i++)
        pg_buf_free(&a[i]);
    return ret;
}

/* Where each batch's samples are, in one statement. */
int store_pg_flush_batches(struct store_pg *pg)
{
    struct pg_buf a[6] = { { .p = NULL } };
    struct pg_pending_batch *b = pg->batches;
    size_t n = pg->n_batches;
    int ret;

    if (n == 0)
        return 0;
    TEXT_ARRAY(&a[0], b, n, device);
    TEXT_ARRAY(&a[1], b, n, stream);
    NUM_ARRAY(&a[2], b, n, struct pg_pending_batch, seq, 'u');
    NUM_ARRAY(&a[3], b, n, struct pg_pending_batch, first, 'i');
    NUM_ARRAY(&a[4], b, n, struct pg_pending_batch, last, 'i');
    NUM_ARRAY(&a[5], b, n, struct pg_pending_batch, unsynced, '3');
    ret = run_arrays(pg, -1, 0, C_FLUSH_BATCHES, a, 6, "recording batches' samples");
    if (ret == 0) {
        pg->n_batches = 0;
        pg->batches_unsynced = false;
    }
    return ret;
}

/* The devices' writes of the transaction, merged per device, in one statement. */
static int flush_devices(struct store_pg *pg)
{
    enum { N_ARRAYS = 20 };
    struct pg_buf a[N_ARRAYS] = { { .p = NULL } };
    struct pg_pending_device *d = pg->devices;
    size_t n = pg->n_devices, k = 0;
    int ret;

    if (n == 0)
        return 0;
#define DEV(field, kind) NUM_ARRAY(&a[k++], d, n, struct pg_pending_device, field, kind)
    TEXT_ARRAY(&a[k++], d, n, id);
    DEV(seen_ms, 'i');
    TEXT_ARRAY(&a[k++], d, n, boot);
    DEV(add_samples, 'u');
    DEV(clock, 'b');
    TEXT_ARRAY(&a[k++], d, n, clk.boot_id_hex);
    DEV(clk.base_wall_ms, 'i');
    DEV(clk.base_mono_ms, 'i');
    DEV(status, 'b');
    DEV(online, 'b');
    TEXT_ARRAY(&a[k++], d, n, status_boot);
    TEXT_ARRAY(&a[k++], d, n, agent_version);
    DEV(outbox_batches, 'u');
    DEV(dropped_samples, 'u');
    DEV(clock_synced, 'b');
    TEXT_ARRAY(&a[k++], d, n, reason);
    DEV(status_wall_ms, 'i');
    DEV(config, 'b');
    /* Groups: NULL keeps the recorded ones. */
    pg_buf_str(&a[k], "{");
    for (size_t i = 0; i < n; i++) {
        pg_buf_str(&a[k], i ? "," : "");
        if (!d[i].has_groups) {
            pg_buf_str(&a[k], "NULL");
            continue;
        }
        pg_buf_str(&a[k], "\"");
        pg_buf_str(&a[k], d[i].groups);   /* names as device ids: no quote */
        pg_buf_str(&a[k], "\"");
    }
    pg_buf_add(&a[k++], "}", 2);
    DEV(config_version, 'u');
#undef DEV
    ret = run_arrays(pg, C_LOCK_DEVICES, 1, C_FLUSH_DEVICES, a, N_ARRAYS, "updating devices");
    if (ret == 0)
        pg->n_devices = 0;
    return ret;
}

/* The streams' acks of the transaction, in one statement. */
static int flush_acks(struct store_pg *pg)
{
    struct pg_buf a[3] = { { .p = NULL } };
    struct pg_pending_ack *k = pg->acks;
    size_t n = pg->n_acks;
    int ret;

    if (n == 0)
        return 0;
    TEXT_ARRAY(&a[0], k, n, device);
    TEXT_ARRAY(&a[1], k, n, stream);
    NUM_ARRAY(&a[2], k, n, struct pg_pending_ack, ack, 'u');
    ret = run_arrays(pg, C_LOCK_STREAMS, 2, C_FLUSH_ACKS, a, 3, "writing streams' acks");
    if (ret == 0)
        pg->n_acks = 0;
    return ret;
}

/* PostgreSQL's binary timestamptz: microseconds since 2000-01-01 UTC. */
#define PG_EPOCH_MS INT64_C(946684800000)

static void copy_null(struct pg_buf *b)
{
    pg_buf_be32(b, 0xffffffffu);
}

static void copy_i64(struct pg_buf *b, int64_t v)
{
    pg_buf_be32(b, 8);
    pg_buf_be64(b, (uint64_t)v);
}

static void copy_i16(struct pg_buf *b, int v)
{
    pg_buf_be32(b, 2);
    pg_buf_be16(b, (uint16_t)v);
}


void store_pg_copy_sample(struct store_pg *pg, const struct et_store_sample *smp, int64_t sid)
{
    static const char header[11] = "PGCOPY\n\377\r\n";
    struct pg_buf *b = &pg->copy;
    uint64_t bits;

    if (pg->copy_rows == 0 && b->len == 0) {
        pg_buf_add(b, header, sizeof(header));   /* with its NUL: 11 bytes */
        pg_buf_be32(b, 0);                       /* flags */
        pg_buf_be32(b, 0);                       /* header extension */
    }
    pg_buf_be16(b, 11);
    copy_i64(b, sid);
    copy_i64(b, smp->metric_id);
    copy_i64(b, (smp->ts_ms - PG_EPOCH_MS) * 1000);
    copy_i64(b, smp->mono_ms);
    copy_i16(b, smp->value.type);
    if (smp->value.type == ET_TYPE_F64) {
        memcpy(&bits, &smp->value.u.f64, sizeof(bits));
        pg_buf_be32(b, 8);
        pg_buf_be64(b, bits);
    } else {
        copy_null(b);
    }
    if (smp->value.type == ET_TYPE_I64)
        copy_i64(b, smp->value.u.i64);
    else
        copy_null(b);
    if (smp->value.type == ET_TYPE_BOOL) {
        pg_buf_be32(b, 1);
        pg_buf_add(b, smp->value.u.b ? "\1" : "\0", 1);
    } else {
        copy_null(b);
    }
    if (smp->value.type == ET_TYPE_STR) {
        size_t n = strlen(smp->value.u.str);

        pg_buf_be32(b, (uint32_t)n);
        pg_buf_add(b, smp->value.u.str, n);
    } else {
        copy_null(b);
    }
    copy_i16(b, smp->time_quality);
    copy_i64(b, (int64_t)smp->seq);
    pg->copy_rows++;
}

int store_pg_flush(struct store_pg *pg)
{
    int ret = store_pg_flush_samples(pg);

    if (ret == 0)
        ret = store_pg_flush_batches(pg);
    if (ret == 0)
        ret = flush_devices(pg);
    if (ret == 0)
        ret = flush_acks(pg);
    return ret;
}
