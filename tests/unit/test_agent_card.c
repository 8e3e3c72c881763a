/*
 * The agent on a full card, driven step by step on the agent bench
 * (agent_bench.h) with a write-failing SQLite VFS (faulty_vfs.h) and the
 * fake platform's free-space figures: memory stays bounded and every loss
 * is counted and reported, also across a restart; below the free-space
 * reserve live data still goes out, counted as not persisted; and what the
 * log says about the backlog is counted from the outbox's rows and
 * measured rates. The rest of the delivery policy: test_agent_uplink.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_bench.h"
#include "edgetel/agent.h"
#include "edgetel/log.h"
#include "edgetel/codec.h"
#include "edgetel/outbox.h"
#include "et_fake.h"
#include "faulty_vfs.h"
#include "log_capture.h"

#include <sqlite3.h>

static void exec_sql(sqlite3 *db, const char *sql)
{
    char *err = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err ? err : "?");
}

static void full_disk_holds_samples_in_memory_and_loses_none(void **state)
{
    struct bench *b = *state;
    int64_t counters[1024];
    size_t n_counters = 0;
    uint64_t seqs[1024];
    bool hist[1024];
    char sql[96];
    sqlite3_stmt *st;

    bench_start(b, NULL);
    bench_run_for(b, 1000);
    sqlite3 *db = et_outbox_sqlite(et_agent_outbox(b->agent));

    /* The "disk" is full from now on: no page may be added. */
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA page_count", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %d", sqlite3_column_int(st, 0));
    sqlite3_finalize(st);
    exec_sql(db, sql);
    bench_run_for(b, 3000);                  /* 3 s of samples with nowhere to go */
    exec_sql(db, "PRAGMA max_page_count = 1000000");
    bench_run_for(b, 1000);                  /* room again: the held samples go in */

    bench_drain_all(b);
    b->seen = 0;
    bench_new_batches(b, seqs, hist, 1024, counters, &n_counters, 1024);
    assert_true(n_counters >= 45);
    for (size_t i = 0; i < n_counters; i++)
        assert_int_equal(counters[i], (int64_t)i);   /* none lost, none twice */
}

/*
 * Ack every telemetry batch published since the last look, selectively,
 * except skip (0: none). With counters, collect the sim.counter values.
 * Returns how many batches it saw.
 */
static size_t ack_published(struct bench *b, uint64_t skip, int64_t *counters,
                            size_t *n_counters, size_t cap)
{
    uint64_t seqs[256], acked[256];
    bool hist[256];
    size_t n = bench_new_batches(b, seqs, hist, 256, counters, n_counters, cap), k = 0;

    for (size_t i = 0; i < n; i++)
        if (seqs[i] != skip)
            acked[k++] = seqs[i];
    if (k)
        bench_send_ack(b, 0, acked, k);
    return n;
}

/* Run for ms in 50 ms steps, acking what is published as it comes. */
static size_t run_acking(struct bench *b, int64_t ms, uint64_t skip, int64_t *counters,
                         size_t *n_counters, size_t cap)
{
    size_t n = 0;

    for (int64_t t = 0; t < ms; t += 50) {
        n += ack_published(b, skip, counters, n_counters, cap);
        bench_run_for(b, 50);
    }
    return n;
}

/* The agent's retained Status, decoded (free it with edgetel__v1__status__free_unpacked). */
static Edgetel__V1__Status *retained_status(struct bench *b)
{
    const struct et_fake_message *m = et_fake_broker_retained(b->broker, b->status);
    Edgetel__V1__Status *st;
    char err[160];

    assert_non_null(m);
    if (et_wire_decode_status(m->payload, m->len, &st, err, sizeof(err)) != 0)
        fail_msg("status does not decode: %s", err);
    return st;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static int disk_teardown(void **state)
{
    log_capture_stop();
    bench_teardown(state);
    faulty_vfs_unregister();
    return 0;
}

/*
 * A full card as SQLite meets it, with the broker down: appends reach the
 * page cache, every commit fails with SQLITE_FULL. Memory stays within
 * ET_BATCHER_MEMORY_BATCHES batches (100 samples here), and everything
 * past it is dropped and counted: in the outbox's count, in the Status the
 * agent leaves when it stops (with what it held in memory then), and at
 * the next start, though the full disk kept the count from the database.
 */
static void full_disk_keeps_memory_bounded_and_counts_every_loss(void **state)
{
    struct bench *b = *state;
    struct et_outbox_stats st;
    Edgetel__V1__Status *status;
    int64_t counters[2048];
    size_t n_counters = 0;
    uint64_t dropped_at_stop;

    faulty_vfs_register();
    b->agent_extra = "batch_max_samples = 10\n";
    bench_start(b, "insecure = true\n[outbox]\ndurability_window = 1s\n");
    bench_run_for(b, 2000);                     /* stored and committed */
    faulty_vfs_fail_writes(SQLITE_FULL);
    bench_run_for(b, 60000);                    /* 20 samples a second, nowhere to go */
    assert_int_equal(et_agent_outbox_stats(b->agent, &st), 0);
    assert_true(st.dropped_samples >= 60 * 20 - 100 - 20);

    /* Online again, the disk still full: what memory holds goes out. */
    bench_connect_now(b);
    assert_true(run_acking(b, 2000, 0, counters, &n_counters, 2048) > 0);
    /* Memory first, then the stored backlog: none twice. */
    qsort(counters, n_counters, sizeof(counters[0]), cmp_i64);
    for (size_t i = 1; i < n_counters; i++)
        assert_true(counters[i] > counters[i - 1]);
    bench_stop(b);
    status = retained_status(b);
    assert_false(status->online);
    assert_true(status->dropped_samples >= st.dropped_samples);
    assert_true(status->not_persisted_samples > 0);
    dropped_at_stop = status->dropped_samples;
    edgetel__v1__status__free_unpacked(status, NULL);

    /* The count survives the full disk: the next start reports it. */
    faulty_vfs_fail_writes(0);
    bench_start(b, "insecure = true\n[outbox]\ndurability_window = 1s\n");
    assert_int_equal(et_agent_outbox_stats(b->agent, &st), 0);
    assert_int_equal(st.dropped_samples, dropped_at_stop);
}

/*
 * Free space below [outbox] reserve (64 MiB by default): nothing can be
 * stored, yet live data goes out while connected, every counter value of
 * it, counted as not persisted (metric and Status). The card being nearly
 * full is said once at error level with what is free and the reserve, and
 * its recovery once.
 */
static void below_the_reserve_live_data_still_goes_out(void **state)
{
    struct bench *b = *state;
    Edgetel__V1__Status *status;
    int64_t counters[2048];
    size_t n_counters = 0;
    char path[128];

    snprintf(path, sizeof(path), "%s/outbox.db", b->dir);
    assert_int_equal(et_fake_fs_set_space(path, 10 << 20, 8ULL << 30, 0), 0);
    log_capture_start();
    bench_start(b, NULL);
    bench_connect_now(b);
    assert_true(run_acking(b, 5000, 0, counters, &n_counters, 2048) >= 20);
    assert_int_equal(bench_outbox_batches(b), 0);       /* nothing stored */
    assert_true(n_counters >= 45);
    for (size_t i = 0; i < n_counters; i++)
        assert_int_equal(counters[i], (int64_t)i);      /* none lost, none twice */

    /* Room again: stored once more, said once. */
    assert_int_equal(et_fake_fs_set_space(path, 500 << 20, 8ULL << 30, 0), 0);
    bench_run_for(b, 11000);
    assert_true(bench_outbox_batches(b) > 0);
    bench_stop(b);
    log_capture_stop();
    assert_int_equal(log_capture_count("[error] outbox: the filesystem holding", NULL), 1);
    assert_int_equal(log_capture_count("is nearly full: 10.0 MiB free, below the [outbox] reserve "
                                     "of 64.0 MiB", NULL), 1);
    assert_int_equal(log_capture_count("storing batches again", NULL), 1);
    status = retained_status(b);
    assert_true(status->not_persisted_samples >= (uint64_t)n_counters);
    assert_int_equal(status->dropped_samples, 0);
    edgetel__v1__status__free_unpacked(status, NULL);
}

/*
 * The backlog is counted in rows: with every batch but the oldest acked,
 * one batch is left, however wide the seq range behind it.
 */
static void backlog_left_is_counted_in_rows(void **state)
{
    struct bench *b = *state;

    bench_start(b, NULL);
    bench_run_for(b, 8000);                  /* about 40 batches */
    assert_true(bench_outbox_batches(b) >= 35);
    log_capture_start();
    bench_connect_now(b);
    run_acking(b, 11000, 1, NULL, NULL, 0);  /* the aggregator never gets seq 1 */
    log_capture_stop();
    assert_int_equal(log_capture_count("draining backlog: 1 batch left", NULL), 1);
    assert_int_equal(log_capture_count("batches left", NULL), 0);
}

/*
 * A backlog that drains in under a second gets no ETA, even after a long
 * outage since the last report: the rate is measured on this connection.
 */
static void backlog_that_drains_at_once_gets_no_eta(void **state)
{
    struct bench *b = *state;

    bench_start(b, NULL);
    bench_connect_now(b);
    run_acking(b, 2000, 0, NULL, NULL, 0);
    et_fake_broker_set_up(b->broker, false);
    assert_int_equal(et_agent_step(b->agent, b->stop[0], 0), 0);
    bench_run_for(b, 60000);                 /* a backlog of about 300 batches */
    assert_true(bench_outbox_batches(b) >= 250);
    log_capture_start();
    bench_connect_now(b);
    for (int i = 0; i < 200 && bench_outbox_batches(b) > 5; i++)
        ack_published(b, 0, NULL, NULL, 0);  /* gone in no time */
    run_acking(b, 12000, 0, NULL, NULL, 0);
    log_capture_stop();
    assert_int_equal(log_capture_count("ETA", NULL), 0);
    assert_int_equal(log_capture_count("backlog drained", NULL), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(full_disk_holds_samples_in_memory_and_loses_none, bench_setup, bench_teardown),
        cmocka_unit_test_setup_teardown(full_disk_keeps_memory_bounded_and_counts_every_loss, bench_setup, disk_teardown),
        cmocka_unit_test_setup_teardown(below_the_reserve_live_data_still_goes_out, bench_setup, disk_teardown),
        cmocka_unit_test_setup_teardown(backlog_left_is_counted_in_rows, bench_setup, disk_teardown),
        cmocka_unit_test_setup_teardown(backlog_that_drains_at_once_gets_no_eta, bench_setup, disk_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
