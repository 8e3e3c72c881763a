/*
 * Re-timing (cloud/retime.c): the rule for one sample (which quality, the
 * span, the overflow guard), which mapping holds for a batch, and the
 * re-timing of stored samples on an in-memory writer; then the whole path
 * through ingest on a real SQLite store.
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
#include <time.h>

#include <sqlite3.h>

#include "cloud_test.h"
#include "edgetel/codec.h"
#include "edgetel/log.h"
#include "edgetel/retime.h"

#define ROOT CLOUD_ROOT
#define NOW CLOUD_NOW
#define BASE_WALL CLOUD_BASE_WALL

#define setup cloud_fixture_setup
#define teardown cloud_fixture_teardown
#define fake_setup fake_writer_setup
#define fake_teardown fake_writer_teardown

#define SPAN ET_RETIME_SPAN_MS

/* ---- the rule for one sample -------------------------------------------------- */

static void sample_rule(void **state)
{
    struct et_retime rt = {
        .clk = { .boot_id_hex = "aa", .base_wall_ms = 1000000, .base_mono_ms = 500 },
        .known = true,
    };
    int64_t ts = -1;

    assert_true(et_retime_sample(&rt, 700, ET_TQ_UNSYNCED, &ts));
    assert_int_equal(ts, 1000200);
    assert_true(et_retime_sample(&rt, 400, ET_TQ_UNSYNCED, &ts));
    assert_int_equal(ts, 999900);

    /* Only what was measured unsynced, and only with a known mapping. */
    ts = -1;
    assert_false(et_retime_sample(&rt, 700, ET_TQ_SYNCED, &ts));
    assert_false(et_retime_sample(&rt, 700, ET_TQ_CORRECTED, &ts));
    assert_false(et_retime_sample(&rt, 700, ET_TQ_UNCORRECTABLE, &ts));
    assert_false(et_retime_sample(&rt, 700, ET_TQ_UNSPECIFIED, &ts));
    rt.known = false;
    assert_false(et_retime_sample(&rt, 700, ET_TQ_UNSYNCED, &ts));
    assert_int_equal(ts, -1);
}

static void sample_span_limits(void **state)
{
    struct et_retime rt = {
        .clk = { .boot_id_hex = "aa", .base_wall_ms = 1000000, .base_mono_ms = 500 },
        .known = true,
    };
    int64_t ts = -1;

    /* Up to ten years either side of the base, and not a millisecond more. */
    assert_true(et_retime_sample(&rt, 500 + SPAN, ET_TQ_UNSYNCED, &ts));
    assert_int_equal(ts, 1000000 + SPAN);
    assert_true(et_retime_sample(&rt, 500 - SPAN, ET_TQ_UNSYNCED, &ts));
    assert_int_equal(ts, 1000000 - SPAN);
    ts = -1;
    assert_false(et_retime_sample(&rt, 500 + SPAN + 1, ET_TQ_UNSYNCED, &ts));
    assert_false(et_retime_sample(&rt, 500 - SPAN - 1, ET_TQ_UNSYNCED, &ts));
    assert_int_equal(ts, -1);

    /* Garbage pairs do not overflow into a time. */
    assert_false(et_retime_sample(&rt, INT64_MIN, ET_TQ_UNSYNCED, &ts));
    rt.clk.base_mono_ms = INT64_MIN;
    assert_false(et_retime_sample(&rt, INT64_MAX, ET_TQ_UNSYNCED, &ts));
    rt.clk.base_mono_ms = 0;
    rt.clk.base_wall_ms = INT64_MAX - 10;
    assert_false(et_retime_sample(&rt, 11, ET_TQ_UNSYNCED, &ts));
    assert_true(et_retime_sample(&rt, 10, ET_TQ_UNSYNCED, &ts));
    assert_int_equal(ts, INT64_MAX);
}

/* ---- which mapping holds, and re-timing stored samples, on the fake ------------ */

static void clock_for_a_batch(void **state)
{
    struct fake_writer *fw = *state;
    struct et_store_clock batch = { .boot_id_hex = "aa", .base_wall_ms = 7, .base_mono_ms = 8 };
    struct et_store_clock other = { .boot_id_hex = "bb", .base_wall_ms = 1, .base_mono_ms = 2 };
    struct et_retime rt;

    /* A batch of a synchronised clock brings its own, fresh mapping. */
    assert_int_equal(et_retime_clock(&fw->base, "dev1", &batch, true, &rt), 0);
    assert_true(rt.known);
    assert_true(rt.fresh);
    assert_string_equal(rt.clk.boot_id_hex, "aa");
    assert_int_equal(rt.clk.base_wall_ms, 7);
    assert_int_equal(rt.clk.base_mono_ms, 8);
    assert_int_equal(fw->calls[FAKE_CLOCK_GET], 0);

    /* An unsynchronised one takes the stored mapping of its own boot only. */
    assert_int_equal(et_store_device_seen(&fw->base, "dev1", 1, "bb", 0, NULL), 0);
    assert_int_equal(et_store_clock_set(&fw->base, "dev1", &other), 0);
    assert_int_equal(et_retime_clock(&fw->base, "dev1", &batch, false, &rt), 0);
    assert_false(rt.known);
    batch = other;
    batch.base_wall_ms = 99;
    assert_int_equal(et_retime_clock(&fw->base, "dev1", &batch, false, &rt), 0);
    assert_true(rt.known);
    assert_false(rt.fresh);
    assert_int_equal(rt.clk.base_wall_ms, 1);   /* the stored one, not the batch's */

    /* Without a boot id nothing is known, synchronised or not. */
    batch.boot_id_hex[0] = '\0';
    assert_int_equal(et_retime_clock(&fw->base, "dev1", &batch, true, &rt), 0);
    assert_false(rt.known);
    assert_false(rt.fresh);
    assert_int_equal(et_retime_clock(&fw->base, "dev1", &batch, false, &rt), 0);
    assert_false(rt.known);

    fw->fail_at[FAKE_CLOCK_GET] = fw->calls[FAKE_CLOCK_GET] + 1;
    batch = other;
    assert_int_equal(et_retime_clock(&fw->base, "dev1", &batch, false, &rt), -EIO);
}

/* Store a batch of samples at the given monotonic times and qualities. */
static void fake_put(struct fake_writer *fw, const char *device, uint64_t seq, const char *boot,
                     const int64_t *mono, const enum et_time_quality *tq, size_t n)
{
    struct et_store_batch b = { .device = device, .seq = seq, .boot_id_hex = boot };
    int64_t metric, id;

    assert_int_equal(et_store_device_seen(&fw->base, device, 1, boot, n, NULL), 0);
    assert_int_equal(et_store_metric_id(&fw->base, device, "m", "1", &metric), 0);
    for (size_t i = 0; i < n; i++) {
        struct et_store_sample smp = {
            .metric_id = metric, .ts_ms = 100 + (int64_t)i, .mono_ms = mono[i],
            .time_quality = tq[i], .seq = seq,
        };

        assert_int_equal(et_store_insert_sample(&fw->base, &smp, &id), 0);
        if (i == 0)
            b.first_sample_id = id;
        b.last_sample_id = id;
        b.unsynced_samples += tq[i] == ET_TQ_UNSYNCED;
    }
    assert_int_equal(et_store_insert_batch(&fw->base, &b), 0);
}

static void boot_retimes_what_waits(void **state)
{
    struct fake_writer *fw = *state;
    const int64_t mono[] = { 1000, 2000, 3000, 1000 + SPAN + 1 };
    const enum et_time_quality tq[] = {
        ET_TQ_UNSYNCED, ET_TQ_SYNCED, ET_TQ_UNSYNCED, ET_TQ_UNSYNCED,
    };
    struct et_retime rt = {
        .clk = { .boot_id_hex = "aa", .base_wall_ms = 50000, .base_mono_ms = 1000 },
        .known = true, .fresh = true,
    };
    const struct fake_sample *s = fw->rows.samples;
    uint64_t retimed = 99;

    fake_put(fw, "dev1", 1, "aa", mono, tq, 4);   /* samples 1..4 */
    fake_put(fw, "dev1", 2, "bb", mono, tq, 1);   /* 5: another boot */
    fake_put(fw, "dev2", 1, "aa", mono, tq, 1);   /* 6: another device */

    /* Without a fresh mapping there is nothing to do. */
    rt.fresh = false;
    assert_int_equal(et_retime_boot(&fw->base, "dev1", &rt, &retimed), 0);
    assert_int_equal(retimed, 0);
    assert_int_equal(fw->calls[FAKE_UNSYNCED_SAMPLES] + fw->calls[FAKE_CLOCK_SET], 0);

    rt.fresh = true;
    assert_int_equal(et_retime_boot(&fw->base, "dev1", &rt, &retimed), 0);
    assert_int_equal(retimed, 2);
    assert_int_equal(s[0].ts_ms, 50000);
    assert_int_equal(s[0].time_quality, ET_TQ_CORRECTED);
    assert_int_equal(s[1].ts_ms, 101);              /* synced: as it was */
    assert_int_equal(s[1].time_quality, ET_TQ_SYNCED);
    assert_int_equal(s[2].ts_ms, 52000);
    assert_int_equal(s[2].time_quality, ET_TQ_CORRECTED);
    assert_int_equal(s[3].ts_ms, 103);              /* past the span: kept */
    assert_int_equal(s[3].time_quality, ET_TQ_UNSYNCED);
    assert_int_equal(s[4].time_quality, ET_TQ_UNSYNCED);
    assert_int_equal(s[5].time_quality, ET_TQ_UNSYNCED);
    assert_int_equal(fw->rows.batches[0].unsynced, 0);   /* dev1 seq 1: done */
    assert_int_equal(fw->rows.batches[1].unsynced, 1);   /* dev1 seq 2, boot bb */
    assert_int_equal(fw->rows.batches[2].unsynced, 1);   /* dev2 */
    assert_string_equal(fake_device(fw, "dev1")->clock.boot_id_hex, "aa");
    assert_int_equal(fake_device(fw, "dev1")->clock.base_wall_ms, 50000);
    assert_string_equal(fake_device(fw, "dev2")->clock.boot_id_hex, "");

    /* Done is done: a second pass finds nothing waiting. */
    assert_int_equal(et_retime_boot(&fw->base, "dev1", &rt, &retimed), 0);
    assert_int_equal(retimed, 0);
    assert_int_equal(fw->calls[FAKE_SAMPLE_TIME], 2);
}

static void boot_stops_at_a_store_error(void **state)
{
    struct fake_writer *fw = *state;
    const int64_t mono[] = { 1000, 2000 };
    const enum et_time_quality tq[] = { ET_TQ_UNSYNCED, ET_TQ_UNSYNCED };
    struct et_retime rt = {
        .clk = { .boot_id_hex = "aa", .base_wall_ms = 50000, .base_mono_ms = 1000 },
        .known = true, .fresh = true,
    };
    uint64_t retimed = 99;

    fake_put(fw, "dev1", 1, "aa", mono, tq, 2);
    fw->fail_at[FAKE_SAMPLE_TIME] = 2;
    assert_int_equal(et_retime_boot(&fw->base, "dev1", &rt, &retimed), -EIO);
    assert_int_equal(retimed, 0);
    assert_int_equal(fw->calls[FAKE_UNSYNCED_DONE] + fw->calls[FAKE_CLOCK_SET], 0);
    fw->fail_at[FAKE_UNSYNCED_SAMPLES] = fw->calls[FAKE_UNSYNCED_SAMPLES] + 1;
    assert_int_equal(et_retime_boot(&fw->base, "dev1", &rt, &retimed), -EIO);
    assert_int_equal(fw->calls[FAKE_CLOCK_SET], 0);
}

/* ---- through ingest on SQLite ---------------------------------------------- */

/* A batch of n "sim.counter" samples, 1 s apart from base_mono, of one boot. */
static uint8_t *make_timed_batch(const char *device, uint64_t seq, uint8_t boot,
                                 enum et_time_quality tq, int64_t base_wall, int64_t base_mono,
                                 size_t n, size_t *len)
{
    struct et_batch_meta meta = {
        .device_id = device, .seq = seq, .base_mono_ms = base_mono, .base_wall_ms = base_wall,
        .time_quality = tq, .oldest_seq = 1,
    };
    struct et_batch *b;
    struct et_value v;
    uint8_t *buf;

    memset(meta.boot_id, boot, sizeof(meta.boot_id));
    assert_int_equal(et_batch_create(&b), 0);
    for (size_t i = 0; i < n; i++) {
        v = et_value_i64((int64_t)(seq * 100 + i));
        assert_int_equal(et_batch_add(b, "sim.counter", "1", base_mono + (int64_t)i * 1000, &v,
                                      tq), 0);
    }
    assert_int_equal(et_batch_encode(b, &meta, &buf, len), 0);
    et_batch_destroy(b);
    return buf;
}

static void ingest_timed(struct cloud_fixture *f, const char *device, uint64_t seq, uint8_t boot,
                         enum et_time_quality tq, int64_t base_wall, int64_t base_mono,
                         enum et_ingest_kind want)
{
    struct et_ingest_reply r;
    char topic[128];
    size_t len;
    uint8_t *buf = make_timed_batch(device, seq, boot, tq, base_wall, base_mono, 2, &len);

    snprintf(topic, sizeof(topic), ROOT "/v1/%s/telemetry", device);
    assert_int_equal(et_ingest_message(f->ig, topic, buf, len, NOW, &r), 0);
    assert_int_equal(r.kind, want);
    free(buf);
}

/* The (ts_ms, time_quality) of the two samples of (device, seq), read as tail reads. */
struct times_got {
    uint64_t seq;
    int64_t ts[8], mono[8];
    int tq[8];
    int n;
};

static int times_cb(void *ctx, const struct et_store_sample *smp)
{
    struct times_got *got = ctx;

    if (smp->seq != got->seq)
        return 0;
    assert_true(got->n < 8);
    got->ts[got->n] = smp->ts_ms;
    got->mono[got->n] = smp->mono_ms;
    got->tq[got->n] = (int)smp->time_quality;
    got->n++;
    return 0;
}

static void assert_times(struct cloud_fixture *f, const char *device, uint64_t seq, int64_t ts0,
                         enum et_time_quality tq)
{
    const struct timespec pause = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };
    struct times_got got = { .seq = seq };

    /* Tail may show a PostgreSQL row a moment late (cloud_tail_settle). */
    for (int tries = 0; tries < 1000; tries++) {
        got.n = 0;
        assert_int_equal(et_store_samples_after(f->r, 0, device, 1000, times_cb, &got), 0);
        if (got.n >= 2)
            break;
        nanosleep(&pause, NULL);
    }
    assert_int_equal(got.n, 2);
    for (int i = 0; i < got.n; i++) {
        /* In mono order: the rows of a batch come in the order they were sent. */
        int k = got.n == 2 && got.mono[0] > got.mono[1] ? 1 - i : i;

        if (got.ts[k] != ts0 + i * 1000 || got.tq[k] != (int)tq)
            fail_msg("%s seq %llu sample %d: ts %lld quality %d, want ts %lld quality %d",
                     device, (unsigned long long)seq, i, (long long)got.ts[k], got.tq[k],
                     (long long)(ts0 + i * 1000), (int)tq);
    }
}

static void test_retime_unsynced_boot(void **state)
{
    struct cloud_fixture *f = *state;
    /* Before sync the board believes it is early 1970. */
    const int64_t bogus = 100000;

    /* Boot 0xaa, clock not yet synchronised; dev2 happens to share the boot id. */
    ingest_timed(f, "dev1", 1, 0xaa, ET_TQ_UNSYNCED, bogus, 50000, ET_INGEST_STORED);
    ingest_timed(f, "dev2", 1, 0xaa, ET_TQ_UNSYNCED, bogus, 50000, ET_INGEST_STORED);
    assert_times(f, "dev1", 1, bogus, ET_TQ_UNSYNCED);

    /* The clock syncs: mono 60000 is BASE_WALL. Batch 1 moves to its true time. */
    ingest_timed(f, "dev1", 2, 0xaa, ET_TQ_SYNCED, BASE_WALL, 60000, ET_INGEST_STORED);
    assert_times(f, "dev1", 1, BASE_WALL - 10000, ET_TQ_CORRECTED);
    assert_times(f, "dev1", 2, BASE_WALL, ET_TQ_SYNCED);
    assert_int_equal(et_ingest_stats(f->ig)->retimed, 2);
    /* Another device's samples are its own, whatever its boot id. */
    assert_times(f, "dev2", 1, bogus, ET_TQ_UNSYNCED);

    /* Backlog of the same boot drains later: corrected on arrival. */
    ingest_timed(f, "dev1", 3, 0xaa, ET_TQ_UNSYNCED, bogus + 5000, 55000, ET_INGEST_STORED);
    assert_times(f, "dev1", 3, BASE_WALL - 5000, ET_TQ_CORRECTED);
    assert_int_equal(et_ingest_stats(f->ig)->retimed, 4);

    /* A new boot with no sync yet: nothing is known about its clock. */
    ingest_timed(f, "dev1", 4, 0xbb, ET_TQ_UNSYNCED, bogus, 3000, ET_INGEST_STORED);
    assert_times(f, "dev1", 4, bogus, ET_TQ_UNSYNCED);

    /* Re-sent batches change nothing. */
    ingest_timed(f, "dev1", 1, 0xaa, ET_TQ_UNSYNCED, bogus, 50000, ET_INGEST_DUPLICATE);
    assert_times(f, "dev1", 1, BASE_WALL - 10000, ET_TQ_CORRECTED);

    /* Boot 0xbb syncs; 0xaa's corrected times stay as they are. */
    ingest_timed(f, "dev1", 5, 0xbb, ET_TQ_SYNCED, BASE_WALL + 100000, 13000, ET_INGEST_STORED);
    assert_times(f, "dev1", 4, BASE_WALL + 90000, ET_TQ_CORRECTED);
    assert_times(f, "dev1", 1, BASE_WALL - 10000, ET_TQ_CORRECTED);
    assert_int_equal(et_ingest_stats(f->ig)->retimed, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sample_rule),
        cmocka_unit_test(sample_span_limits),
        cmocka_unit_test_setup_teardown(clock_for_a_batch, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(boot_retimes_what_waits, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(boot_stops_at_a_store_error, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_retime_unsynced_boot, setup, teardown),
    };

    et_log_init("test_retime", ET_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
