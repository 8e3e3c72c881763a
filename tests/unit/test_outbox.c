/*
 * The SQLite outbox: order, acks, stats, limits and eviction, and group
 * commit. Seqs are in test_outbox_seq.c, damaged files in
 * test_outbox_damage.c, full disks and I/O errors in test_outbox_fault.c.
 * Each test works in a fresh temporary directory (outbox_fixture.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "et_fake.h"

#include "log_capture.h"
#include "outbox_fixture.h"

/* ---- order and acks ----------------------------------------------------- */

static void test_append_next_order(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    const uint64_t all[] = { 1, 2, 3, 4, 5 };
    uint8_t byte = 1;

    assert_int_equal(et_outbox_next_seq(ob), 1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(append_n(ob, 300, 10), 0);
    assert_int_equal(et_outbox_next_seq(ob), 6);
    expect_seqs(ob, all, 5, 300);
    expect_batch(ob, 3, 4, 300);

    /* A seq already used, an empty blob: refused, nothing changes. */
    assert_int_equal(et_outbox_append(ob, 5, &byte, 1, 1, 0), -EINVAL);
    assert_int_equal(et_outbox_append(ob, 6, &byte, 0, 1, 0), -EINVAL);
    assert_int_equal(et_outbox_next_seq(ob), 6);

    /* A claimed seq may be skipped (its batch went out from memory); it stays used up. */
    assert_int_equal(et_outbox_claim(ob, 5), -EINVAL);
    assert_int_equal(et_outbox_claim(ob, 6), 0);
    assert_int_equal(et_outbox_claim(ob, 7), 0);
    assert_int_equal(et_outbox_append(ob, 8, &byte, 1, 1, 0), 0);
    assert_int_equal(et_outbox_next_seq(ob), 9);
    assert_int_equal(et_outbox_append(ob, 7, &byte, 1, 1, 0), -EINVAL);
    et_outbox_close(ob);

    ob = open_ok(fx);
    assert_int_equal(et_outbox_next_seq(ob), 9);
    et_outbox_close(ob);
}

static void test_ack_cumulative_and_selective(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    struct et_outbox_stats st;
    const uint64_t sel[] = { 5, 7, 42, 2 };
    const uint64_t left[] = { 4, 6, 8, 9, 10 };
    const uint64_t sel2[] = { 10 };
    const uint64_t left2[] = { 4, 6, 8, 9 };

    for (int i = 0; i < 10; i++)
        assert_int_equal(append_n(ob, 200, 7), 0);
    /* seq 2 is covered by through, 42 does not exist: 3 + 2 deleted. */
    assert_int_equal(et_outbox_ack(ob, 3, sel, 4), 5);
    expect_seqs(ob, left, 5, 200);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.batches, 5);
    assert_int_equal(st.samples, 35);
    assert_int_equal(st.bytes, 1000);
    assert_int_equal(st.oldest_seq, 4);
    assert_int_equal(st.newest_seq, 10);

    /* A repeated ack deletes nothing. */
    assert_int_equal(et_outbox_ack(ob, 3, sel, 4), 0);
    /* Selective ack of the newest. */
    assert_int_equal(et_outbox_ack(ob, 0, sel2, 1), 1);
    expect_seqs(ob, left2, 4, 200);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.newest_seq, 9);

    assert_int_equal(et_outbox_ack(ob, 100, NULL, 0), 4);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.batches, 0);
    assert_int_equal(st.samples, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.oldest_seq, 0);
    assert_int_equal(st.newest_seq, 0);
    expect_seqs(ob, NULL, 0, 0);
    /* Acking an empty outbox is no error. */
    assert_int_equal(et_outbox_ack(ob, 100, sel, 4), 0);
    assert_int_equal(et_outbox_next_seq(ob), 11);
    et_outbox_close(ob);
}


/* ---- limits ------------------------------------------------------------------ */

static void test_quota_drop_oldest(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    struct et_outbox_limits lim = { .quota_bytes = 5000, .policy = ET_OUTBOX_DROP_OLDEST };
    struct et_outbox_stats st;
    const uint64_t left[] = { 4, 5, 6, 7, 8 };

    assert_int_equal(et_outbox_set_limits(ob, &lim), 0);
    for (int i = 0; i < 8; i++)
        assert_int_equal(append_n(ob, 1000, 10), 0);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.batches, 5);
    assert_int_equal(st.bytes, 5000);
    assert_int_equal(st.samples, 50);
    assert_int_equal(st.oldest_seq, 4);
    assert_int_equal(st.dropped_samples, 30);
    expect_seqs(ob, left, 5, 1000);
    et_outbox_close(ob);

    /* The count survives a restart. */
    ob = open_ok(fx);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.dropped_samples, 30);
    assert_int_equal(et_outbox_next_seq(ob), 9);
    et_outbox_close(ob);
}

static void test_quota_drop_newest(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    struct et_outbox_limits lim = { .quota_bytes = 3000, .policy = ET_OUTBOX_DROP_NEWEST };
    struct et_outbox_stats st;
    const uint64_t left[] = { 2, 3, 5 };

    assert_int_equal(et_outbox_set_limits(ob, &lim), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(append_n(ob, 1000, 10), 0);
    assert_int_equal(append_n(ob, 1000, 4), -EDQUOT);
    /* The refused batch used its seq up. */
    assert_int_equal(et_outbox_next_seq(ob), 5);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.batches, 3);
    assert_int_equal(st.dropped_samples, 4);

    assert_int_equal(et_outbox_ack(ob, 1, NULL, 0), 1);
    assert_int_equal(append_n(ob, 1000, 10), 0);
    expect_seqs(ob, left, 3, 1000);

    /* A batch larger than the whole quota cannot be stored by any policy. */
    lim.policy = ET_OUTBOX_DROP_OLDEST;
    assert_int_equal(et_outbox_set_limits(ob, &lim), 0);
    assert_int_equal(append_n(ob, 3001, 6), -EDQUOT);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.batches, 3);
    assert_int_equal(st.dropped_samples, 10);
    et_outbox_close(ob);

    /* The used-up seq stays used up across a restart. */
    ob = open_ok(fx);
    assert_int_equal(et_outbox_next_seq(ob), 7);
    et_outbox_close(ob);

    lim.policy = (enum et_outbox_policy)7;
    ob = open_ok(fx);
    assert_int_equal(et_outbox_set_limits(ob, &lim), -EINVAL);
    et_outbox_close(ob);
}

static void test_reserve_evicts(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    struct et_outbox_limits lim = { .reserve_bytes = 1 << 20, .policy = ET_OUTBOX_DROP_OLDEST };
    struct et_outbox_stats st;

    assert_int_equal(et_outbox_set_limits(ob, &lim), 0);
    /* Plenty of room. */
    assert_int_equal(et_fake_fs_set_space(fx->path, 100 << 20, 1000 << 20, 0), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(append_n(ob, 1000, 5), 0);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.dropped_samples, 0);

    /*
     * The filesystem is 2500 bytes short of the reserve (the database has no
     * free pages yet): the three oldest batches go to store a fourth.
     */
    assert_int_equal(et_fake_fs_set_space(fx->path, (1 << 20) - 1500, 1000 << 20, 0), 0);
    assert_int_equal(append_n(ob, 1000, 5), 0);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.dropped_samples, 15);
    assert_int_equal(st.batches, 8);
    assert_int_equal(st.oldest_seq, 4);

    /* When free space cannot be read, nothing is evicted blind. */
    assert_int_equal(et_fake_fs_set_space(fx->path, 0, 0, -EIO), 0);
    assert_int_equal(append_n(ob, 1000, 5), 0);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.dropped_samples, 15);
    et_outbox_close(ob);
}

/*
 * Below the reserve by more than every stored batch could give back (here:
 * nothing stored at all), or with policy drop-newest: nothing is dropped,
 * the append fails as on a full disk (-ENOSPC, not counted, seq not used)
 * so the caller can keep the batch and send it, and the outbox does not
 * claim to be "dropping the oldest batches" when there are none.
 */
static void test_reserve_refuses_without_dropping(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    struct et_outbox_limits lim = { .reserve_bytes = 64 << 20, .policy = ET_OUTBOX_DROP_OLDEST };
    struct et_outbox_stats st;

    log_capture_start();
    assert_int_equal(et_outbox_set_limits(ob, &lim), 0);
    assert_int_equal(et_fake_fs_set_space(fx->path, 10 << 20, 1000 << 20, 0), 0);
    assert_int_equal(append_n(ob, 1000, 5), -ENOSPC);
    assert_int_equal(et_outbox_next_seq(ob), 1);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.batches, 0);
    assert_int_equal(st.dropped_samples, 0);
    assert_true(st.below_reserve);
    assert_int_equal(st.fs_avail, 10 << 20);
    assert_int_equal(st.reserve_bytes, 64 << 20);

    /* Stored batches that could not make up the shortfall stay. */
    assert_int_equal(et_fake_fs_set_space(fx->path, 100 << 20, 1000 << 20, 0), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(append_n(ob, 1000, 5), 0);
    assert_int_equal(et_fake_fs_set_space(fx->path, 10 << 20, 1000 << 20, 0), 0);
    assert_int_equal(et_outbox_begin(ob), 0);
    assert_int_equal(append_n(ob, 1000, 5), -ENOSPC);
    assert_false(et_outbox_in_group(ob));     /* like a full disk: the group is undone */
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.batches, 3);
    assert_int_equal(st.dropped_samples, 0);

    /* drop-newest keeps the stored ones and refuses the same way. */
    lim.policy = ET_OUTBOX_DROP_NEWEST;
    assert_int_equal(et_outbox_set_limits(ob, &lim), 0);
    assert_int_equal(et_fake_fs_set_space(fx->path, (64 << 20) - 1000, 1000 << 20, 0), 0);
    assert_int_equal(append_n(ob, 1000, 5), -ENOSPC);
    assert_int_equal(et_outbox_next_seq(ob), 4);

    /* Room again. */
    assert_int_equal(et_fake_fs_set_space(fx->path, 100 << 20, 1000 << 20, 0), 0);
    assert_int_equal(append_n(ob, 1000, 5), 0);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_false(st.below_reserve);
    assert_int_equal(st.dropped_samples, 0);
    et_outbox_close(ob);
    log_capture_stop();
    assert_int_equal(log_capture_count("dropping the oldest", NULL), 0);
    assert_int_equal(log_capture_count("refusing new batches", NULL), 0);
}

/* One line when eviction starts, one when it stops: never one per batch. */
static void test_eviction_logged_once(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox_limits lim = { .quota_bytes = 3000, .policy = ET_OUTBOX_DROP_OLDEST };
    struct et_outbox *ob = open_ok(fx);

    log_capture_start();
    assert_int_equal(et_outbox_set_limits(ob, &lim), 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(append_n(ob, 1000, 1), 0);
    assert_int_equal(et_outbox_ack(ob, 19, NULL, 0), 2);
    assert_int_equal(append_n(ob, 1000, 1), 0);   /* fits: the episode ends */
    assert_int_equal(append_n(ob, 1000, 1), 0);   /* exactly at the quota */
    assert_int_equal(append_n(ob, 1000, 1), 0);   /* over again: a new one */
    et_outbox_close(ob);
    log_capture_stop();

    assert_int_equal(log_capture_count("quota of 3000 bytes", NULL), 2);
    assert_int_equal(log_capture_count("back within limits", NULL), 1);
}


/* ---- group commit ------------------------------------------------------------------ */

static void test_group_commit(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    struct et_outbox_stats st;
    const uint64_t all[] = { 1, 2, 3, 4 };

    assert_int_equal(et_outbox_commit(ob), -EINVAL);
    assert_int_equal(et_outbox_begin(ob), 0);
    assert_int_equal(et_outbox_begin(ob), -EALREADY);
    for (int i = 0; i < 3; i++)
        assert_int_equal(append_n(ob, 400, 2), 0);
    /* Readable through the handle before the commit. */
    expect_batch(ob, 2, 3, 400);
    assert_int_equal(et_outbox_ack(ob, 1, NULL, 0), 1);
    assert_int_equal(et_outbox_commit(ob), 0);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.batches, 2);

    /* An open group is committed by close. */
    assert_int_equal(et_outbox_begin(ob), 0);
    assert_int_equal(append_n(ob, 400, 2), 0);
    et_outbox_close(ob);

    ob = open_ok(fx);
    assert_int_equal(et_outbox_next_seq(ob), 5);
    expect_seqs(ob, all + 1, 3, 400);
    et_outbox_close(ob);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_next_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_cumulative_and_selective, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_drop_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_drop_newest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserve_evicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserve_refuses_without_dropping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eviction_logged_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
