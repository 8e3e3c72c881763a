/*
 * The store reader's calls for the web view (store_reader.h: metric_list,
 * series, device_counts) against a real store, each answer checked row by
 * row: buckets of every value type (NaN, +inf and -inf among them) and
 * time quality across a midnight (two of PostgreSQL's daily partitions),
 * metrics in byte order with the first and last time of their samples,
 * and samples per device counted by time and then by id. ctest runs it on
 * SQLite and again on PostgreSQL (cloud_test_store_view_pg): both
 * backends must give the same answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cloud_test.h"

#define SEC 1000LL
/* 2026-03-15T00:00:00Z: the series below crosses it. */
#define MIDNIGHT 1773532800000LL
#define DAY (86400 * SEC)

/* One sample to write: its time, value and time quality. */
struct put {
    int64_t ts;
    struct et_store_value v;
    enum et_time_quality tq;
};

#define F64(x) { .type = ET_TYPE_F64, .u.f64 = (x) }
#define I64(x) { .type = ET_TYPE_I64, .u.i64 = (x) }

/* Write n samples of (device, metric) in one transaction. */
static void put(struct cloud_fixture *f, const char *device, const char *metric,
                const char *unit, const struct put *p, size_t n)
{
    int64_t metric_id;

    assert_int_equal(et_store_begin(f->w), 0);
    assert_int_equal(et_store_metric_id(f->w, device, metric, unit, &metric_id), 0);
    for (size_t i = 0; i < n; i++) {
        struct et_store_sample smp = {
            .metric_id = metric_id, .ts_ms = p[i].ts, .mono_ms = (int64_t)i * SEC,
            .value = p[i].v, .time_quality = p[i].tq, .seq = 1,
        };

        assert_int_equal(et_store_insert_sample(f->w, &smp, NULL), 0);
    }
    assert_int_equal(et_store_commit(f->w), 0);
}

/* ---- series ------------------------------------------------------------- */

#define BUCKETS_MAX 8

struct buckets {
    struct et_store_bucket b[BUCKETS_MAX];
    size_t n;
};

static int bucket_cb(void *ctx, const struct et_store_bucket *b)
{
    struct buckets *bs = ctx;

    assert_true(bs->n < BUCKETS_MAX);
    bs->b[bs->n++] = *b;
    return 0;
}

static void assert_bucket(const struct et_store_bucket *b, int64_t index, uint64_t samples,
                          uint64_t values, int64_t first, int64_t last)
{
    assert_int_equal(b->index, index);
    assert_int_equal(b->samples, samples);
    assert_int_equal(b->values, values);
    assert_int_equal(b->first_ts_ms, first);
    assert_int_equal(b->last_ts_ms, last);
}

static void series_buckets_every_type_and_quality(void **state)
{
    struct cloud_fixture *f = *state;
    const struct put temp[] = {
        { MIDNIGHT - 31 * SEC, F64(99), ET_TQ_SYNCED },           /* before the range */
        { MIDNIGHT - 30 * SEC, F64(1.5), ET_TQ_SYNCED },          /* bucket 0 */
        { MIDNIGHT - 20 * SEC, I64(4), ET_TQ_UNSYNCED },
        { MIDNIGHT - 10 * SEC, F64(NAN), ET_TQ_CORRECTED },       /* bucket 1 */
        { MIDNIGHT - 5 * SEC, { .type = ET_TYPE_BOOL, .u.b = true }, ET_TQ_CORRECTED },
        { MIDNIGHT, F64(INFINITY), ET_TQ_UNCORRECTABLE },
        { MIDNIGHT + 5 * SEC, F64(-INFINITY), ET_TQ_SYNCED },
        { MIDNIGHT + 10 * SEC, { .type = ET_TYPE_STR, .u.str = "x" }, ET_TQ_SYNCED },
        { MIDNIGHT + 30 * SEC, F64(99), ET_TQ_SYNCED },           /* at the end: out */
    };
    const struct put other[] = { { MIDNIGHT, F64(-1000), ET_TQ_SYNCED } };
    struct et_store_series_query q = {
        .device = "d1", .metric = "temp", .since_ms = MIDNIGHT - 30 * SEC,
        .until_ms = MIDNIGHT + 30 * SEC, .bucket_ms = 20 * SEC,
    };
    struct buckets bs = { .n = 0 };

    put(f, "d1", "temp", "C", temp, sizeof(temp) / sizeof(temp[0]));
    put(f, "d2", "temp", "C", other, 1);   /* another device's metric of that name */
    assert_int_equal(et_store_series(f->r, &q, bucket_cb, &bs), 0);
    assert_int_equal(bs.n, 3);

    /* 1.5 and 4: a mean; one unsynced. */
    assert_bucket(&bs.b[0], 0, 2, 2, MIDNIGHT - 30 * SEC, MIDNIGHT - 20 * SEC);
    assert_true(bs.b[0].avg_known);
    assert_true(bs.b[0].min == 1.5 && bs.b[0].avg == 2.75 && bs.b[0].max == 4);
    assert_int_equal(bs.b[0].unsynced, 1);
    assert_int_equal(bs.b[0].corrected + bs.b[0].uncorrectable, 0);

    /* NaN is a sample but no number; true is 1; +inf with -inf has no mean. */
    assert_bucket(&bs.b[1], 1, 4, 3, MIDNIGHT - 10 * SEC, MIDNIGHT + 5 * SEC);
    assert_true(isinf(bs.b[1].min) && bs.b[1].min < 0);
    assert_true(isinf(bs.b[1].max) && bs.b[1].max > 0);
    assert_false(bs.b[1].avg_known);
    assert_int_equal(bs.b[1].unsynced, 0);
    assert_int_equal(bs.b[1].corrected, 2);
    assert_int_equal(bs.b[1].uncorrectable, 1);

    /* A string alone: counted, with no numbers (0, and no mean). */
    assert_bucket(&bs.b[2], 2, 1, 0, MIDNIGHT + 10 * SEC, MIDNIGHT + 10 * SEC);
    assert_false(bs.b[2].avg_known);
    assert_true(bs.b[2].min == 0 && bs.b[2].avg == 0 && bs.b[2].max == 0);

    /* One bucket over both days, the edges exclusive where they should be. */
    q.since_ms = MIDNIGHT - 31 * SEC;
    q.until_ms = MIDNIGHT + 31 * SEC;
    q.bucket_ms = 62 * SEC;
    bs.n = 0;
    assert_int_equal(et_store_series(f->r, &q, bucket_cb, &bs), 0);
    assert_int_equal(bs.n, 1);
    assert_bucket(&bs.b[0], 0, 9, 7, MIDNIGHT - 31 * SEC, MIDNIGHT + 30 * SEC);
    assert_true(bs.b[0].min < 0 && isinf(bs.b[0].min));

    /* A whole day before holds nothing of it; an unknown metric or device gives nothing. */
    q.since_ms = MIDNIGHT - DAY - 60 * SEC;
    q.until_ms = MIDNIGHT - 60 * SEC;
    bs.n = 0;
    assert_int_equal(et_store_series(f->r, &q, bucket_cb, &bs), 0);
    assert_int_equal(bs.n, 0);
    q.since_ms = MIDNIGHT - 30 * SEC;
    q.until_ms = MIDNIGHT + 30 * SEC;
    q.bucket_ms = 20 * SEC;
    q.metric = "nothing";
    assert_int_equal(et_store_series(f->r, &q, bucket_cb, &bs), 0);
    q.metric = "temp";
    q.device = "nobody";
    assert_int_equal(et_store_series(f->r, &q, bucket_cb, &bs), 0);
    assert_int_equal(bs.n, 0);

    /* The other device's sample is its own. */
    q.device = "d2";
    assert_int_equal(et_store_series(f->r, &q, bucket_cb, &bs), 0);
    assert_int_equal(bs.n, 1);
    assert_bucket(&bs.b[0], 1, 1, 1, MIDNIGHT, MIDNIGHT);
    assert_true(bs.b[0].min == -1000 && bs.b[0].avg == -1000 && bs.b[0].max == -1000);

    /* Ranges the contract forbids. */
    q.bucket_ms = 0;
    assert_int_equal(et_store_series(f->r, &q, bucket_cb, &bs), -EINVAL);
    q.bucket_ms = SEC;
    q.until_ms = q.since_ms;
    assert_int_equal(et_store_series(f->r, &q, bucket_cb, &bs), -EINVAL);
}

static int stop_cb(void *ctx, const struct et_store_bucket *b)
{
    (void)b;
    (*(int *)ctx)++;
    return 7;
}

static void series_callback_stops_it(void **state)
{
    struct cloud_fixture *f = *state;
    const struct put p[] = {
        { MIDNIGHT, I64(1), ET_TQ_SYNCED },
        { MIDNIGHT + 10 * SEC, I64(2), ET_TQ_SYNCED },
    };
    struct et_store_series_query q = {
        .device = "d1", .metric = "n", .since_ms = MIDNIGHT, .until_ms = MIDNIGHT + 20 * SEC,
        .bucket_ms = SEC,
    };
    int calls = 0;

    put(f, "d1", "n", "", p, 2);
    assert_int_equal(et_store_series(f->r, &q, stop_cb, &calls), 7);
    assert_int_equal(calls, 1);
}

/* ---- metric list --------------------------------------------------------- */

struct metric_row {
    char device[32], name[32], unit[16], tags[32];
    uint64_t samples;
    int64_t first, last;
};

struct metric_rows {
    struct metric_row m[8];
    size_t n;
};

static int metric_cb(void *ctx, const struct et_store_metric *m)
{
    struct metric_rows *mr = ctx;
    struct metric_row *row;

    assert_true(mr->n < 8);
    row = &mr->m[mr->n++];
    snprintf(row->device, sizeof(row->device), "%s", m->device);
    snprintf(row->name, sizeof(row->name), "%s", m->name);
    snprintf(row->unit, sizeof(row->unit), "%s", m->unit);
    snprintf(row->tags, sizeof(row->tags), "%s", m->tags);
    row->samples = m->samples;
    row->first = m->first_ts_ms;
    row->last = m->last_ts_ms;
    return 0;
}

static void assert_metric(const struct metric_row *m, const char *name, const char *unit,
                          const char *tags, int64_t first, int64_t last)
{
    assert_string_equal(m->device, "d1");
    assert_string_equal(m->name, name);
    assert_string_equal(m->unit, unit);
    assert_string_equal(m->tags, tags);
    assert_int_equal(m->samples, 0);   /* metric_list does not count them */
    assert_int_equal(m->first, first);
    assert_int_equal(m->last, last);
}

static void metric_list_names_in_byte_order_with_their_times(void **state)
{
    struct cloud_fixture *f = *state;
    const struct put temp[] = {
        { MIDNIGHT - 2 * DAY, F64(1), ET_TQ_SYNCED },
        { MIDNIGHT + 5 * SEC, F64(2), ET_TQ_SYNCED },
        { MIDNIGHT - 10 * SEC, F64(3), ET_TQ_SYNCED },
    };
    const struct put alpha[] = { { MIDNIGHT + DAY + 5 * SEC, I64(1), ET_TQ_UNSYNCED } };
    struct metric_rows mr = { .n = 0 };
    int64_t id;

    put(f, "d1", "temp", "C", temp, 3);
    put(f, "d1", "alpha", "", alpha, 1);
    put(f, "d2", "temp", "K", temp, 1);
    assert_int_equal(et_store_begin(f->w), 0);
    assert_int_equal(et_store_metric_id(f->w, "d1", "Zeta", "%", &id), 0);   /* no samples */
    assert_int_equal(et_store_metric_tags(f->w, id, "room=1"), 0);
    assert_int_equal(et_store_commit(f->w), 0);

    assert_int_equal(et_store_metric_list(f->r, "d1", metric_cb, &mr), 0);
    assert_int_equal(mr.n, 3);
    assert_metric(&mr.m[0], "Zeta", "%", "room=1", 0, 0);
    assert_metric(&mr.m[1], "alpha", "", "", MIDNIGHT + DAY + 5 * SEC, MIDNIGHT + DAY + 5 * SEC);
    assert_metric(&mr.m[2], "temp", "C", "", MIDNIGHT - 2 * DAY, MIDNIGHT + 5 * SEC);

    mr.n = 0;
    assert_int_equal(et_store_metric_list(f->r, "nobody", metric_cb, &mr), 0);
    assert_int_equal(mr.n, 0);
}

/* ---- counts per device ---------------------------------------------------- */

struct counts {
    uint64_t d1, d2, other;
    int calls;
};

static int count_cb(void *ctx, const struct et_store_count *c)
{
    struct counts *cs = ctx;

    cs->calls++;
    if (strcmp(c->device, "d1") == 0)
        cs->d1 += c->samples;
    else if (strcmp(c->device, "d2") == 0)
        cs->d2 += c->samples;
    else
        cs->other += c->samples;
    return 0;
}

static void device_counts_by_time_then_by_id(void **state)
{
    struct cloud_fixture *f = *state;
    const struct put d1[] = {
        { MIDNIGHT - 1, I64(0), ET_TQ_SYNCED },                  /* yesterday */
        { MIDNIGHT, I64(1), ET_TQ_SYNCED },
        { MIDNIGHT + 3600 * SEC, I64(2), ET_TQ_UNSYNCED },
        { MIDNIGHT + DAY + SEC, I64(3), ET_TQ_SYNCED },           /* tomorrow counts too */
    };
    const struct put d1_more[] = { { MIDNIGHT - DAY, I64(4), ET_TQ_SYNCED } };
    const struct put d2[] = {
        { MIDNIGHT + 10 * SEC, F64(1), ET_TQ_SYNCED },
        { MIDNIGHT + 20 * SEC, F64(2), ET_TQ_SYNCED },
    };
    struct counts c = { .d1 = 0 };
    int64_t first_last, last;

    put(f, "d1", "n", "", d1, 4);
    put(f, "d1", "m", "", d1, 2);      /* a second metric of d1: yesterday's and midnight's */
    put(f, "d2", "x", "", d2, 2);
    first_last = cloud_last_id_settled(f);

    /* By time: every sample since midnight with an id up to the last. */
    assert_int_equal(et_store_device_counts(f->r, MIDNIGHT, 0, first_last, count_cb, &c), 0);
    assert_int_equal(c.d1, 3 + 1);
    assert_int_equal(c.d2, 2);
    assert_int_equal(c.other, 0);
    assert_int_equal(c.calls, 2);

    /* New rows: d2's two of today count by id, d1's of yesterday do not. */
    put(f, "d1", "n", "", d1_more, 1);
    put(f, "d2", "x", "", d2, 2);
    last = cloud_last_id_settled(f);
    assert_true(last > first_last);
    c = (struct counts){ .d1 = 0 };
    assert_int_equal(et_store_device_counts(f->r, MIDNIGHT, first_last, last, count_cb, &c), 0);
    assert_int_equal(c.d1, 0);
    assert_int_equal(c.d2, 2);
    assert_int_equal(c.calls, 1);

    /* The id bound holds by time too: what came after first_last is left out. */
    c = (struct counts){ .d1 = 0 };
    assert_int_equal(et_store_device_counts(f->r, MIDNIGHT, 0, first_last, count_cb, &c), 0);
    assert_true(c.d1 == 4 && c.d2 == 2);
    c = (struct counts){ .d1 = 0 };
    assert_int_equal(et_store_device_counts(f->r, MIDNIGHT, 0, last, count_cb, &c), 0);
    assert_true(c.d1 == 4 && c.d2 == 4);

    /* Nothing since tomorrow's end; nothing after the last id. */
    c = (struct counts){ .d1 = 0 };
    assert_int_equal(et_store_device_counts(f->r, MIDNIGHT + 2 * DAY, 0, last, count_cb, &c), 0);
    assert_int_equal(c.calls, 0);
    assert_int_equal(et_store_device_counts(f->r, MIDNIGHT, last, last, count_cb, &c), 0);
    assert_int_equal(c.calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(series_buckets_every_type_and_quality,
                                        cloud_fixture_setup, cloud_fixture_teardown),
        cmocka_unit_test_setup_teardown(series_callback_stops_it, cloud_fixture_setup,
                                        cloud_fixture_teardown),
        cmocka_unit_test_setup_teardown(metric_list_names_in_byte_order_with_their_times,
                                        cloud_fixture_setup, cloud_fixture_teardown),
        cmocka_unit_test_setup_teardown(device_counts_by_time_then_by_id, cloud_fixture_setup,
                                        cloud_fixture_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
