/*
 * Per-device budget (cloud/budget.c) on a fake clock, and what ingest
 * does with a device over it: the batch is neither stored nor
 * acknowledged (the device keeps it and sends it again), one log line per
 * device per minute, a counter; other devices are not held back, and an
 * honest device that bursts gets everything stored in the end.
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
#include "edgetel/budget.h"
#include "edgetel/ingest.h"
#include "edgetel/log.h"

#define T0 1795000000000LL

static struct et_budget *make(uint64_t sps, uint64_t sburst, uint64_t bps, uint64_t bburst)
{
    const struct et_budget_cfg cfg = {
        .samples_per_s = sps, .sample_burst = sburst, .bytes_per_s = bps, .byte_burst = bburst,
    };
    struct et_budget *b = NULL;

    assert_int_equal(et_budget_create(&b, &cfg), 0);
    return b;
}

static bool over(struct et_budget *b, const char *dev, uint64_t samples, uint64_t bytes,
                 int64_t now, struct et_budget_verdict *v)
{
    et_budget_charge(b, dev, samples, bytes, now, v);
    return v->over;
}

static void buckets_fill_at_their_rate(void **state)
{
    struct et_budget *b = make(100, 1000, 10000, 50000);
    struct et_budget_verdict v;

    /* A full bucket: the burst, then nothing until the rate pays. */
    assert_false(over(b, "pi-1", 600, 100, T0, &v));
    assert_false(over(b, "pi-1", 400, 100, T0, &v));
    assert_true(over(b, "pi-1", 1, 100, T0, &v));
    assert_string_equal(v.which, "samples");
    assert_true(v.log);
    assert_int_equal(v.refused, 1);
    /* A refusal charges nothing: 0.5 s later 50 samples are there. */
    assert_true(over(b, "pi-1", 51, 100, T0 + 500, &v));
    assert_false(v.log);   /* logged a moment ago */
    assert_false(over(b, "pi-1", 50, 100, T0 + 500, &v));
    assert_true(over(b, "pi-1", 1, 100, T0 + 500, &v));
    /* Another device has its own buckets. */
    assert_false(over(b, "pi-2", 1000, 100, T0 + 500, &v));
    /* Never above the burst, however long the pause. */
    assert_false(over(b, "pi-1", 1000, 100, T0 + 3600000, &v));
    assert_true(over(b, "pi-1", 1, 100, T0 + 3600000, &v));
    /* A clock stepping back refills nothing. */
    assert_true(over(b, "pi-1", 1, 100, T0, &v));

    /* Bytes the same way. */
    assert_false(over(b, "pi-3", 1, 50000, T0, &v));
    assert_true(over(b, "pi-3", 1, 1, T0, &v));
    assert_string_equal(v.which, "bytes");
    assert_false(over(b, "pi-3", 1, 10000, T0 + 1000, &v));
    assert_int_equal(et_budget_devices(b), 3);
    et_budget_destroy(b);
}

static void a_batch_larger_than_the_burst_is_not_starved(void **state)
{
    struct et_budget *b = make(100, 1000, 0, 0);
    struct et_budget_verdict v;

    /* 5000 samples pass on a full bucket, then owe 40 s of refill. */
    assert_false(over(b, "pi-1", 5000, 1, T0, &v));
    assert_true(over(b, "pi-1", 1, 1, T0 + 39000, &v));
    assert_false(over(b, "pi-1", 1, 1, T0 + 40010, &v));
    /* Bytes are not budgeted: any size passes. */
    assert_false(over(b, "pi-2", 1, UINT64_MAX / 2, T0, &v));
    et_budget_destroy(b);
}

static void one_line_a_minute_per_device(void **state)
{
    struct et_budget *b = make(1, 1, 0, 0);
    struct et_budget_verdict v;
    int lines = 0;
    uint64_t refused = 0;

    /* A million samples on a full bucket: in debt for days. */
    assert_false(over(b, "pi-1", 1000000, 1, T0, &v));
    /* Ten refusals a second for 150 s: lines at 0, 60 and 120 s. */
    for (int64_t t = 0; t < 150000; t += 100) {
        assert_true(over(b, "pi-1", 1, 1, T0 + t, &v));
        if (v.log) {
            lines++;
            refused += v.refused;
        }
    }
    assert_int_equal(lines, 3);
    assert_int_equal(refused, 1 + 600 + 600);
    et_budget_destroy(b);
}

static void memory_is_bounded(void **state)
{
    struct et_budget *b = make(10, 10, 0, 0);
    struct et_budget_verdict v;
    char dev[32];

    /* Four times as many devices as the table holds: it stays bounded,
     * and a device taken out of the table comes back with a full bucket. */
    for (int i = 0; i < 4 * ET_BUDGET_DEVICES; i++) {
        snprintf(dev, sizeof(dev), "pi-%d", i);
        assert_false(over(b, dev, 10, 1, T0 + i, &v));
    }
    assert_true(et_budget_devices(b) <= ET_BUDGET_DEVICES);
    assert_true(et_budget_devices(b) > ET_BUDGET_DEVICES / 2);
    /* The last device is still known, and empty. */
    assert_true(over(b, dev, 1, 1, T0 + 4 * ET_BUDGET_DEVICES, &v));
    et_budget_destroy(b);
}

static void bad_config_is_refused(void **state)
{
    const struct et_budget_cfg low = { .samples_per_s = 100, .sample_burst = 10 };
    struct et_budget *b = NULL;

    assert_int_equal(et_budget_create(&b, &low), -EINVAL);
    assert_null(b);
}

/* ---- through ingest ------------------------------------------------------------ */

#define fixture cloud_fake

static int setup(void **state)
{
    /* 10 samples a second, a burst of 20: cloud_make_batch(n = 4) has 6. */
    const struct et_budget_cfg cfg = {
        .samples_per_s = 10, .sample_burst = 20,
        .bytes_per_s = ET_BUDGET_BYTES_PER_S, .byte_burst = ET_BUDGET_BYTE_BURST,
    };

    cloud_fake_setup(state);
    return et_ingest_set_budget(((struct cloud_fake *)*state)->ig, &cfg);
}

#define teardown cloud_fake_teardown
#define log_lines_with(f, a, b) log_capture_count((a), (b), NULL)

static enum et_ingest_kind send(struct fixture *f, const char *dev, uint64_t seq, int64_t now,
                                struct et_ingest_reply *r)
{
    char topic[128];
    size_t len;
    uint8_t *buf = cloud_make_batch(dev, seq, 1, 4, &len);

    snprintf(topic, sizeof(topic), CLOUD_ROOT "/v1/%s/telemetry", dev);
    assert_int_equal(et_ingest_message(f->ig, topic, buf, len, now, r), 0);
    free(buf);
    return r->kind;
}

static void a_device_over_budget_is_not_stored_nor_acked(void **state)
{
    struct fixture *f = *state;
    const struct et_ingest_stats *st = et_ingest_stats(f->ig);
    struct et_ingest_reply r;
    int64_t now = CLOUD_NOW;

    /* 6 samples a batch: three fit the burst of 20, the fourth does not. */
    for (uint64_t seq = 1; seq <= 3; seq++)
        assert_int_equal(send(f, "greedy", seq, now, &r), ET_INGEST_STORED);
    assert_int_equal(send(f, "greedy", 4, now, &r), ET_INGEST_OVER_BUDGET);
    assert_null(r.ack);
    assert_false(r.ack_held);
    assert_non_null(fake_device(f->fw, "greedy"));
    assert_int_equal(f->fw->rows.n_batches, 3);
    assert_int_equal(st->over_budget, 1);
    assert_int_equal(st->batches, 3);
    assert_int_equal(log_lines_with(f, "device greedy is over its budget of samples",
                                    "seq 4 (6 samples"), 1);
    assert_int_equal(log_lines_with(f, "not acknowledged", "sends it again"), 1);

    /* Another device is not held back. */
    assert_int_equal(send(f, "honest", 1, now, &r), ET_INGEST_STORED);
    assert_non_null(r.ack);

    /* The greedy one keeps resending: refused and counted, not logged again. */
    for (int i = 0; i < 20; i++)
        assert_int_equal(send(f, "greedy", 4, now + i * 10, &r), ET_INGEST_OVER_BUDGET);
    assert_int_equal(st->over_budget, 21);
    assert_int_equal(log_lines_with(f, "is over its budget", NULL), 1);

    /* When its resend comes after the budget refilled, it is stored and
     * acked: nothing is lost, only paced. */
    assert_int_equal(send(f, "greedy", 4, now + 1000, &r), ET_INGEST_STORED);
    assert_non_null(r.ack);
    assert_int_equal(f->fw->rows.n_batches, 5);

    /* It sends on: stored while the budget lasts, then refused again. */
    assert_int_equal(send(f, "greedy", 5, now + 1000, &r), ET_INGEST_STORED);
    assert_int_equal(send(f, "greedy", 6, now + 1000, &r), ET_INGEST_OVER_BUDGET);
    assert_int_equal(log_lines_with(f, "is over its budget", NULL), 1);
    /* A minute after its line, the next refusal is logged, with the count. */
    for (uint64_t seq = 6; seq <= 8; seq++)
        assert_int_equal(send(f, "greedy", seq, now + 60000, &r), ET_INGEST_STORED);
    assert_int_equal(send(f, "greedy", 9, now + 60000, &r), ET_INGEST_OVER_BUDGET);
    assert_int_equal(log_lines_with(f, "is over its budget", NULL), 2);
    assert_int_equal(log_lines_with(f, "is over its budget", "22 refused since the last"), 1);
}

static void no_budget_by_default(void **state)
{
    struct fake_writer *fw = fake_writer_create();
    struct et_ingest *ig = NULL;
    struct et_ingest_reply r;

    assert_int_equal(et_ingest_create(&ig, &fw->base, CLOUD_ROOT), 0);
    /* 3000 samples at one instant: all stored. */
    for (uint64_t seq = 1; seq <= 20; seq++) {
        assert_int_equal(cloud_ingest_batch(ig, "dev1", seq, 1, 100, &r), 0);
        assert_int_equal(r.kind, ET_INGEST_STORED);
    }
    /* Rates of 0 turn it off again. */
    const struct et_budget_cfg off = { 0 };

    assert_int_equal(et_ingest_set_budget(ig, &off), 0);
    assert_int_equal(et_ingest_stats(ig)->over_budget, 0);
    et_ingest_destroy(ig);
    fake_writer_destroy(fw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buckets_fill_at_their_rate),
        cmocka_unit_test(a_batch_larger_than_the_burst_is_not_starved),
        cmocka_unit_test(one_line_a_minute_per_device),
        cmocka_unit_test(memory_is_bounded),
        cmocka_unit_test(bad_config_is_refused),
        cmocka_unit_test_setup_teardown(a_device_over_budget_is_not_stored_nor_acked, setup,
                                        teardown),
        cmocka_unit_test(no_budget_by_default),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
