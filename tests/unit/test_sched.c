/*
 * Scheduler on a simulated clock: no drift over many hours, skip (not
 * burst) after a stall, a clock that does not move, the order of many jobs,
 * interval changes and removal, also from inside a callback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/sched.h"

#define HOUR_MS (3600LL * 1000)

struct rec {
    int tag;
    int64_t runs;
    int64_t last_now;
};

/* Every run of every job, in order, across the jobs of one test. */
struct log {
    int tags[4096];
    int64_t times[4096];
    size_t n;
};

struct job_ctx {
    struct rec rec;
    struct log *log;
};

static void note(void *ctx, int64_t now_ms)
{
    struct job_ctx *j = ctx;

    j->rec.runs++;
    j->rec.last_now = now_ms;
    if (j->log && j->log->n < sizeof(j->log->tags) / sizeof(j->log->tags[0])) {
        j->log->tags[j->log->n] = j->rec.tag;
        j->log->times[j->log->n] = now_ms;
        j->log->n++;
    }
}

/* A small deterministic generator, so a failure replays exactly. */
static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void rejects_bad_arguments(void **state)
{
    struct et_sched *s;
    struct job_ctx j = { 0 };

    assert_int_equal(et_sched_create(&s), 0);
    assert_int_equal(et_sched_add(s, 0, 0, 0, note, &j), -EINVAL);
    assert_int_equal(et_sched_add(s, -5, 0, 0, note, &j), -EINVAL);
    assert_int_equal(et_sched_add(s, 10, -1, 0, note, &j), -EINVAL);
    assert_int_equal(et_sched_add(s, 10, 0, 0, NULL, &j), -EINVAL);
    assert_int_equal(et_sched_set_interval(s, 7, 10, 0), -ENOENT);
    assert_int_equal(et_sched_remove(s, 7), -ENOENT);
    assert_true(et_sched_next_due(s) == INT64_MAX);
    assert_int_equal(et_sched_run_due(s, 1000), 0);
    et_sched_destroy(s);
    et_sched_destroy(NULL);
}

/*
 * The loop wakes late by a random amount below one interval, as a real
 * loop does under load. The job must still run exactly once per interval
 * and its due times must stay on the original grid: after 48 simulated
 * hours at 1 s, any per-run drift of even 1 ms would show as 172800 ms.
 */
static void no_drift_over_hours(void **state)
{
    struct et_sched *s;
    struct job_ctx j = { 0 };
    const int64_t start = 123456789, interval = 1000;
    uint32_t seed = 42;
    int64_t now = start, runs_expected = 0;

    assert_int_equal(et_sched_create(&s), 0);
    assert_true(et_sched_add(s, interval, 0, now, note, &j) >= 0);
    while (now < start + 48 * HOUR_MS) {
        int64_t due = et_sched_next_due(s);

        /* Due times never leave the grid start + k * interval. */
        assert_int_equal((due - start) % interval, 0);
        now = due + (int64_t)(lcg(&seed) % (uint32_t)interval);
        assert_int_equal(et_sched_run_due(s, now), 1);
        runs_expected++;
    }
    assert_int_equal(j.rec.runs, runs_expected);
    /* One run per interval from start to the last wake-up. */
    assert_int_equal(runs_expected, (now - start) / interval + 1);
    assert_int_equal(et_sched_next_due(s), start + runs_expected * interval);
    et_sched_destroy(s);
}

/* A loop that only wakes when told (next_due) for many hours at 10 s. */
static void exact_wakeups_count(void **state)
{
    struct et_sched *s;
    struct job_ctx j = { 0 };
    int64_t now = 0;

    assert_int_equal(et_sched_create(&s), 0);
    assert_true(et_sched_add(s, 10000, 10000, now, note, &j) >= 0);
    for (int i = 0; i < 24 * 360 * 7; i++) {
        now = et_sched_next_due(s);
        et_sched_run_due(s, now);
    }
    assert_int_equal(j.rec.runs, 24 * 360 * 7);
    assert_int_equal(j.rec.last_now, 7 * 24 * HOUR_MS);
    et_sched_destroy(s);
}

static void stall_runs_once(void **state)
{
    struct et_sched *s;
    struct job_ctx j = { 0 };

    assert_int_equal(et_sched_create(&s), 0);
    assert_true(et_sched_add(s, 1000, 0, 0, note, &j) >= 0);
    assert_int_equal(et_sched_run_due(s, 0), 1);
    /* The loop was stuck for ten intervals and a bit. */
    assert_int_equal(et_sched_run_due(s, 10500), 1);
    assert_int_equal(j.rec.runs, 2);
    /* The missed runs are gone, not queued: nothing more is due now... */
    assert_int_equal(et_sched_run_due(s, 10500), 0);
    assert_int_equal(et_sched_run_due(s, 10999), 0);
    /* ...and the next one is on the old grid, not 1 s after the stall. */
    assert_int_equal(et_sched_next_due(s), 11000);
    assert_int_equal(et_sched_run_due(s, 11000), 1);
    /* A stall of exactly ten intervals lands on a grid point: still once. */
    assert_int_equal(et_sched_run_due(s, 21000), 1);
    assert_int_equal(et_sched_next_due(s), 22000);
    assert_int_equal(j.rec.runs, 4);
    et_sched_destroy(s);
}

static void stall_many_jobs_each_once(void **state)
{
    struct et_sched *s;
    struct job_ctx j[5] = { 0 };
    const int64_t iv[5] = { 100, 250, 1000, 3000, 7000 };

    assert_int_equal(et_sched_create(&s), 0);
    for (int i = 0; i < 5; i++)
        assert_true(et_sched_add(s, iv[i], iv[i], 0, note, &j[i]) >= 0);
    /* Ten times the longest interval passes without the loop running. */
    assert_int_equal(et_sched_run_due(s, 70000), 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(j[i].rec.runs, 1);
        assert_true(et_sched_next_due(s) > 70000);
    }
    assert_int_equal(et_sched_run_due(s, 70000), 0);
    et_sched_destroy(s);
}

/* The clock does not move (a stuck or coarse clock): nothing runs twice. */
static void frozen_clock(void **state)
{
    struct et_sched *s;
    struct job_ctx j = { 0 };

    assert_int_equal(et_sched_create(&s), 0);
    assert_true(et_sched_add(s, 500, 0, 5000, note, &j) >= 0);
    assert_int_equal(et_sched_run_due(s, 5000), 1);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(et_sched_run_due(s, 5000), 0);
    assert_int_equal(j.rec.runs, 1);
    assert_int_equal(et_sched_next_due(s), 5500);
    /* A clock that steps back is treated like one that stands still. */
    assert_int_equal(et_sched_run_due(s, 4000), 0);
    assert_int_equal(et_sched_run_due(s, 5500), 1);
    et_sched_destroy(s);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/*
 * Many jobs with different intervals and phases, driven by next_due():
 * every run happens exactly at its due time, runs come out in time order
 * (ties in the order the jobs were added), and each job's count is exact.
 */
static void many_jobs_in_order(void **state)
{
    enum { N = 12 };
    static struct log log;
    struct et_sched *s;
    struct job_ctx j[N];
    const int64_t end = 60000;

    memset(&log, 0, sizeof(log));
    assert_int_equal(et_sched_create(&s), 0);
    for (int i = 0; i < N; i++) {
        j[i] = (struct job_ctx){ .rec.tag = i, .log = &log };
        /* Intervals 300, 700, 1100 ... ms, phases 0..N-1 * 50 ms. */
        assert_int_equal(et_sched_add(s, 300 + 400 * i, 50 * (i % 4), 0, note, &j[i]), i);
    }
    while (et_sched_next_due(s) <= end)
        assert_true(et_sched_run_due(s, et_sched_next_due(s)) >= 1);
    for (int i = 0; i < N; i++) {
        int64_t iv = 300 + 400 * i, first = 50 * (i % 4);

        assert_int_equal(j[i].rec.runs, (end - first) / iv + 1);
    }
    for (size_t k = 1; k < log.n; k++) {
        assert_true(log.times[k - 1] <= log.times[k]);
        if (log.times[k - 1] == log.times[k])
            assert_true(log.tags[k - 1] < log.tags[k]);
    }
    /* Each run happened at a time on its own job's grid. */
    for (size_t k = 0; k < log.n; k++) {
        int t = log.tags[k];

        assert_int_equal((log.times[k] - 50 * (t % 4)) % (300 + 400 * t), 0);
    }
    /* Sorting the times changes nothing: already in order. */
    {
        static int64_t sorted[4096];

        memcpy(sorted, log.times, log.n * sizeof(sorted[0]));
        qsort(sorted, log.n, sizeof(sorted[0]), cmp_i64);
        assert_memory_equal(sorted, log.times, log.n * sizeof(sorted[0]));
    }
    et_sched_destroy(s);
}

/* Several jobs due in one late call run by due time, not by id. */
static void late_call_runs_by_due_time(void **state)
{
    static struct log log;
    struct et_sched *s;
    struct job_ctx a = { .rec.tag = 0, .log = &log }, b = { .rec.tag = 1, .log = &log };

    memset(&log, 0, sizeof(log));
    assert_int_equal(et_sched_create(&s), 0);
    assert_int_equal(et_sched_add(s, 1000, 900, 0, note, &a), 0);
    assert_int_equal(et_sched_add(s, 1000, 100, 0, note, &b), 1);
    assert_int_equal(et_sched_run_due(s, 950), 2);
    assert_int_equal(log.n, 2);
    assert_int_equal(log.tags[0], 1);
    assert_int_equal(log.tags[1], 0);
    et_sched_destroy(s);
}

static void set_interval(void **state)
{
    struct et_sched *s;
    struct job_ctx j = { 0 };
    int id;

    assert_int_equal(et_sched_create(&s), 0);
    id = et_sched_add(s, 10000, 0, 0, note, &j);
    assert_true(id >= 0);
    assert_int_equal(et_sched_run_due(s, 0), 1);
    assert_int_equal(et_sched_next_due(s), 10000);

    /* Shorter: takes effect at once, counted from now. */
    assert_int_equal(et_sched_set_interval(s, id, 1000, 2500), 0);
    assert_int_equal(et_sched_next_due(s), 3500);
    assert_int_equal(et_sched_run_due(s, 3500), 1);
    assert_int_equal(et_sched_next_due(s), 4500);

    /* Longer: the run already planned stays, then the new interval. */
    assert_int_equal(et_sched_set_interval(s, id, 60000, 4000), 0);
    assert_int_equal(et_sched_next_due(s), 4500);
    assert_int_equal(et_sched_run_due(s, 4500), 1);
    assert_int_equal(et_sched_next_due(s), 64500);

    assert_int_equal(et_sched_set_interval(s, id, 0, 4500), -EINVAL);
    assert_int_equal(et_sched_set_interval(s, id + 1, 100, 4500), -ENOENT);
    assert_int_equal(j.rec.runs, 3);
    et_sched_destroy(s);
}

struct reentrant {
    struct et_sched *s;
    int self_id;
    int victim_id;
    struct job_ctx added;
    int added_id;
    int64_t runs;
};

/* A callback that removes another job, adds one, changes its own interval
 * and tries a nested run. */
static void meddle(void *ctx, int64_t now_ms)
{
    struct reentrant *r = ctx;

    r->runs++;
    /* A nested run does nothing, so no job can run twice in one call. */
    assert_int_equal(et_sched_run_due(r->s, now_ms), 0);
    if (r->runs == 1) {
        assert_int_equal(et_sched_remove(r->s, r->victim_id), 0);
        r->added_id = et_sched_add(r->s, 100, 0, now_ms, note, &r->added);
        assert_true(r->added_id >= 0);
        assert_int_equal(et_sched_set_interval(r->s, r->self_id, 50, now_ms), 0);
    }
}

static void changes_from_a_callback(void **state)
{
    struct reentrant r = { 0 };
    struct job_ctx victim = { 0 };

    assert_int_equal(et_sched_create(&r.s), 0);
    r.self_id = et_sched_add(r.s, 1000, 0, 0, meddle, &r);
    /* Due at the same time but added later: would run after meddle. */
    r.victim_id = et_sched_add(r.s, 1000, 0, 0, note, &victim);
    assert_int_equal(et_sched_run_due(r.s, 0), 1);
    assert_int_equal(victim.rec.runs, 0);
    /* The job added during the call, due at once, waits for the next call. */
    assert_int_equal(r.added.rec.runs, 0);
    assert_int_equal(et_sched_next_due(r.s), 0);
    assert_int_equal(et_sched_run_due(r.s, 0), 1);
    assert_int_equal(r.added.rec.runs, 1);
    /* meddle's new interval (50 ms from now = 0). */
    assert_int_equal(et_sched_next_due(r.s), 50);
    assert_int_equal(et_sched_run_due(r.s, 50), 1);
    assert_int_equal(r.runs, 2);
    assert_int_equal(et_sched_set_interval(r.s, r.victim_id, 10, 50), -ENOENT);
    /* Ids are not given out again after a removal. */
    assert_true(et_sched_add(r.s, 10, 0, 50, note, &victim) > r.added_id);
    et_sched_destroy(r.s);
}

static void removal_and_far_future(void **state)
{
    struct et_sched *s;
    struct job_ctx a = { 0 }, b = { 0 };
    int ia, ib;

    assert_int_equal(et_sched_create(&s), 0);
    ia = et_sched_add(s, 100, 0, 0, note, &a);
    ib = et_sched_add(s, 200, 0, 0, note, &b);
    assert_int_equal(et_sched_remove(s, ia), 0);
    assert_int_equal(et_sched_remove(s, ia), -ENOENT);
    assert_int_equal(et_sched_run_due(s, 0), 1);
    assert_int_equal(a.rec.runs, 0);
    assert_int_equal(b.rec.runs, 1);
    assert_int_equal(et_sched_remove(s, ib), 0);
    assert_true(et_sched_next_due(s) == INT64_MAX);
    /* A due time past the end of int64 saturates instead of wrapping round. */
    assert_true(et_sched_add(s, INT64_MAX, INT64_MAX, 1000, note, &a) >= 0);
    assert_true(et_sched_next_due(s) == INT64_MAX);
    assert_int_equal(et_sched_run_due(s, INT64_MAX - 1), 0);
    et_sched_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rejects_bad_arguments),
        cmocka_unit_test(no_drift_over_hours),
        cmocka_unit_test(exact_wakeups_count),
        cmocka_unit_test(stall_runs_once),
        cmocka_unit_test(stall_many_jobs_each_once),
        cmocka_unit_test(frozen_clock),
        cmocka_unit_test(many_jobs_in_order),
        cmocka_unit_test(late_call_runs_by_due_time),
        cmocka_unit_test(set_interval),
        cmocka_unit_test(changes_from_a_callback),
        cmocka_unit_test(removal_and_far_future),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
