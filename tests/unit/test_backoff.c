/*
 * Reconnect backoff (common/mqtt/backoff.c) on made-up times and the fake
 * platform's clock: no broker, no sleeps.
 *
 * What must hold: the delay doubles from min to max and stays there; every
 * wait lies in [delay/2, delay] and the draws spread over that range; a
 * successful connect starts again at min; two seeds give two schedules, one
 * seed always the same; nothing overflows with max at INT_MAX.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "edgetel/backoff.h"
#include "edgetel/platform.h"
#include "et_fake.h"

#define T0 1000000      /* an arbitrary "now" in ms */

/* The delay after k failures: min doubled k times, capped at max. */
static int64_t expected_delay(int min_ms, int max_ms, int k)
{
    int64_t d = min_ms;

    for (int i = 0; i < k && d < max_ms; i++)
        d *= 2;
    return d > max_ms ? max_ms : d;
}

static void init_checks_bounds(void **state)
{
    struct et_backoff b;

    assert_int_equal(et_backoff_init(NULL, 1, 2, 1), -EINVAL);
    assert_int_equal(et_backoff_init(&b, 0, 100, 1), -EINVAL);
    assert_int_equal(et_backoff_init(&b, -5, 100, 1), -EINVAL);
    assert_int_equal(et_backoff_init(&b, 200, 100, 1), -EINVAL);
    assert_int_equal(et_backoff_init(&b, 100, 100, 1), 0);
    assert_int_equal(et_backoff_delay_ms(&b), 100);
}

static void delay_doubles_from_min_to_max_and_stays(void **state)
{
    const int want[] = { 100, 200, 400, 800, 1000, 1000, 1000 };
    struct et_backoff b;

    assert_int_equal(et_backoff_init(&b, 100, 1000, 42), 0);
    for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
        int64_t wait;

        assert_int_equal(et_backoff_delay_ms(&b), want[k]);
        wait = et_backoff_next(&b, T0) - T0;
        assert_in_range(wait, want[k] / 2, want[k]);
    }
    /* A min that is not a power of two of max still lands on max exactly. */
    assert_int_equal(et_backoff_init(&b, 300, 1000, 42), 0);
    for (int k = 0; k < 5; k++)
        et_backoff_next(&b, T0);
    assert_int_equal(et_backoff_delay_ms(&b), 1000);
}

static void jitter_stays_in_bounds_and_spreads(void **state)
{
    enum { DRAWS = 20000, DELAY = 1000 };
    size_t quarter[4] = { 0 };
    int64_t lowest = INT64_MAX, highest = 0;
    struct et_backoff b;

    assert_int_equal(et_backoff_init(&b, DELAY, DELAY, 7), 0);
    for (int i = 0; i < DRAWS; i++) {
        int64_t wait = et_backoff_next(&b, T0) - T0;

        assert_in_range(wait, DELAY / 2, DELAY);
        lowest = wait < lowest ? wait : lowest;
        highest = wait > highest ? wait : highest;
        quarter[wait == DELAY ? 3 : (wait - DELAY / 2) * 4 / (DELAY / 2)]++;
    }
    /* Both ends are reached and no quarter of the range is starved or crowded. */
    assert_true(lowest <= DELAY / 2 + 2);
    assert_true(highest >= DELAY - 2);
    for (int q = 0; q < 4; q++)
        assert_in_range(quarter[q], DRAWS / 4 * 9 / 10, DRAWS / 4 * 11 / 10);
}

static void reset_starts_again_at_min(void **state)
{
    struct et_backoff b;

    assert_int_equal(et_backoff_init(&b, 50, 60000, 3), 0);
    for (int k = 0; k < 20; k++)
        et_backoff_next(&b, T0);
    assert_int_equal(et_backoff_delay_ms(&b), 60000);
    et_backoff_reset(&b);
    assert_int_equal(et_backoff_delay_ms(&b), 50);
    assert_in_range(et_backoff_next(&b, T0) - T0, 25, 50);
    assert_int_equal(et_backoff_delay_ms(&b), 100);
}

static void seeds_differ_and_repeat(void **state)
{
    struct et_backoff a, b, c, z;
    int differ = 0, zero_spread = 0;
    int64_t first_z = -1;

    assert_int_equal(et_backoff_init(&a, 1000, 1000, 1), 0);
    assert_int_equal(et_backoff_init(&b, 1000, 1000, 2), 0);
    assert_int_equal(et_backoff_init(&c, 1000, 1000, 1), 0);
    assert_int_equal(et_backoff_init(&z, 1000, 1000, 0), 0);
    for (int i = 0; i < 50; i++) {
        int64_t wa = et_backoff_next(&a, T0);
        int64_t wb = et_backoff_next(&b, T0);
        int64_t wz = et_backoff_next(&z, T0);

        assert_int_equal(et_backoff_next(&c, T0), wa);   /* one seed, one schedule */
        differ += wa != wb;
        if (first_z < 0)
            first_z = wz;
        zero_spread += wz != first_z;                    /* seed 0 is not stuck */
    }
    assert_true(differ >= 45);
    assert_true(zero_spread >= 45);
}

static void no_overflow_at_int_max(void **state)
{
    struct et_backoff b;

    assert_int_equal(et_backoff_init(&b, 1, INT_MAX, 99), 0);
    for (int k = 0; k < 64; k++) {
        int64_t d = expected_delay(1, INT_MAX, k);
        int64_t wait;

        assert_int_equal(et_backoff_delay_ms(&b), d);
        wait = et_backoff_next(&b, T0) - T0;
        assert_in_range(wait, d / 2, d);
    }
    assert_int_equal(et_backoff_delay_ms(&b), INT_MAX);
    assert_int_equal(et_backoff_init(&b, INT_MAX, INT_MAX, 99), 0);
    for (int k = 0; k < 1000; k++)
        assert_in_range(et_backoff_next(&b, T0) - T0, INT_MAX / 2, INT_MAX);
}

/*
 * A client whose every attempt fails, on the fake clock: it tries again
 * exactly when the backoff says, and the gaps follow the schedule.
 */
static void retries_on_the_fake_clock(void **state)
{
    struct et_backoff b;
    int64_t started, attempt;

    et_fake_reset();
    et_fake_time_set(T0, 1795000000000LL, true);
    assert_int_equal(et_backoff_init(&b, 100, 400, 11), 0);
    started = attempt = et_time_mono_ms();
    for (int k = 0; k < 8; k++) {
        int64_t at = et_backoff_next(&b, et_time_mono_ms());
        int64_t d = expected_delay(100, 400, k);

        et_fake_time_advance(at - et_time_mono_ms());
        assert_in_range(et_time_mono_ms() - attempt, d / 2, d);
        attempt = et_time_mono_ms();
    }
    /* 100 + 200 + 6 * 400 at most, half of that at least. */
    assert_in_range(et_time_mono_ms() - started, 2700 / 2, 2700);
    /* Connected: the next loss waits from min again, on the clock as it is now. */
    et_backoff_reset(&b);
    assert_in_range(et_backoff_next(&b, et_time_mono_ms()) - et_time_mono_ms(), 50, 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(init_checks_bounds),
        cmocka_unit_test(delay_doubles_from_min_to_max_and_stays),
        cmocka_unit_test(jitter_stays_in_bounds_and_spreads),
        cmocka_unit_test(reset_starts_again_at_min),
        cmocka_unit_test(seeds_differ_and_repeat),
        cmocka_unit_test(no_overflow_at_int_max),
        cmocka_unit_test(retries_on_the_fake_clock),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
