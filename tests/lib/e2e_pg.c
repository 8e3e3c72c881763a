/*
 * The end-to-end fixture on a PostgreSQL store: a schema of the test's
 * own on the suite's private server (tests/pg/pg_test.h), and the reads of
 * e2e_read.c that tests of many aggregators use, in PostgreSQL's SQL.
 */
#include "e2e.h"
#include "e2e_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>
#include <libpq-fe.h>

#include "pg_test.h"

bool e2e_store_is_pg(const char *store_path)
{
    return strchr(store_path, '=') || strncmp(store_path, "postgres", 8) == 0;
}

void et_e2e_use_postgresql(struct et_e2e *e)
{
    et_pg_test_schema(e->pg_conninfo, sizeof(e->pg_conninfo), e->pg_schema,
                      sizeof(e->pg_schema));
    e->store_path = e->pg_conninfo;
    e->store_type = "postgresql";
}

void e2e_pg_drop(struct et_e2e *e)
{
    if (e->pg_schema[0])
        et_pg_test_drop(e->pg_schema);
}

/* The rows of sql with the device as $1 (and upto as $2 when not NULL). */
static int query(const char *conninfo, const char *sql, const char *device, const char *upto,
                 PGconn **conn, PGresult **res)
{
    const char *params[2] = { device, upto };

    *res = NULL;
    *conn = PQconnectdb(conninfo);
    if (PQstatus(*conn) != CONNECTION_OK) {
        print_error("e2e: PostgreSQL: %s", PQerrorMessage(*conn));
        return -EIO;
    }
    *res = PQexecParams(*conn, sql, upto ? 2 : 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(*res) == PGRES_TUPLES_OK)
        return 0;
    /* Before the aggregator made its schema there is nothing to read yet. */
    if (strcmp(PQresultErrorField(*res, PG_DIAG_SQLSTATE) ?: "", "42P01") == 0)
        return -ENOENT;
    fail_msg("e2e: PostgreSQL: cannot read the store with \"%.60s...\": %s", sql,
             PQresultErrorMessage(*res));
    return -EIO;
}

static int64_t col(const PGresult *r, int row, int c)
{
    return PQgetisnull(r, row, c) ? -1 : strtoll(PQgetvalue(r, row, c), NULL, 10);
}

int e2e_pg_counter_read(const char *conninfo, const char *device, int64_t upto,
                        struct et_e2e_counter *out)
{
    char bound[24];
    PGconn *c;
    PGresult *r;
    int rc;

    snprintf(bound, sizeof(bound), "%lld", (long long)upto);
    rc = query(conninfo,
               "SELECT COUNT(*), COUNT(DISTINCT s.v_i64), MIN(s.v_i64), MAX(s.v_i64),"
               " COUNT(DISTINCT CASE WHEN s.v_i64 BETWEEN 0 AND $2::bigint THEN s.v_i64 END)"
               " FROM samples s JOIN metrics m ON m.id = s.metric_id"
               " WHERE m.device = $1 AND m.name = 'sim.counter'", device, bound, &c, &r);
    if (rc == 0) {
        out->rows = col(r, 0, 0);
        out->distinct = col(r, 0, 1);
        out->min = col(r, 0, 2);
        out->max = col(r, 0, 3);
        out->in_range = col(r, 0, 4);
    }
    PQclear(r);
    PQfinish(c);
    return rc;
}

int e2e_pg_counter_samples(const char *conninfo, const char *device,
                           struct et_e2e_sample **out, size_t *n)
{
    PGconn *c;
    PGresult *r;
    int rc = query(conninfo,
                   "SELECT s.v_i64, (extract(epoch FROM s.ts) * 1000)::bigint, s.seq"
                   " FROM samples s JOIN metrics m ON m.id = s.metric_id"
                   " WHERE m.device = $1 AND m.name = 'sim.counter' ORDER BY s.v_i64, s.seq",
                   device, NULL, &c, &r);

    if (rc == 0) {
        *n = (size_t)PQntuples(r);
        *out = calloc(*n ? *n : 1, sizeof(**out));
        if (!*out)
            rc = -ENOMEM;
        for (size_t i = 0; rc == 0 && i < *n; i++)
            (*out)[i] = (struct et_e2e_sample){ .value = col(r, (int)i, 0),
                                                .ts_ms = col(r, (int)i, 1),
                                                .seq = col(r, (int)i, 2) };
    }
    PQclear(r);
    PQfinish(c);
    return rc;
}
