/*
 * The batcher (agent/src/batcher.h) against a real outbox in a temp dir:
 * samples become batches with consecutive seqs, a group commit makes them
 * durable, and an outbox that cannot take them (appends refused, commits
 * failing, the card below the reserve) costs memory up to a bound, then
 * counted drops, never an uncounted loss or a repeated seq. Batches that
 * cannot be stored can still be read for sending and are released by an
 * Ack, counted as not persisted. A crash while storing fails loses
 * uncounted only what was collected since the last flush.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "../../agent/src/batcher.h"
#include "edgetel/outbox.h"
#include "et_fake.h"
#include "faulty_vfs.h"
#include "log_capture.h"
#include "outbox_fixture.h"

#define MAX_SAMPLES 10
#define MEMORY_BOUND (MAX_SAMPLES * ET_BATCHER_MEMORY_BATCHES)

struct bench {
    struct fixture *fx;          /* the outbox tests' directory (outbox_fixture.h) */
    struct et_outbox *outbox;
    struct et_batcher *batcher;
    int64_t next_value;
};

static int bench_setup(void **state)
{
    const uint8_t boot[ET_BOOT_ID_LEN] = { 7 };
    struct bench *b = calloc(1, sizeof(*b));
    void *fx;

    if (!b || setup(&fx) != 0)
        return -1;
    et_fake_reset();
    faulty_vfs_register();     /* writes pass until a test says otherwise */
    b->fx = fx;
    b->outbox = open_ok(b->fx);
    if (et_batcher_create(&b->batcher, b->outbox, "unit-dev", boot, MAX_SAMPLES) != 0)
        return -1;
    *state = b;
    return 0;
}

static int bench_teardown(void **state)
{
    struct bench *b = *state;
    void *fx = b->fx;

    log_capture_stop();
    et_batcher_destroy(b->batcher);
    et_outbox_close(b->outbox);
    faulty_vfs_unregister();
    free(b);
    return teardown(&fx);
}

/* n samples of a counter that counts every sample ever added. */
static void add_samples(struct bench *fx, int n)
{
    for (int i = 0; i < n; i++) {
        struct et_value v = et_value_i64(fx->next_value++);

        assert_int_equal(et_batcher_add(fx->batcher, "sim.counter", "1", NULL, 1000 + i, &v,
                                        ET_TQ_SYNCED), 0);
    }
}

static void exec_sql(sqlite3 *db, const char *sql)
{
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

/*
 * Every counter value in the outbox, in seq order. With consecutive set,
 * checks that the seqs have no gap (nothing was dropped).
 */
static size_t outbox_values(struct bench *fx, int64_t *values, size_t cap, bool consecutive)
{
    uint64_t after = 0, seq, prev = 0;
    uint8_t *blob;
    size_t len, n = 0;

    while (et_outbox_next(fx->outbox, after, &seq, &blob, &len) == 0) {
        struct et_wire_reader *r;
        struct et_wire_named *s;
        uint8_t *whole;
        size_t whole_len, n_read;
        char err[160];

        if (prev && consecutive)
            assert_int_equal(seq, prev + 1);
        assert_true(seq > prev);
        /* Each batch with its whole dictionary, as the aggregator may ask:
         * the one that carried the entries may have been dropped. */
        assert_int_equal(et_batcher_with_dict(fx->batcher, blob, len, &whole, &whole_len), 0);
        assert_int_equal(et_wire_reader_create(&r), 0);
        assert_int_equal(et_wire_read(r, whole, whole_len, &s, &n_read, err, sizeof(err)), 0);
        for (size_t i = 0; i < n_read && n < cap; i++)
            values[n++] = s[i].s.u.i64;
        free(s);
        et_wire_reader_destroy(r);
        free(whole);
        free(blob);
        prev = after = seq;
    }
    return n;
}

static void samples_become_batches_and_commit(void **state)
{
    struct bench *fx = *state;
    const struct et_batcher_stats *st = et_batcher_stats(fx->batcher);
    struct et_outbox_stats ob;
    int64_t values[64];

    assert_int_equal(et_batcher_flush(fx->batcher, 1), 0);      /* nothing to flush */
    assert_int_equal(st->batches_made, 0);
    add_samples(fx, MAX_SAMPLES - 1);
    assert_false(et_batcher_full(fx->batcher));
    add_samples(fx, 1);
    assert_true(et_batcher_full(fx->batcher));
    assert_int_equal(et_batcher_flush(fx->batcher, 2), 0);
    add_samples(fx, 3);
    assert_int_equal(et_batcher_flush(fx->batcher, 3), 0);
    assert_int_equal(st->batches_made, 2);
    assert_int_equal(st->samples_stored, MAX_SAMPLES + 3);
    /* Readable (and sendable) before the commit, held until it. */
    assert_int_equal(et_outbox_stats(fx->outbox, &ob), 0);
    assert_int_equal(ob.batches, 2);
    assert_int_equal(et_batcher_unstored(fx->batcher), MAX_SAMPLES + 3);
    assert_int_equal(et_batcher_commit(fx->batcher), 0);
    assert_int_equal(et_batcher_unstored(fx->batcher), 0);
    assert_int_equal(outbox_values(fx, values, 64, true), MAX_SAMPLES + 3);
    for (int64_t i = 0; i < MAX_SAMPLES + 3; i++)
        assert_int_equal(values[i], i);
}

static void full_outbox_holds_then_drops_counted_and_keeps_seqs(void **state)
{
    struct bench *fx = *state;
    const struct et_batcher_stats *st = et_batcher_stats(fx->batcher);
    sqlite3 *db = et_outbox_sqlite(fx->outbox);
    int64_t values[512];
    char sql[96];
    sqlite3_stmt *q;
    size_t n;

    add_samples(fx, 5);
    assert_int_equal(et_batcher_flush(fx->batcher, 1), 0);
    assert_int_equal(et_batcher_commit(fx->batcher), 0);

    /* The "disk" is full: no page may be added. */
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA page_count", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %d", sqlite3_column_int(q, 0));
    sqlite3_finalize(q);
    exec_sql(db, sql);

    /* Batches are made until the free pages are used up, then held while
     * the outbox refuses them. */
    int refused = 0;

    for (int i = 0; i < 500 && refused < 3; i++) {
        add_samples(fx, MAX_SAMPLES);
        if (et_batcher_flush(fx->batcher, 10 + i) != 0 || et_batcher_commit(fx->batcher) != 0)
            refused++;
    }
    assert_int_equal(refused, 3);
    assert_true(et_batcher_unstored(fx->batcher) >= 3 * MAX_SAMPLES);
    assert_int_equal(st->dropped_in_memory, 0);

    /* Past the memory bound the oldest samples are dropped, and counted. */
    add_samples(fx, MEMORY_BOUND);
    assert_int_not_equal(et_batcher_flush(fx->batcher, 20), 0);
    assert_true(st->dropped_in_memory > 0);
    assert_true(et_batcher_unstored(fx->batcher) <= MEMORY_BOUND);

    /* Room again: the held batches go in with their seqs, nothing twice. */
    exec_sql(db, "PRAGMA max_page_count = 1000000");
    add_samples(fx, 2);
    assert_int_equal(et_batcher_flush(fx->batcher, 30), 0);
    assert_int_equal(et_batcher_commit(fx->batcher), 0);
    assert_int_equal(et_batcher_unstored(fx->batcher), 0);
    n = outbox_values(fx, values, 512, false);
    /* Every sample ever added is either in the outbox or counted as dropped. */
    assert_int_equal(n + st->dropped_in_memory, (size_t)fx->next_value);
    for (size_t i = 1; i < n; i++)
        assert_true(values[i] > values[i - 1]);      /* in order, none twice */
}

/*
 * A full disk as SQLite meets it: appends succeed (into the page cache)
 * and every commit fails with SQLITE_FULL. The batches of each failed
 * group are held and appended again, and new ones keep coming: memory
 * must stay within the bound all the same, the excess dropped and counted
 * (and reported through the outbox's count); "storing again" is said only
 * once a commit worked, not after every append that seemed to.
 */
static void failing_commits_keep_memory_bounded_and_say_recovery_once(void **state)
{
    struct bench *fx = *state;
    const struct et_batcher_stats *st = et_batcher_stats(fx->batcher);
    struct et_outbox_stats ob;
    int64_t values[1024];
    size_t n;

    log_capture_start();
    add_samples(fx, 5);
    assert_int_equal(et_batcher_flush(fx->batcher, 1), 0);
    assert_int_equal(et_batcher_commit(fx->batcher), 0);

    faulty_vfs_fail_writes(SQLITE_FULL);
    for (int i = 0; i < 100; i++) {
        add_samples(fx, MAX_SAMPLES / 2);
        et_batcher_flush(fx->batcher, 10 + i);
        if (i % 5 == 4)
            assert_int_equal(et_batcher_commit(fx->batcher), -ENOSPC);
        assert_true(et_batcher_unstored(fx->batcher) <= MEMORY_BOUND);
    }
    assert_true(st->dropped_in_memory >= 100 * (MAX_SAMPLES / 2) - MEMORY_BOUND);
    assert_int_equal(et_outbox_stats(fx->outbox, &ob), 0);
    assert_int_equal(ob.dropped_samples, st->dropped_in_memory);

    assert_int_equal(log_capture_count("storing batches again", NULL), 0);

    faulty_vfs_fail_writes(0);
    assert_int_equal(et_batcher_flush(fx->batcher, 200), 0);
    assert_int_equal(et_batcher_commit(fx->batcher), 0);
    log_capture_stop();
    assert_int_equal(log_capture_count("filesystem holding", NULL), 1);   /* said once */
    assert_int_equal(log_capture_count("storing batches again", NULL), 1);

    n = outbox_values(fx, values, 1024, false);
    assert_int_equal(n + st->dropped_in_memory, (size_t)fx->next_value);
    for (size_t i = 1; i < n; i++)
        assert_true(values[i] > values[i - 1]);
    assert_int_equal(values[n - 1], fx->next_value - 1);    /* the newest were kept */
}

/*
 * Below the free-space reserve nothing is stored, but every batch is made
 * with a seq of its own and can be read for sending; an Ack releases it,
 * counted as not persisted. What is left at the stop is counted as dropped.
 * The card's state is said once, then at most hourly.
 */
static void below_reserve_batches_stay_sendable_and_acks_release_them(void **state)
{
    struct bench *fx = *state;
    const struct et_batcher_stats *st = et_batcher_stats(fx->batcher);
    struct et_outbox_limits lim = { .reserve_bytes = 64 << 20, .policy = ET_OUTBOX_DROP_OLDEST };
    struct et_outbox_stats ob;
    const uint8_t *blob;
    uint64_t seq, seqs[3];
    size_t len;

    assert_int_equal(et_outbox_set_limits(fx->outbox, &lim), 0);
    assert_int_equal(et_fake_fs_set_space(fx->fx->path, 5 << 20, 1 << 30, 0), 0);
    log_capture_start();
    for (int i = 0; i < 3; i++) {
        add_samples(fx, 4);
        assert_int_equal(et_batcher_flush(fx->batcher, 10 + i), -ENOSPC);
        assert_int_equal(et_batcher_commit(fx->batcher), -ENOSPC);
    }
    /* Said again after an hour, not before. */
    et_fake_time_advance(59 * 60 * 1000);
    assert_int_equal(et_batcher_commit(fx->batcher), -ENOSPC);
    et_fake_time_advance(2 * 60 * 1000);
    assert_int_equal(et_batcher_commit(fx->batcher), -ENOSPC);
    assert_int_equal(et_batcher_commit(fx->batcher), -ENOSPC);
    log_capture_stop();
    assert_int_equal(log_capture_count("nearly full: 5.0 MiB free, below the [outbox] reserve "
                                     "of 64.0 MiB", NULL), 2);
    assert_int_equal(log_capture_count("for 61 min now", NULL), 1);

    for (uint64_t after = 0, i = 0; i < 3; i++) {
        assert_int_equal(et_batcher_next_unstored(fx->batcher, after, &seq, &blob, &len), 0);
        assert_true(len > 0);
        seqs[i] = after = seq;
    }
    assert_int_equal(et_batcher_next_unstored(fx->batcher, seqs[2], &seq, &blob, &len), -ENOENT);
    assert_int_equal(seqs[1], seqs[0] + 1);
    assert_int_equal(seqs[2], seqs[1] + 1);

    assert_int_equal(et_batcher_ack(fx->batcher, seqs[0], &seqs[2], 1), 2);
    assert_int_equal(st->not_persisted, 8);
    assert_int_equal(et_batcher_unstored(fx->batcher), 4);
    assert_int_equal(et_batcher_abandon(fx->batcher), 4);
    assert_int_equal(et_outbox_stats(fx->outbox, &ob), 0);
    assert_int_equal(ob.batches, 0);
    assert_int_equal(ob.dropped_samples, 4);

    /* Room again: the next batch is stored after the seqs used from memory. */
    assert_int_equal(et_fake_fs_set_space(fx->fx->path, 500 << 20, 1 << 30, 0), 0);
    add_samples(fx, 4);
    assert_int_equal(et_batcher_flush(fx->batcher, 20), 0);
    assert_int_equal(et_batcher_commit(fx->batcher), 0);
    assert_int_equal(et_outbox_stats(fx->outbox, &ob), 0);
    assert_int_equal(ob.batches, 1);
    assert_int_equal(ob.oldest_seq, seqs[2] + 1);
}

/*
 * A crash: the bench's handles are closed, a child process opens the
 * outbox and a batcher of its own, does what work says and dies by
 * SIGKILL (work returns false, and the child exits, when something went
 * otherwise than it expects: no cmocka assertions in the child); then the
 * caller opens the outbox again, which counts what the dead run noted.
 */
static void crash_after(struct bench *fx, bool (*work)(struct bench *fx))
{
    const uint8_t boot[ET_BOOT_ID_LEN] = { 8 };
    int status;
    pid_t pid;

    et_batcher_destroy(fx->batcher);
    fx->batcher = NULL;
    et_outbox_close(fx->outbox);
    fx->outbox = NULL;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (et_outbox_open(&fx->outbox, fx->fx->path, NULL, 0) != 0 ||
            et_batcher_create(&fx->batcher, fx->outbox, "unit-dev", boot, MAX_SAMPLES) != 0 ||
            !work(fx))
            _exit(2);
        raise(SIGKILL);
        _exit(1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    faulty_vfs_fail_writes(0);
}

/* n samples of the counter, in the child: false when one is refused. */
static bool child_add(struct bench *fx, int n)
{
    for (int i = 0; i < n; i++) {
        struct et_value v = et_value_i64(fx->next_value++);

        if (et_batcher_add(fx->batcher, "sim.counter", "1", NULL, 1000 + i, &v,
                           ET_TQ_SYNCED) != 0)
            return false;
    }
    return true;
}

static bool commit_five(struct bench *fx)
{
    return child_add(fx, 5) && et_batcher_flush(fx->batcher, 1) == 0 &&
           et_batcher_commit(fx->batcher) == 0;
}

/*
 * Commits fail (a full disk): four batches of 10 made after the last good
 * commit, one of them delivered (acked) before the crash, and 3 samples
 * in the open batch.
 */
static bool hold_forty_deliver_ten(struct bench *fx)
{
    uint64_t delivered;

    if (!commit_five(fx))                       /* durable: not at risk */
        return false;
    faulty_vfs_fail_writes(SQLITE_FULL);
    for (int i = 0; i < 4; i++) {
        if (!child_add(fx, MAX_SAMPLES))
            return false;
        if (i == 1)
            delivered = et_batcher_next_seq(fx->batcher);
        et_batcher_flush(fx->batcher, 10 + i);
        if (i == 1 && et_batcher_commit(fx->batcher) != -ENOSPC)
            return false;
    }
    et_outbox_ack(fx->outbox, 0, &delivered, 1);
    et_batcher_ack(fx->batcher, 0, &delivered, 1);
    return et_batcher_unstored(fx->batcher) == 3 * MAX_SAMPLES &&
           child_add(fx, 3);                    /* since the last flush */
}

/*
 * Every sample a crash loses while storing fails is counted at the next
 * start, exactly: the batches held when it came, whether or not a commit
 * was tried since they were made, but not one delivered from memory before
 * it, nor the durable ones. Only the samples collected since the last flush
 * are not known. (The note used to be written at commits only: batches
 * made after the last one were lost uncounted.)
 */
static void crash_while_commits_fail_counts_what_memory_held(void **state)
{
    struct bench *fx = *state;
    struct et_outbox_stats ob;

    crash_after(fx, hold_forty_deliver_ten);
    fx->outbox = open_ok(fx->fx);
    assert_int_equal(et_outbox_stats(fx->outbox, &ob), 0);
    assert_int_equal(ob.dropped_samples, 3 * MAX_SAMPLES);
    assert_int_equal(ob.batches, 1);
}

/* No seq can be claimed: 20 samples wait in the open batch, then 4 more. */
static bool wait_for_a_seq(struct bench *fx)
{
    return child_add(fx, MAX_SAMPLES) && et_batcher_flush(fx->batcher, 1) != 0 &&
           child_add(fx, MAX_SAMPLES) && et_batcher_flush(fx->batcher, 2) != 0 &&
           et_batcher_commit(fx->batcher) == 0 &&       /* nothing to commit */
           et_batcher_unstored(fx->batcher) == 2 * MAX_SAMPLES && child_add(fx, 4);
}

/*
 * After a crash the seq sidecar must be written before a batch can carry
 * a seq; when it cannot be (the card is full; here a directory stands
 * where its new copy goes) samples wait in the open batch, for as long
 * as it lasts. A crash then loses them: counted at the next start. (They
 * used to be in no note at all.)
 */
static void crash_while_no_seq_can_be_claimed_counts_the_open_batch(void **state)
{
    struct bench *fx = *state;
    struct et_outbox_stats ob;
    char tmp[160];

    crash_after(fx, commit_five);
    snprintf(tmp, sizeof(tmp), "%s.seq.tmp", fx->fx->path);
    assert_int_equal(mkdir(tmp, 0700), 0);
    crash_after(fx, wait_for_a_seq);
    assert_int_equal(rmdir(tmp), 0);
    fx->outbox = open_ok(fx->fx);
    assert_int_equal(et_outbox_stats(fx->outbox, &ob), 0);
    assert_int_equal(ob.dropped_samples, 2 * MAX_SAMPLES);
    assert_int_equal(ob.batches, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(samples_become_batches_and_commit, bench_setup,
                                        bench_teardown),
        cmocka_unit_test_setup_teardown(full_outbox_holds_then_drops_counted_and_keeps_seqs,
                                        bench_setup, bench_teardown),
        cmocka_unit_test_setup_teardown(failing_commits_keep_memory_bounded_and_say_recovery_once,
                                        bench_setup, bench_teardown),
        cmocka_unit_test_setup_teardown(below_reserve_batches_stay_sendable_and_acks_release_them,
                                        bench_setup, bench_teardown),
        cmocka_unit_test_setup_teardown(crash_while_commits_fail_counts_what_memory_held,
                                        bench_setup, bench_teardown),
        cmocka_unit_test_setup_teardown(crash_while_no_seq_can_be_claimed_counts_the_open_batch,
                                        bench_setup, bench_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
