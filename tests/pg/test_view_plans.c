/*
 * The web view's statements on the PostgreSQL store read only the
 * partitions their range names (store_pg_view.c): a day of one metric
 * reads that day's partition, through its (metric_id, ts) index, with the
 * plan PostgreSQL makes for given values and with the generic plan a
 * prepared statement switches to; the samples of today are counted from
 * today's partitions on, never yesterday's. The statements are the
 * backend's own (store_pg_view_sql), run as it runs them, under EXPLAIN
 * ANALYZE; their answers are checked in tests/cloud/test_store_view.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cloud_test.h"
#include "edgetel/store_open.h"
#include "pg_test.h"
#include "store_pg.h"

#define SEC INT64_C(1000)
#define DAY (86400 * SEC)
/* 2026-03-15T00:00:00Z, the day the queries ask for, and 10:00 that day. */
#define MIDNIGHT INT64_C(1773532800000)
#define T0 (MIDNIGHT + 10 * 3600 * SEC)
#define METRICS 40

/* The day's samples: METRICS metrics of dev1 every 5 minutes, and one
 * sample of each neighbouring day, so that all three have rows. */
static void fill(struct cloud_fixture *f)
{
    int64_t id;
    char name[16];

    assert_int_equal(et_store_begin(f->w), 0);
    for (int m = 0; m < METRICS; m++) {
        snprintf(name, sizeof(name), "m%d", m);
        assert_int_equal(et_store_metric_id(f->w, "dev1", name, "C", &id), 0);
        for (int64_t t = MIDNIGHT - 300 * SEC; t <= MIDNIGHT + DAY; t += 300 * SEC) {
            struct et_store_sample smp = {
                .metric_id = id, .ts_ms = t, .value = { .type = ET_TYPE_F64, .u.f64 = 1 },
                .time_quality = ET_TQ_SYNCED, .seq = 1,
            };

            assert_int_equal(et_store_insert_sample(f->w, &smp, NULL), 0);
        }
    }
    assert_int_equal(et_store_commit(f->w), 0);
    /* Days older than the partitions made at open wait in samples_default
     * until upkeep gives them theirs. */
    assert_int_equal(et_store_maintain(f->store, T0, 0, NULL, 0), 0);
    /* This schema's tables only: a bare ANALYZE takes every table of the
     * server's database, and deadlocks with another test making its
     * partitions at the same moment. */
    cloud_pg_exec(f, "ANALYZE samples, metrics, devices, batches");
}

/*
 * The plan of sql run as the backend runs it (prepared, with args bound
 * as $1..) under plan_cache_mode mode, as one text into out.
 */
static void plan(struct cloud_fixture *f, const char *mode, const char *sql, const char *args,
                 char *out, size_t len)
{
    PGconn *c = PQconnectdb(f->path);
    char stmt[4096];
    PGresult *r;

    assert_int_equal(PQstatus(c), CONNECTION_OK);
    snprintf(stmt, sizeof(stmt), "SET plan_cache_mode = %s", mode);
    PQclear(PQexec(c, stmt));
    snprintf(stmt, sizeof(stmt), "PREPARE s AS %s", sql);
    r = PQexec(c, stmt);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("view plans: %s: %s", stmt, PQresultErrorMessage(r));
    PQclear(r);
    snprintf(stmt, sizeof(stmt),
             "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE s(%s)", args);
    r = PQexec(c, stmt);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("view plans: %s: %s", stmt, PQresultErrorMessage(r));
    out[0] = '\0';
    for (int i = 0; i < PQntuples(r); i++) {
        strncat(out, PQgetvalue(r, i, 0), len - strlen(out) - 2);
        strcat(out, "\n");
    }
    PQclear(r);
    PQfinish(c);
}

static void a_days_series_reads_its_partition_by_index(void **state)
{
    static const char *const modes[] = { "force_custom_plan", "force_generic_plan" };
    struct cloud_fixture *f = *state;
    char text[16384];

    fill(f);
    for (size_t i = 0; i < 2; i++) {
        plan(f, modes[i], store_pg_view_sql[PG_VIEW_SERIES],
             "'dev1', 'm7', 1773532800000, 86400, '2026-03-15 00:00:00+00',"
             " '2026-03-16 00:00:00+00'", text, sizeof(text));
        if (!strstr(text, "samples_p20260315") || strstr(text, "samples_p20260314") ||
            strstr(text, "samples_p20260316") || strstr(text, "samples_default") ||
            !strstr(text, "Index") || strstr(text, "Seq Scan on samples"))
            fail_msg("view plans (%s): a day's series does not read exactly its partition "
                     "by index:\n%s", modes[i], text);
        /* The day's 288 samples of m7, in 1000 buckets of 86.4 s: 288 rows. */
        if (!strstr(text, "(actual rows=288 loops=1)"))
            fail_msg("view plans (%s): not the day's 288 buckets:\n%s", modes[i], text);
    }
}

static void todays_counts_leave_yesterday_unread(void **state)
{
    static const char *const modes[] = { "force_custom_plan", "force_generic_plan" };
    struct cloud_fixture *f = *state;
    char text[16384], by_id[128];
    int64_t top;

    fill(f);
    /* A count by id goes on from the last: the five newest rows are new. */
    top = et_pg_test_int(f->path, "SELECT max(id) FROM samples");
    snprintf(by_id, sizeof(by_id), "'2026-03-15 00:00:00+00', %lld, %lld", (long long)top - 5,
             (long long)top);
    for (size_t i = 0; i < 2; i++) {
        plan(f, modes[i], store_pg_view_sql[PG_VIEW_COUNTS_BY_TIME],
             "'2026-03-15 00:00:00+00', 9223372036854775807", text, sizeof(text));
        if (!strstr(text, "samples_p20260315") || strstr(text, "samples_p20260314"))
            fail_msg("view plans (%s): today's count by time reads another day:\n%s",
                     modes[i], text);
        plan(f, modes[i], store_pg_view_sql[PG_VIEW_COUNTS_BY_ID], by_id, text, sizeof(text));
        if (strstr(text, "samples_p20260314") || !strstr(text, "_id_idx"))
            fail_msg("view plans (%s): today's count by id reads another day or not by "
                     "id:\n%s", modes[i], text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_days_series_reads_its_partition_by_index,
                                        cloud_fixture_setup, cloud_fixture_teardown),
        cmocka_unit_test_setup_teardown(todays_counts_leave_yesterday_unread,
                                        cloud_fixture_setup, cloud_fixture_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
