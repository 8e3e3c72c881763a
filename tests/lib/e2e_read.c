/*
 * The end-to-end fixture's reads: sim.counter values and drop counts in
 * the aggregator's store, acks and streams of a device, and what an
 * agent's outbox still holds. See e2e.h.
 */
#define _GNU_SOURCE
#include "e2e.h"
#include "e2e_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

/*
 * Open read-only. A database that does not exist yet is -ENOENT (the
 * programs create theirs when they start, the tests may look earlier).
 */
int e2e_open_ro(const char *path, sqlite3 **db)
{
    if (access(path, F_OK) != 0)
        return -ENOENT;
    if (sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(*db);
        *db = NULL;
        return -EIO;
    }
    sqlite3_busy_timeout(*db, E2E_BUSY_TIMEOUT_MS);
    return 0;
}

/* Prepare sql; a missing table (the schema not made yet) is -ENOENT. */
int e2e_prepare(sqlite3 *db, const char *path, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);

    if (rc == SQLITE_OK)
        return 0;
    if (strstr(sqlite3_errmsg(db), "no such table"))
        return -ENOENT;     /* the aggregator has not made its schema yet */
    /* Any other error in a statement of ours (a column the store does not
     * have) is this library disagreeing with the store: no wait can end
     * it, so it fails the test now instead of at the wait's timeout. */
    if ((rc & 0xff) == SQLITE_ERROR)
        fail_msg("e2e: %s: cannot read the store with \"%.60s...\": %s", path, sql,
                 sqlite3_errmsg(db));
    print_error("e2e: %s: %s\n", path, sqlite3_errmsg(db));
    return -EIO;
}

static const char counter_sql[] =
    "SELECT COUNT(*), COUNT(DISTINCT s.v_i64),"
    "       COALESCE(MIN(s.v_i64), -1), COALESCE(MAX(s.v_i64), -1),"
    "       COUNT(DISTINCT CASE WHEN s.v_i64 BETWEEN 0 AND ?2 THEN s.v_i64 END)"
    "  FROM samples s JOIN metrics m ON m.id = s.metric_id"
    " WHERE m.device = ?1 AND m.name = 'sim.counter'";

int et_e2e_counter_read(const char *store_path, const char *device, int64_t upto,
                        struct et_e2e_counter *out)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    out->min = out->max = -1;
    out->upto = upto;
    if (e2e_store_is_pg(store_path))
        return e2e_pg_counter_read(store_path, device, upto, out);
    rc = e2e_open_ro(store_path, &db);
    if (rc < 0)
        return rc;
    rc = e2e_prepare(db, store_path, counter_sql, &st);
    if (rc < 0)
        goto out;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, upto);
    if (sqlite3_step(st) != SQLITE_ROW) {
        print_error("e2e: %s: %s\n", store_path, sqlite3_errmsg(db));
        rc = -EIO;
        goto out;
    }
    out->rows = sqlite3_column_int64(st, 0);
    out->distinct = sqlite3_column_int64(st, 1);
    out->min = sqlite3_column_int64(st, 2);
    out->max = sqlite3_column_int64(st, 3);
    out->in_range = sqlite3_column_int64(st, 4);
    rc = 0;
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* One integer from a query with the device bound to ?1; 0 when there is nothing yet. */
static int64_t query_device_int(const char *store_path, const char *device, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = 0;

    if (e2e_open_ro(store_path, &db) < 0)
        return 0;
    if (e2e_prepare(db, store_path, sql, &st) == 0) {
        sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

int64_t et_e2e_counter_seq(const char *store_path, const char *device, int64_t value)
{
    char sql[256];

    /* The value is the test's own number, not outside input. */
    snprintf(sql, sizeof(sql), "SELECT COALESCE(MAX(s.seq), 0) FROM samples s"
             " JOIN metrics m ON m.id = s.metric_id"
             " WHERE m.device = ?1 AND m.name = 'sim.counter' AND s.v_i64 = %" PRId64, value);
    return query_device_int(store_path, device, sql);
}

int64_t et_e2e_device_samples(const char *store_path, const char *device)
{
    return query_device_int(store_path, device,
                            "SELECT COUNT(*) FROM samples s JOIN metrics m ON m.id = s.metric_id"
                            " WHERE m.device = ?1");
}

int64_t et_e2e_dropped_samples(const char *store_path, const char *device)
{
    int64_t metric = query_device_int(store_path, device,
                                      "SELECT COALESCE(MAX(s.v_i64), 0) FROM samples s"
                                      " JOIN metrics m ON m.id = s.metric_id"
                                      " WHERE m.device = ?1 AND m.name = 'agent.dropped_samples'");
    int64_t status = query_device_int(store_path, device,
                                      "SELECT dropped_samples FROM devices WHERE id = ?1");

    return metric > status ? metric : status;
}

int et_e2e_counter_samples(const char *store_path, const char *device,
                           struct et_e2e_sample **out, size_t *n)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    struct et_e2e_sample *v = NULL;
    size_t cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    if (e2e_store_is_pg(store_path))
        return e2e_pg_counter_samples(store_path, device, out, n);
    rc = e2e_open_ro(store_path, &db);
    if (rc < 0)
        return rc;
    rc = e2e_prepare(db, store_path,
                 "SELECT s.v_i64, s.ts_ms, s.seq FROM samples s JOIN metrics m ON m.id = s.metric_id"
                 " WHERE m.device = ?1 AND m.name = 'sim.counter' ORDER BY s.v_i64, s.seq",
                 &st);
    if (rc < 0)
        goto out;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            struct et_e2e_sample *bigger;

            cap = cap ? cap * 2 : 4096;
            bigger = realloc(v, cap * sizeof(*v));
            if (!bigger) {
                rc = -ENOMEM;
                goto out;
            }
            v = bigger;
        }
        v[*n] = (struct et_e2e_sample){ .value = sqlite3_column_int64(st, 0),
                                        .ts_ms = sqlite3_column_int64(st, 1),
                                        .seq = sqlite3_column_int64(st, 2) };
        (*n)++;
    }
    if (rc != SQLITE_DONE) {
        print_error("e2e: %s: %s\n", store_path, sqlite3_errmsg(db));
        rc = -EIO;
        goto out;
    }
    *out = v;
    v = NULL;
    rc = 0;
out:
    if (rc < 0)
        *n = 0;
    free(v);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

uint64_t et_e2e_acked_through(const char *store_path, const char *device)
{
    return (uint64_t)query_device_int(store_path, device,
                                      "SELECT s.acked_through FROM devices d JOIN streams s"
                                      " ON s.device = d.id AND s.stream = d.stream"
                                      " WHERE d.id = ?1");
}

uint64_t et_e2e_streams(const char *store_path, const char *device)
{
    return (uint64_t)query_device_int(store_path, device,
                                      "SELECT COUNT(*) FROM streams WHERE device = ?1");
}

int et_e2e_outbox_read(const char *outbox_path, uint64_t through, int64_t *batches,
                       uint64_t *max_seq)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc;

    rc = e2e_open_ro(outbox_path, &db);
    if (rc < 0)
        return rc;
    rc = e2e_prepare(db, outbox_path,
                 "SELECT (SELECT COUNT(*) FROM batch WHERE seq <= ?1),"
                 "       (SELECT COALESCE(MAX(seq), 0) FROM batch)",
                 &st);
    if (rc < 0)
        goto out;
    /* seq is stored as a signed 64-bit integer; clamp the "all" bound. */
    sqlite3_bind_int64(st, 1, through > INT64_MAX ? INT64_MAX : (int64_t)through);
    if (sqlite3_step(st) != SQLITE_ROW) {
        print_error("e2e: %s: %s\n", outbox_path, sqlite3_errmsg(db));
        rc = -EIO;
        goto out;
    }
    *batches = sqlite3_column_int64(st, 0);
    *max_seq = (uint64_t)sqlite3_column_int64(st, 1);
    rc = 0;
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
