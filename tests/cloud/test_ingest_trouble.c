/*
 * Ingest when the store fails (cloud/ingest.c, ingest_group.c), on the
 * in-memory writer:
 *   - a group whose commit fails stored nothing: the counters say so;
 *   - a store that fails every batch is said once, clearly (since when,
 *     why, that nothing is acknowledged), reminded at most once a minute
 *     with a count, and its recovery is said once.
 * Batches whose times are not to be believed: test_ingest_quarantine.c.
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

#include "cloud_test.h"
#include "edgetel/codec.h"
#include "edgetel/ingest.h"
#include "edgetel/log.h"

#define fixture cloud_fake
#define setup cloud_fake_setup
#define teardown cloud_fake_teardown
#define log_lines_with(f, ...) log_capture_count(__VA_ARGS__)

static int ingest_at(struct fixture *f, uint64_t seq, int64_t now_ms, struct et_ingest_reply *r)
{
    size_t len;
    uint8_t *buf = cloud_make_batch("dev1", seq, 1, 2, &len);
    int ret = et_ingest_message(f->ig, CLOUD_ROOT "/v1/dev1/telemetry", buf, len, now_ms, r);

    free(buf);
    return ret;
}

/* ---- counters of a group that was rolled back ---------------------------- */

static void rolled_back_batches_are_not_counted_stored(void **state)
{
    struct fixture *f = *state;
    const struct et_ingest_stats *st = et_ingest_stats(f->ig);
    struct et_ingest_reply r;
    size_t held = 0;

    /* Three batches in a group whose commit fails: nothing was stored. */
    f->fw->fail_at[FAKE_COMMIT] = 1;
    assert_int_equal(et_ingest_group_begin(f->ig), 0);
    for (uint64_t seq = 1; seq <= 3; seq++) {
        assert_int_equal(ingest_at(f, seq, CLOUD_NOW, &r), 0);
        assert_int_equal(r.kind, ET_INGEST_STORED);
    }
    assert_int_equal(et_ingest_group_end(f->ig, NULL, NULL, &held), -EIO);
    assert_int_equal(held, 3);
    assert_int_equal(st->batches, 0);
    assert_int_equal(st->samples, 0);
    assert_int_equal(st->new_devices, 0);
    assert_int_equal(st->store_errors, 3);

    /* The same three again in a group that commits. */
    assert_int_equal(et_ingest_group_begin(f->ig), 0);
    for (uint64_t seq = 1; seq <= 3; seq++)
        assert_int_equal(ingest_at(f, seq, CLOUD_NOW, &r), 0);
    assert_int_equal(et_ingest_group_end(f->ig, NULL, NULL, &held), 0);
    assert_int_equal(st->batches, 3);
    assert_int_equal(st->samples, 3 * 3);   /* 2 counters and 1 sine each */
    assert_int_equal(st->new_devices, 1);
    assert_int_equal(st->store_errors, 3);

    /* A write failing inside a group spoils it: the batches before it and
     * after it are store errors too, none is counted stored. */
    f->fw->fail_at[FAKE_INSERT_SAMPLE] = f->fw->calls[FAKE_INSERT_SAMPLE] + 4;
    assert_int_equal(et_ingest_group_begin(f->ig), 0);
    assert_int_equal(ingest_at(f, 4, CLOUD_NOW, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    assert_true(ingest_at(f, 5, CLOUD_NOW, &r) < 0);
    assert_true(ingest_at(f, 6, CLOUD_NOW, &r) < 0);
    assert_int_equal(et_ingest_group_end(f->ig, NULL, NULL, &held), -ECANCELED);
    assert_int_equal(st->batches, 3);
    assert_int_equal(st->store_errors, 6);
}

/* ---- a store that fails every batch ---------------------------------------- */

static void a_failing_store_is_said_once_then_reminded(void **state)
{
    struct fixture *f = *state;
    struct et_ingest_reply r;
    int64_t now = CLOUD_NOW;
    uint64_t seq = 1;

    assert_int_equal(ingest_at(f, seq++, now, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);

    /* Every commit fails for 150 s, a batch every 2 s: 75 failures. */
    for (int i = 0; i < 75; i++, now += 2000) {
        f->fw->fail_at[FAKE_COMMIT] = f->fw->calls[FAKE_COMMIT] + 1;
        assert_int_equal(ingest_at(f, seq, now, &r), -EIO);
        assert_int_equal(r.kind, ET_INGEST_NONE);
        assert_null(r.ack);
    }
    /* One line that says it, since when and why, and what it means. */
    assert_int_equal(log_lines_with(f, "store is failing", "since 2026-11-18T", "Input/output error",
                                    "not acknowledged", "devices keep", NULL), 1);
    assert_int_equal(log_lines_with(f, "store is failing", NULL), 1);
    /* Then a reminder at most once a minute, with the count: 150 s, two. */
    assert_int_equal(log_lines_with(f, "store still failing", "since 2026-11-18T", NULL), 2);
    assert_int_equal(log_lines_with(f, "store still failing", "31 batches", NULL), 1);
    /* And no line per batch. */
    assert_true(log_lines_with(f, "dev1", NULL) <= 3);
    assert_int_equal(et_ingest_stats(f->ig)->store_errors, 75);

    /* It works again: said once. */
    assert_int_equal(ingest_at(f, seq, now, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    assert_int_equal(log_lines_with(f, "store works again", "75 batches", NULL), 1);
    assert_int_equal(ingest_at(f, seq + 1, now + 1000, &r), 0);
    assert_int_equal(log_lines_with(f, "store works again", NULL), 1);

    /* A failure later is news again. */
    f->fw->fail_at[FAKE_COMMIT] = f->fw->calls[FAKE_COMMIT] + 1;
    assert_int_equal(ingest_at(f, seq + 2, now + 600000, &r), -EIO);
    assert_int_equal(log_lines_with(f, "store is failing", NULL), 2);
}

static void failing_group_commits_are_said_once(void **state)
{
    struct fixture *f = *state;
    struct et_ingest_reply r;
    int64_t now = CLOUD_NOW;
    size_t held;

    /* Every group's commit fails, three batches each, for 100 s. */
    for (int i = 0; i < 50; i++, now += 2000) {
        f->fw->fail_at[FAKE_COMMIT] = f->fw->calls[FAKE_COMMIT] + 1;
        assert_int_equal(et_ingest_group_begin(f->ig), 0);
        for (uint64_t seq = 1; seq <= 3; seq++)
            assert_int_equal(ingest_at(f, seq, now, &r), 0);
        assert_int_equal(et_ingest_group_end(f->ig, NULL, NULL, &held), -EIO);
    }
    assert_int_equal(log_lines_with(f, "store is failing", "not acknowledged", NULL), 1);
    assert_int_equal(log_lines_with(f, "store still failing", "93 batches", NULL), 1);
    assert_int_equal(et_ingest_stats(f->ig)->batches, 0);
    assert_int_equal(et_ingest_stats(f->ig)->store_errors, 150);

    assert_int_equal(et_ingest_group_begin(f->ig), 0);
    assert_int_equal(ingest_at(f, 1, now, &r), 0);
    assert_int_equal(et_ingest_group_end(f->ig, NULL, NULL, &held), 0);
    assert_int_equal(log_lines_with(f, "store works again", "150 batches", NULL), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(rolled_back_batches_are_not_counted_stored, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_failing_store_is_said_once_then_reminded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(failing_group_commits_are_said_once, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
