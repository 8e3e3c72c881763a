/*
 * Time on boards without a real-time clock, driven step by step on the
 * agent bench (agent_bench.h): the fake platform's clock set wrong, stepped
 * by "NTP", and across reboots; and the clock gate that keeps TLS from
 * connecting before the clock is good.
 *
 * What must hold: samples taken before sync go out with their true times
 * (CORRECTED) once the offset is known, also for an earlier boot that
 * synced; a boot that never synced goes out UNCORRECTABLE, never wrong;
 * wall-clock jumps neither burst nor stall collection; with TLS the agent
 * waits for the clock, bounded by clock_wait, collecting meanwhile, and
 * says why it connected late.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "agent_bench.h"
#include "edgetel/codec.h"
#include "et_fake.h"

/* ---- time correction ------------------------------------------------------ */

static void boot_a_year_behind_then_sync_corrects_every_sample(void **state)
{
    struct bench *b = *state;
    struct timed t[512];

    et_fake_time_set(1000000, TRUE_WALL0 - YEAR_MS, false);
    bench_start(b, NULL);
    bench_run_for(b, 3000);                         /* offline, unsynced */
    /* NTP steps the clock to the truth; monotonic time goes on. */
    et_fake_time_set(1003000, TRUE_WALL0 + 3000, true);
    bench_run_for(b, 1000);
    bench_drain_all(b);

    size_t n = bench_timed_samples(b, t, 512);
    size_t corrected = 0, synced = 0;

    assert_true(n >= 35);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(t[i].counter, (int64_t)i);
        /* Every stored time is the true one, to the millisecond. */
        assert_int_equal(t[i].wall, TRUE_OFFSET + t[i].mono);
        if (t[i].mono <= 1003000) {   /* the round at 1003000 ran before the step */
            assert_int_equal(t[i].tq, ET_TQ_CORRECTED);
            corrected++;
        } else {
            assert_int_equal(t[i].tq, ET_TQ_SYNCED);
            synced++;
        }
    }
    assert_true(corrected >= 29);
    assert_true(synced >= 9);
}

static void wall_clock_jumps_neither_burst_nor_stall(void **state)
{
    struct bench *b = *state;
    struct timed t[1024];

    bench_start(b, NULL);
    bench_run_for(b, 5000);
    et_fake_time_set(1005000, TRUE_WALL0 + 5000 + 3600000, true);    /* +1 h */
    bench_run_for(b, 5000);
    et_fake_time_set(1010000, TRUE_WALL0 + 10000 - 3600000, true);   /* -1 h from the truth */
    bench_run_for(b, 5000);
    bench_drain_all(b);

    size_t n = bench_timed_samples(b, t, 1024);

    /* 15 s at 100 ms: 150 rounds (give or take the round at the edge). */
    assert_true(n >= 149 && n <= 151);
    /* The first round runs at the first step (50 ms late); the rest keep
     * the 100 ms grid through both jumps. */
    for (size_t i = 2; i < n; i++) {
        assert_int_equal(t[i].counter, t[i - 1].counter + 1);
        if (t[i].mono - t[i - 1].mono != 100)
            fail_msg("sample %zu at mono %lld, the one before at %lld", i,
                     (long long)t[i].mono, (long long)t[i - 1].mono);
    }
}

static void reboot_before_sync_is_uncorrectable_not_wrong(void **state)
{
    struct bench *b = *state;
    struct timed t[512];
    const uint8_t boot_a[16] = { 0xaa }, boot_b[16] = { 0xbb };

    /* Boot A: never synced, powered off with data in the outbox. */
    et_fake_time_set_boot_id(boot_a);
    et_fake_time_set(1000000, TRUE_WALL0 - YEAR_MS, false);
    bench_start(b, NULL);
    bench_run_for(b, 2000);
    bench_stop(b);

    /* Boot B: monotonic starts again; the clock syncs after a while. */
    et_fake_time_set_boot_id(boot_b);
    et_fake_time_set(20000, TRUE_WALL0 - YEAR_MS, false);
    bench_start(b, NULL);
    bench_run_for(b, 2000);
    et_fake_time_set(22000, TRUE_WALL0 + 100000, true);
    bench_run_for(b, 500);
    bench_drain_all(b);

    size_t n = bench_timed_samples(b, t, 512);
    size_t from_a = 0, from_b = 0;

    for (size_t i = 0; i < n; i++) {
        if (t[i].boot0 == 0xaa) {
            assert_int_equal(t[i].tq, ET_TQ_UNCORRECTABLE);
            from_a++;
        } else {
            assert_int_equal(t[i].boot0, 0xbb);
            assert_true(t[i].tq == ET_TQ_CORRECTED || t[i].tq == ET_TQ_SYNCED);
            assert_int_equal(t[i].wall, TRUE_WALL0 + 100000 - 22000 + t[i].mono);
            from_b++;
        }
    }
    assert_true(from_a >= 19);
    assert_true(from_b >= 24);
}

static void earlier_boot_that_synced_is_corrected_after_reboot(void **state)
{
    struct bench *b = *state;
    struct timed t[512];
    const uint8_t boot_a[16] = { 0xaa }, boot_b[16] = { 0xbb };

    et_fake_time_set_boot_id(boot_a);
    et_fake_time_set(1000000, TRUE_WALL0 - YEAR_MS, false);
    bench_start(b, NULL);
    bench_run_for(b, 2000);                             /* unsynced samples of boot A */
    et_fake_time_set(1002000, TRUE_WALL0 + 2000, true); /* A syncs... */
    bench_run_for(b, 300);
    bench_stop(b);                                      /* ...and loses power, unsent */

    et_fake_time_set_boot_id(boot_b);
    et_fake_time_set(30000, TRUE_WALL0 + 60000, true);
    bench_start(b, NULL);
    bench_drain_all(b);

    size_t n = bench_timed_samples(b, t, 512);
    size_t corrected = 0;

    assert_true(n >= 22);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(t[i].boot0, 0xaa);
        assert_int_equal(t[i].wall, TRUE_OFFSET + t[i].mono);
        corrected += t[i].tq == ET_TQ_CORRECTED;
    }
    assert_true(corrected >= 19);
}


/* ---- waiting for the clock ------------------------------------------------ */

/* TLS settings with files that exist; the fake broker never reads them. */
static void tls_files(struct bench *b, char *extra, size_t cap, const char *more)
{
    const char *names[] = { "ca.pem", "cert.pem", "key.pem" };
    char path[3][128];

    for (int i = 0; i < 3; i++) {
        FILE *f;

        snprintf(path[i], sizeof(path[i]), "%s/%s", b->dir, names[i]);
        f = fopen(path[i], "w");
        assert_non_null(f);
        fputs("-----BEGIN PLACEHOLDER-----\n", f);
        fclose(f);
        chmod(path[i], 0600);
    }
    snprintf(extra, cap, "ca = %s\ncert = %s\nkey = %s\n%s", path[0], path[1], path[2], more);
}

static const char *last_status_reason(struct bench *b)
{
    const struct et_fake_message *p;
    static char reason[160];

    reason[0] = '\0';
    for (size_t i = 0; (p = et_fake_broker_published(b->broker, i)) != NULL; i++) {
        Edgetel__V1__Status *st;

        if (!strstr(p->topic, "/status"))
            continue;
        st = edgetel__v1__status__unpack(NULL, p->len, p->payload);
        assert_non_null(st);
        snprintf(reason, sizeof(reason), "%s", st->reason);
        edgetel__v1__status__free_unpacked(st, NULL);
    }
    return reason;
}

/* An agent with TLS on a board that booted a year behind, clock not synced. */
static void start_unsynced_with_tls(struct bench *b, const char *clock_wait)
{
    char extra[1024];

    et_fake_time_set(1000000, TRUE_WALL0 - YEAR_MS, false);
    tls_files(b, extra, sizeof(extra), clock_wait);
    bench_start(b, extra);
}

static void tls_waits_for_clock_sync_and_collects_meanwhile(void **state)
{
    struct bench *b = *state;

    start_unsynced_with_tls(b, "clock_wait = 10m\n");
    bench_run_for(b, 60000);                 /* a minute without sync: no connect */
    assert_false(et_fake_client_started(bench_client(b)));
    assert_true(bench_outbox_batches(b) >= 250); /* but collecting all along */

    et_fake_time_set(1060000, TRUE_WALL0 + 60000, true);
    bench_run_for(b, 100);
    assert_true(et_fake_client_started(bench_client(b)));       /* connects as soon as the clock is good */
    bench_connect_now(b);
    assert_non_null(strstr(last_status_reason(b), "waited 60 s for the wall clock"));
}

static void clock_wait_is_bounded(void **state)
{
    struct bench *b = *state;

    start_unsynced_with_tls(b, "clock_wait = 30s\n");
    bench_run_for(b, 29000);
    assert_false(et_fake_client_started(bench_client(b)));
    bench_run_for(b, 1100);
    assert_true(et_fake_client_started(bench_client(b)));       /* tries anyway after clock_wait */
    bench_connect_now(b);
    assert_non_null(strstr(last_status_reason(b), "still not synchronised after 30 s"));
}

static void insecure_or_no_wait_connects_at_once(void **state)
{
    struct bench *b = *state;

    start_unsynced_with_tls(b, "clock_wait = 0s\n");
    assert_true(et_fake_client_started(bench_client(b)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(boot_a_year_behind_then_sync_corrects_every_sample, bench_setup, bench_teardown),
        cmocka_unit_test_setup_teardown(wall_clock_jumps_neither_burst_nor_stall, bench_setup, bench_teardown),
        cmocka_unit_test_setup_teardown(reboot_before_sync_is_uncorrectable_not_wrong, bench_setup, bench_teardown),
        cmocka_unit_test_setup_teardown(earlier_boot_that_synced_is_corrected_after_reboot, bench_setup, bench_teardown),
        cmocka_unit_test_setup_teardown(tls_waits_for_clock_sync_and_collects_meanwhile, bench_setup, bench_teardown),
        cmocka_unit_test_setup_teardown(clock_wait_is_bounded, bench_setup, bench_teardown),
        cmocka_unit_test_setup_teardown(insecure_or_no_wait_connects_at_once, bench_setup, bench_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
