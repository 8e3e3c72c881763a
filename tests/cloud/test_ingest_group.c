/*
 * Group commit and the Acks it holds (cloud/ingest_group.c): on an
 * in-memory writer, that no Ack leaves before the group's commit, that all
 * leave in order after it, and that none leaves when the group is rolled
 * back or its commit fails; then the same on a real SQLite store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cloud_test.h"
#include "edgetel/codec.h"
#include "edgetel/ingest.h"
#include "edgetel/log.h"

#define setup cloud_fixture_setup
#define teardown cloud_fixture_teardown

static int fail_sample(struct et_store_writer *w, const struct et_store_sample *smp, int64_t *id)
{
    return -EIO;
}

/* ---- on the fake writer ------------------------------------------------------ */

struct fake_ingest {
    struct fake_writer *fw;
    struct et_ingest *ig;
    /* What the publish function was handed, in order. */
    uint64_t seqs[8], through[8];
    size_t published;
};

static int fake_setup(void **state)
{
    struct fake_ingest *fi = calloc(1, sizeof(*fi));

    assert_non_null(fi);
    fi->fw = fake_writer_create();
    assert_int_equal(et_ingest_create(&fi->ig, &fi->fw->base, CLOUD_ROOT), 0);
    *state = fi;
    return 0;
}

static int fake_teardown(void **state)
{
    struct fake_ingest *fi = *state;

    et_ingest_destroy(fi->ig);
    fake_writer_destroy(fi->fw);
    free(fi);
    return 0;
}

static void publish(void *ctx, const struct et_ingest_reply *r)
{
    struct fake_ingest *fi = ctx;
    uint64_t sel = r->seq;

    assert_true(fi->published < 8);
    /* Only once the group is durable. */
    assert_false(fi->fw->in_tx);
    cloud_assert_ack(r, r->device, r->acked_through, &sel, r->seq > r->acked_through);
    fi->seqs[fi->published] = r->seq;
    fi->through[fi->published] = r->acked_through;
    fi->published++;
}

static void held_acks_leave_after_the_commit(void **state)
{
    struct fake_ingest *fi = *state;
    struct et_ingest_reply r;
    const uint64_t order[] = { 1, 3, 2, 2 };
    const uint64_t through[] = { 1, 1, 3, 3 };
    size_t held = 0, len;
    uint8_t status[] = { 0x0a, 0x04, 'd', 'e', 'v', '1', 0x10, 0x01 };   /* online */

    assert_int_equal(et_ingest_group_begin(fi->ig), 0);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(cloud_ingest_batch(fi->ig, "dev1", order[i], 1, 2, &r), 0);
        assert_int_equal(r.kind, i < 3 ? ET_INGEST_STORED : ET_INGEST_DUPLICATE);
        assert_int_equal(r.acked_through, through[i]);
        assert_null(r.ack);
        assert_true(r.ack_held);
    }
    /* A Status in the group has no Ack to hold. */
    len = sizeof(status);
    assert_int_equal(et_ingest_message(fi->ig, CLOUD_ROOT "/v1/dev1/status", status, len,
                                       CLOUD_NOW, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STATUS);
    assert_false(r.ack_held);

    /* One transaction for all, not yet committed, nothing published. */
    assert_int_equal(fi->fw->calls[FAKE_BEGIN], 1);
    assert_int_equal(fi->fw->calls[FAKE_COMMIT], 0);
    assert_int_equal(fi->published, 0);

    assert_int_equal(et_ingest_group_end(fi->ig, publish, fi, &held), 0);
    assert_int_equal(fi->fw->calls[FAKE_COMMIT], 1);
    assert_int_equal(held, 4);
    assert_int_equal(fi->published, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(fi->seqs[i], order[i]);
        assert_int_equal(fi->through[i], through[i]);
    }

    /* Outside a group an Ack is the caller's at once, after its own commit. */
    assert_int_equal(cloud_ingest_batch(fi->ig, "dev1", 4, 1, 2, &r), 0);
    assert_false(r.ack_held);
    cloud_assert_ack(&r, "dev1", 4, NULL, 0);
    assert_int_equal(fi->fw->calls[FAKE_COMMIT], 2);
}

/* Open a group and store batches 1 and 2 of dev1 in it. */
static void group_of_two(struct fake_ingest *fi)
{
    struct et_ingest_reply r;

    assert_int_equal(et_ingest_group_begin(fi->ig), 0);
    for (uint64_t seq = 1; seq <= 2; seq++) {
        assert_int_equal(cloud_ingest_batch(fi->ig, "dev1", seq, 1, 2, &r), 0);
        assert_true(r.ack_held);
    }
}

static void held_acks_are_dropped_on_rollback(void **state)
{
    struct fake_ingest *fi = *state;
    struct et_ingest_reply r;
    size_t held = 0;

    group_of_two(fi);
    fi->fw->fail_at[FAKE_INSERT_SAMPLE] = fi->fw->calls[FAKE_INSERT_SAMPLE] + 2;
    assert_int_equal(cloud_ingest_batch(fi->ig, "dev1", 3, 1, 2, &r), -EIO);
    assert_int_equal(r.kind, ET_INGEST_NONE);
    assert_null(r.ack);
    /* The rest of the burst cannot join a spoiled group. */
    assert_int_equal(cloud_ingest_batch(fi->ig, "dev1", 4, 1, 2, &r), -ECANCELED);
    assert_int_equal(et_ingest_stats(fi->ig)->store_errors, 2);

    assert_int_equal(et_ingest_group_end(fi->ig, publish, fi, &held), -ECANCELED);
    assert_int_equal(held, 2);
    assert_int_equal(fi->published, 0);
    assert_int_equal(fi->fw->calls[FAKE_COMMIT], 0);
    assert_int_equal(fi->fw->calls[FAKE_ROLLBACK], 1);
    assert_null(fake_device(fi->fw, "dev1"));   /* the whole group undone */

    /* The next group starts clean: nothing of the last one is released. */
    assert_int_equal(et_ingest_group_begin(fi->ig), 0);
    assert_int_equal(cloud_ingest_batch(fi->ig, "dev1", 1, 1, 2, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    assert_int_equal(et_ingest_group_end(fi->ig, publish, fi, &held), 0);
    assert_int_equal(held, 1);
    assert_int_equal(fi->published, 1);
    assert_int_equal(fi->seqs[0], 1);
}

static void held_acks_are_dropped_when_the_commit_fails(void **state)
{
    struct fake_ingest *fi = *state;
    size_t held = 0;

    group_of_two(fi);
    fi->fw->fail_at[FAKE_COMMIT] = 1;
    fi->fw->fail_ret = -ENOSPC;
    assert_int_equal(et_ingest_group_end(fi->ig, publish, fi, &held), -ENOSPC);
    assert_int_equal(held, 2);
    assert_int_equal(fi->published, 0);
    assert_null(fake_device(fi->fw, "dev1"));
}

static void group_misuse_and_a_group_that_cannot_begin(void **state)
{
    struct fake_ingest *fi = *state;
    struct et_ingest_reply r;
    size_t held = 99;

    assert_int_equal(et_ingest_group_end(fi->ig, publish, fi, &held), -EINVAL);
    assert_int_equal(held, 0);
    assert_int_equal(et_ingest_group_begin(fi->ig), 0);
    assert_int_equal(et_ingest_group_begin(fi->ig), -EALREADY);
    assert_int_equal(et_ingest_group_end(fi->ig, publish, fi, &held), 0);
    assert_int_equal(held, 0);

    /* No group: each message commits on its own and its Ack is the caller's. */
    fi->fw->fail_at[FAKE_BEGIN] = fi->fw->calls[FAKE_BEGIN] + 1;
    assert_int_equal(et_ingest_group_begin(fi->ig), -EIO);
    assert_int_equal(cloud_ingest_batch(fi->ig, "dev1", 1, 1, 2, &r), 0);
    assert_false(r.ack_held);
    cloud_assert_ack(&r, "dev1", 1, NULL, 0);
    assert_int_equal(et_ingest_group_end(fi->ig, publish, fi, &held), -EINVAL);
    assert_int_equal(fi->published, 0);
}

static void destroy_rolls_back_an_open_group(void **state)
{
    struct fake_ingest *fi = *state;
    struct et_ingest_reply r;

    assert_int_equal(et_ingest_group_begin(fi->ig), 0);
    assert_int_equal(cloud_ingest_batch(fi->ig, "dev1", 1, 1, 2, &r), 0);
    et_ingest_destroy(fi->ig);
    fi->ig = NULL;
    assert_int_equal(fi->fw->calls[FAKE_ROLLBACK], 1);
    assert_false(fi->fw->in_tx);
    assert_null(fake_device(fi->fw, "dev1"));
    assert_int_equal(fi->published, 0);
}

/* ---- on SQLite ---------------------------------------------------------------- */

static void count_published(void *ctx, const struct et_ingest_reply *r)
{
    (*(size_t *)ctx)++;
}

/* Group commit: a burst of batches shares one transaction. */
static void group_commits_a_burst_together(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_ingest_reply r;
    size_t held = 0, published = 0;
    bool seen;

    assert_int_equal(et_ingest_group_begin(f->ig), 0);
    assert_int_equal(et_ingest_group_begin(f->ig), -EALREADY);
    for (uint64_t seq = 1; seq <= 3; seq++) {
        assert_int_equal(cloud_ingest_batch(f->ig, "dev-g", seq, 1, 4, &r), 0);
        assert_int_equal(r.kind, ET_INGEST_STORED);
        /* Acks computed inside the group see the group's own writes ... */
        assert_int_equal(r.acked_through, seq);
        /* ... and wait for its commit. */
        assert_null(r.ack);
        assert_true(r.ack_held);
    }
    assert_int_equal(et_ingest_group_end(f->ig, count_published, &published, &held), 0);
    assert_int_equal(held, 3);
    assert_int_equal(published, 3);
    assert_int_equal(et_ingest_group_end(f->ig, count_published, &published, NULL), -EINVAL);

    /* Durable: another handle on the file sees all three. */
    cloud_fixture_reopen(f);
    for (uint64_t seq = 1; seq <= 3; seq++) {
        assert_int_equal(et_store_batch_seen(f->w, "dev-g", CLOUD_STREAM_A_HEX, seq, &seen), 0);
        assert_true(seen);
    }
}

/* One failed message in a group undoes the group: nothing may be acked. */
static void rollback_inside_a_group_undoes_it(void **state)
{
    struct cloud_fixture *f = *state;
    const struct et_store_writer_ops *real = f->w->ops;
    struct et_store_writer_ops failing = *real;
    struct et_ingest_reply r;
    size_t held = 0, published = 0;
    bool seen;

    assert_int_equal(et_ingest_group_begin(f->ig), 0);
    assert_int_equal(cloud_ingest_batch(f->ig, "dev-g", 1, 1, 4, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    /* A write of the next message fails ... */
    failing.insert_sample = fail_sample;
    f->w->ops = &failing;
    assert_true(cloud_ingest_batch(f->ig, "dev-g", 2, 1, 4, &r) < 0);
    f->w->ops = real;
    /* ... and the group cannot be joined any more. */
    assert_int_equal(cloud_ingest_batch(f->ig, "dev-g", 3, 1, 4, &r), -ECANCELED);
    assert_int_equal(et_ingest_group_end(f->ig, count_published, &published, &held), -ECANCELED);
    assert_int_equal(held, 1);
    assert_int_equal(published, 0);

    assert_int_equal(et_store_batch_seen(f->w, "dev-g", CLOUD_STREAM_A_HEX, 1, &seen), 0);
    assert_false(seen);
    /* The device sends it again and it is stored then, not a duplicate. */
    assert_int_equal(cloud_ingest_batch(f->ig, "dev-g", 1, 1, 4, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(held_acks_leave_after_the_commit, fake_setup,
                                        fake_teardown),
        cmocka_unit_test_setup_teardown(held_acks_are_dropped_on_rollback, fake_setup,
                                        fake_teardown),
        cmocka_unit_test_setup_teardown(held_acks_are_dropped_when_the_commit_fails, fake_setup,
                                        fake_teardown),
        cmocka_unit_test_setup_teardown(group_misuse_and_a_group_that_cannot_begin, fake_setup,
                                        fake_teardown),
        cmocka_unit_test_setup_teardown(destroy_rolls_back_an_open_group, fake_setup,
                                        fake_teardown),
        cmocka_unit_test_setup_teardown(group_commits_a_burst_together, setup, teardown),
        cmocka_unit_test_setup_teardown(rollback_inside_a_group_undoes_it, setup, teardown),
    };

    et_log_init("test_ingest_group", ET_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
