/*
 * The PostgreSQL writer's streams and their cumulative acks
 * (store_writer.h: ack_get, ack_set, seqs_after, stream_get,
 * stream_start). A stream's ack is kept with the transaction's other hot
 * rows and written at its commit (store_pg_commit.c), so every read here
 * takes the kept value over the row's when it is higher: an ack never
 * goes back. The seqs above an ack are read with it in one round trip and
 * kept for the seqs_after that follows (ack.c's walk asks for both).
 */
#include "store_pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum stream_stmt {
    S_SEQS_AFTER,
    S_ACK_SEQS,
    S_STREAM_GET,
    S_STREAM_CURRENT,
    S_STREAM_INSERT,
    S_STREAM_MAKE_CURRENT,
    S_COUNT
};

/* Seqs read with a stream's ack (ET_ACK_SCAN_SEQS, a page of ack.c's walk). */
#define STORE_PG_ACK_SEQS 512
#define STORE_PG_ACK_SEQS_TEXT "512"

static const char *const stream_sql[S_COUNT] = {
    [S_SEQS_AFTER] =
        "SELECT seq FROM batches WHERE device = $1 AND stream = $2 AND seq > $3"
        " UNION ALL SELECT seq FROM quarantine WHERE device = $1 AND stream = $2 AND seq > $3"
        " ORDER BY seq LIMIT $4",
    /* The ack and the first seqs above it (S_SEQS_AFTER's), in one. */
    [S_ACK_SEQS] =
        "SELECT s.acked_through, ARRAY(SELECT x.seq FROM ("
        "  SELECT seq FROM batches WHERE device = $1 AND stream = $2 AND seq > s.acked_through"
        "  UNION ALL SELECT seq FROM quarantine WHERE device = $1 AND stream = $2"
        "  AND seq > s.acked_through) x ORDER BY x.seq LIMIT " STORE_PG_ACK_SEQS_TEXT ")::text"
        " FROM streams s WHERE s.device = $1 AND s.stream = $2",
    [S_STREAM_GET] =
        "SELECT started_ms, acked_through,"
        " (SELECT MAX(seq) FROM batches WHERE device = $1 AND stream = $2),"
        " (SELECT received_ms FROM batches WHERE device = $1 AND stream = $2"
        "  ORDER BY seq DESC LIMIT 1)"
        " FROM streams WHERE device = $1 AND stream = $2",
    [S_STREAM_CURRENT] =
        "SELECT d.stream, s.acked_through FROM devices d"
        " JOIN streams s ON s.device = d.id AND s.stream = d.stream WHERE d.id = $1",
    [S_STREAM_INSERT] =
        "INSERT INTO streams (device, stream, started_ms) VALUES ($1, $2, $3)"
        " ON CONFLICT (device, stream) DO NOTHING",
    [S_STREAM_MAKE_CURRENT] = "UPDATE devices SET stream = $2 WHERE id = $1",
};

static int run(struct store_pg *pg, enum stream_stmt id, const struct pg_params *p,
               PGresult **res, const char *what)
{
    return store_pg_run(pg, PG_PART_STREAM, id, stream_sql[id], p, res, what);
}

/* The higher of a stored ack and the one this transaction keeps for its commit. */
static uint64_t with_kept_ack(struct store_pg *pg, const char *device, const char *stream,
                              uint64_t stored)
{
    struct pg_pending_ack *a = store_pg_pending_ack(pg, device, stream, false);

    return a && a->ack > stored ? a->ack : stored;
}

/* "{5,6,9}", the seqs above acked_through, kept for the seqs_after that follows. */
static void keep_seqs(struct store_pg *pg, const char *device, const char *stream,
                      uint64_t acked_through, const char *list)
{
    uint64_t *seqs = pg->ack_seqs.seqs ? pg->ack_seqs.seqs
                                       : malloc(STORE_PG_ACK_SEQS * sizeof(*seqs));
    size_t n = 0;

    pg->ack_seqs.seqs = seqs;
    if (!seqs)
        return;   /* seqs_after asks the database instead */
    for (const char *q = list; *q && n < STORE_PG_ACK_SEQS; q++) {
        if (*q >= '0' && *q <= '9') {
            char *end;

            seqs[n++] = strtoull(q, &end, 10);
            q = end - 1;
        }
    }
    pg->ack_seqs.n = n;
    pg->ack_seqs.complete = n < STORE_PG_ACK_SEQS;
    pg->ack_seqs.base = acked_through;
    store_pg_key(pg->ack_seqs.key, sizeof(pg->ack_seqs.key), device, stream);
    pg->ack_seqs.valid = true;
}

int store_pg_ack_get(struct et_store_writer *w, const char *device, const char *stream,
                     uint64_t *acked_through)
{
    struct store_pg *pg = store_pg_of_writer(w);
    struct pg_params p = { .n = 0 };
    PGresult *r;
    int ret;

    pg_text(&p, device);
    pg_text(&p, stream);
    pg->ack_seqs.valid = false;
    ret = run(pg, S_ACK_SEQS, &p, &r, "reading a stream's ack");
    if (ret == 0 && PQntuples(r) == 0)
        ret = -ENOENT;
    if (ret == 0) {
        *acked_through = pg_col_u64(r, 0, 0);
        keep_seqs(pg, device, stream, *acked_through, pg_col_text(r, 0, 1));
        *acked_through = with_kept_ack(pg, device, stream, *acked_through);
    }
    PQclear(r);
    return ret;
}

int store_pg_ack_set(struct et_store_writer *w, const char *device, const char *stream,
                     uint64_t acked_through)
{
    struct store_pg *pg = store_pg_of_writer(w);
    struct pg_pending_ack *a;
    bool own;
    int ret = store_pg_solo_begin(pg, &own);

    if (ret == 0 && !(a = store_pg_pending_ack(pg, device, stream, true)))
        ret = -ENOMEM;
    if (ret == 0 && acked_through > a->ack)
        a->ack = acked_through;
    return store_pg_solo_end(pg, own, ret);
}

/* The seqs kept by ack_get answer the call: true, with *n of them in seqs. */
static bool kept_seqs(struct store_pg *pg, const char *device, const char *stream,
                      uint64_t after, uint64_t *seqs, size_t max, size_t *n)
{
    char key[128];
    size_t i = 0;

    if (!pg->ack_seqs.valid || after < pg->ack_seqs.base)
        return false;
    store_pg_key(key, sizeof(key), device, stream);
    if (strcmp(key, pg->ack_seqs.key) != 0)
        return false;
    while (i < pg->ack_seqs.n && pg->ack_seqs.seqs[i] <= after)
        i++;
    for (*n = 0; i < pg->ack_seqs.n && *n < max; i++)
        seqs[(*n)++] = pg->ack_seqs.seqs[i];
    /* Answered when the page is full or nothing lies beyond what was read. */
    if (*n == max || pg->ack_seqs.complete)
        return true;
    *n = 0;
    return false;
}

int store_pg_seqs_after(struct et_store_writer *w, const char *device, const char *stream,
                        uint64_t after, uint64_t *seqs, size_t max, size_t *n)
{
    struct store_pg *pg = store_pg_of_writer(w);
    struct pg_params p = { .n = 0 };
    PGresult *r;
    int ret;

    *n = 0;
    if (kept_seqs(pg, device, stream, after, seqs, max, n))
        return 0;
    pg_text(&p, device);
    pg_text(&p, stream);
    pg_u64(&p, after);
    pg_u64(&p, max);
    ret = run(pg, S_SEQS_AFTER, &p, &r, "scanning a device's batches");
    for (int i = 0; ret == 0 && i < PQntuples(r) && (size_t)i < max; i++)
        seqs[(*n)++] = pg_col_u64(r, i, 0);
    PQclear(r);
    return ret;
}

int store_pg_stream_get(struct et_store_writer *w, const char *device, const char *stream,
                        struct et_store_stream *out)
{
    struct store_pg *pg = store_pg_of_writer(w);
    struct pg_params p = { .n = 0 };
    PGresult *r;
    int ret;

    memset(out, 0, sizeof(*out));
    pg_text(&p, device);
    pg_text(&p, stream);
    ret = run(pg, S_STREAM_GET, &p, &r, "reading a stream");
    if (ret == 0 && PQntuples(r) == 0)
        ret = -ENOENT;
    if (ret == 0) {
        out->started_ms = pg_col_i64(r, 0, 0);
        out->acked_through = with_kept_ack(pg, device, stream, pg_col_u64(r, 0, 1));
        out->top_seq = pg_col_u64(r, 0, 2);
        out->top_received_ms = pg_col_i64(r, 0, 3);
    }
    PQclear(r);
    return ret;
}

int store_pg_stream_start(struct et_store_writer *w, const char *device, const char *stream,
                          int64_t now_ms, struct et_store_stream_was *was)
{
    struct store_pg *pg = store_pg_of_writer(w);
    struct et_store_stream_was before = { .had = false };
    struct pg_params p = { .n = 0 };
    PGresult *r = NULL;
    int ret;

    pg_text(&p, device);
    ret = run(pg, S_STREAM_CURRENT, &p, &r, "reading a device's stream");
    if (ret == 0 && PQntuples(r) == 1) {
        before.had = true;
        snprintf(before.stream_hex, sizeof(before.stream_hex), "%s", pg_col_text(r, 0, 0));
        before.acked_through = with_kept_ack(pg, device, before.stream_hex,
                                             pg_col_u64(r, 0, 1));
    }
    PQclear(r);
    r = NULL;
    if (ret == 0) {
        pg_text(&p, stream);
        pg_int(&p, now_ms);
        ret = run(pg, S_STREAM_INSERT, &p, &r, "recording a stream");
        if (ret == 0 && store_pg_changes(r) == 0)
            ret = -EEXIST;
        PQclear(r);
        r = NULL;
    }
    if (ret == 0) {
        p.n = 2;
        ret = run(pg, S_STREAM_MAKE_CURRENT, &p, &r, "recording a device's stream");
        if (ret == 0 && store_pg_changes(r) == 0)
            ret = -ENOENT;   /* no device row */
        PQclear(r);
    }
    if (ret == 0 && was)
        *was = before;
    return ret;
}
