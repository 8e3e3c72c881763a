/*
 * The example dashboard (packaging/grafana/edgetel-fleet.json) against a
 * real PostgreSQL store: every query of it, its variables' too, expanded
 * the way Grafana's PostgreSQL data source expands them ($__timeFilter,
 * $__timeGroupAlias, $__timeTo, $__interval, template variables), runs on
 * the stable views and returns the rows the stored samples mean.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cloud_test.h"
#include "edgetel/store_open.h"
#include "pg_test.h"

#define DASHBOARD ET_SOURCE_DIR "/packaging/grafana/edgetel-fleet.json"
/* 2026-03-15T10:00:00Z; the samples are a second apart from there. */
#define T0 INT64_C(1773568800000)
#define FROM "'2026-03-15T10:00:00Z'"
#define TO "'2026-03-15T10:02:00Z'"

static char *read_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *text;
    long n;

    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    rewind(fp);
    text = calloc(1, (size_t)n + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    return text;
}

/* The JSON string values of key, in order, unescaped (at most max). */
static size_t json_strings(const char *json, const char *key, char out[][1024], size_t max)
{
    char needle[64];
    size_t n = 0;

    snprintf(needle, sizeof(needle), "\"%s\": \"", key);
    for (const char *p = strstr(json, needle); p && n < max; p = strstr(p, needle)) {
        size_t k = 0;

        for (p += strlen(needle); *p && *p != '"' && k + 1 < 1024; p++) {
            if (*p == '\\') {
                p++;
                out[n][k++] = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
            } else {
                out[n][k++] = *p;
            }
        }
        out[n++][k] = '\0';
    }
    return n;
}

/* Replace every from in s (a buffer of len bytes) with to. */
static void replace(char *s, size_t len, const char *from, const char *to)
{
    char *p;

    while ((p = strstr(s, from)) != NULL) {
        size_t tail = strlen(p + strlen(from));

        assert_true(strlen(s) - strlen(from) + strlen(to) < len);
        memmove(p + strlen(to), p + strlen(from), tail + 1);
        memcpy(p, to, strlen(to));
    }
}

/*
 * Grafana's expansion (its PostgreSQL data source's macros): the
 * dashboard's range is 10:00:00 to 10:02:00 on 2026-03-15, $__interval
 * 1m, $device dev1, $metric temp.
 */
static void expand(char *sql, size_t len)
{
    replace(sql, len, "$__interval", "1m");
    replace(sql, len, "$__timeGroupAlias(time, 1m)", "floor(extract(epoch from time)/60)*60 AS \"time\"");
    replace(sql, len, "$__timeFilter(time)", "time BETWEEN " FROM " AND " TO);
    replace(sql, len, "$__timeTo()", TO);
    replace(sql, len, "$device", "dev1");
    replace(sql, len, "$metric", "temp");
    assert_null(strstr(sql, "$"));
}

static PGresult *run(struct cloud_fixture *f, const char *sql)
{
    PGconn *c = PQconnectdb(f->path);
    PGresult *r;

    assert_int_equal(PQstatus(c), CONNECTION_OK);
    r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("grafana: %s: %s", sql, PQresultErrorMessage(r));
    PQfinish(c);
    return r;
}

static void dashboard_queries_return_the_stored_samples(void **state)
{
    struct cloud_fixture *f = *state;
    char queries[16][1024];
    char *json = read_file(DASHBOARD);
    size_t n;
    PGresult *r;

    /* dev1: temp = i at T0 + i s for 3 minutes; dev2: 10 samples of temp. */
    cloud_put_batch(f->w, "dev1", 1, "temp", "C", T0, 180);
    cloud_put_batch(f->w, "dev2", 1, "temp", "C", T0, 10);
    cloud_put_batch(f->w, "dev2", 2, "rh", "%", T0, 10);

    /* The variables: devices, then dev1's metrics. */
    n = json_strings(json, "query", queries, 16);
    assert_int_equal(n, 2);
    expand(queries[0], sizeof(queries[0]));
    r = run(f, queries[0]);
    assert_int_equal(PQntuples(r), 2);
    assert_string_equal(PQgetvalue(r, 0, 0), "dev1");
    assert_string_equal(PQgetvalue(r, 1, 0), "dev2");
    PQclear(r);
    expand(queries[1], sizeof(queries[1]));
    r = run(f, queries[1]);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 0), "temp");
    PQclear(r);

    n = json_strings(json, "rawSql", queries, 16);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++)
        expand(queries[i], sizeof(queries[i]));

    /* Per minute: 0..59 and 60..119, and 120 alone (BETWEEN takes both ends). */
    r = run(f, queries[0]);
    assert_int_equal(PQntuples(r), 3);
    assert_int_equal(strtoll(PQgetvalue(r, 0, 0), NULL, 10), T0 / 1000);
    assert_true(fabs(strtod(PQgetvalue(r, 0, 1), NULL) - 29.5) < 1e-9);
    assert_int_equal(strtoll(PQgetvalue(r, 1, 0), NULL, 10), T0 / 1000 + 60);
    assert_true(fabs(strtod(PQgetvalue(r, 1, 1), NULL) - 89.5) < 1e-9);
    assert_true(fabs(strtod(PQgetvalue(r, 2, 1), NULL) - 120) < 1e-9);
    assert_string_equal(PQfname(r, 0), "time");
    assert_string_equal(PQfname(r, 1), "temp");
    PQclear(r);

    /* Every sample in the range, as timestamptz, with its quality. */
    r = run(f, queries[1]);
    assert_int_equal(PQntuples(r), 121);
    assert_int_equal(PQftype(r, 0), 1184);   /* timestamptz */
    assert_string_equal(PQgetvalue(r, 0, 0), "2026-03-15 10:00:00+00");
    assert_string_equal(PQgetvalue(r, 120, 1), "120");
    assert_string_equal(PQgetvalue(r, 0, 2), "synced");
    PQclear(r);

    /* Per device in the range: dev1's 121, dev2's 20 of two metrics. */
    r = run(f, queries[2]);
    assert_int_equal(PQntuples(r), 2);
    assert_string_equal(PQgetvalue(r, 0, 1), "121");
    assert_string_equal(PQgetvalue(r, 1, 1), "20");
    PQclear(r);

    /* The latest value up to the range's end. */
    r = run(f, queries[3]);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 1), "120");
    PQclear(r);
    free(json);
}

/* One metric of one device over a day reads one partition through the index. */
static void a_days_query_reads_one_partition_by_index(void **state)
{
    struct cloud_fixture *f = *state;
    char plan[8192] = "";
    PGresult *r;

    cloud_put_batch(f->w, "dev1", 1, "temp", "C", T0, 10);
    /* A day older than the partitions made ahead: its rows wait in
     * samples_default until upkeep gives the day its partition. */
    assert_int_equal(et_store_maintain(f->store, T0, 0, NULL, 0), 0);
    /* This schema's tables only: a bare ANALYZE takes every table of the
     * server's database, and deadlocks with another test making its
     * partitions at the same moment. */
    cloud_pg_exec(f, "ANALYZE samples, metrics, devices, batches");
    r = run(f, "EXPLAIN SELECT time, value FROM telemetry WHERE device = 'dev1'"
               " AND metric = 'temp' AND time BETWEEN '2026-03-15T00:00:00Z'"
               " AND '2026-03-15T23:59:59Z' ORDER BY time");
    for (int i = 0; i < PQntuples(r); i++) {
        strncat(plan, PQgetvalue(r, i, 0), sizeof(plan) - strlen(plan) - 2);
        strcat(plan, "\n");
    }
    PQclear(r);
    if (!strstr(plan, "samples_p20260315") || strstr(plan, "samples_p20260316") ||
        strstr(plan, "samples_default"))
        fail_msg("grafana: the plan does not read exactly the day's partition:\n%s", plan);
}

static int setup(void **state)
{
    return cloud_fixture_setup(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(dashboard_queries_return_the_stored_samples, setup,
                                        cloud_fixture_teardown),
        cmocka_unit_test_setup_teardown(a_days_query_reads_one_partition_by_index, setup,
                                        cloud_fixture_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
