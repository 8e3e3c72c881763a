/*
 * Reconnect backoff (common/mqtt/backoff.c) on made-up times and the fake
 * platform's clock: no broker, no sleeps.
 *
 * What must hold: the ceiling doubles from min to the cap of the failure's
 * cause and stays there; every wait lies in [0, ceiling] and the draws
 * spread over the whole range; a successful connect starts again at min;
 * two seeds give two schedules, one seed always the same; nothing
 * overflows with a cap at INT_MAX; and a fleet that lost its broker for
 * longer than the old 60 s cap is back within the cap, at the connect
 * rate docs/ARCHITECTURE.md states.
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
#define UNREACH ET_BACKOFF_UNREACHABLE
#define REFUSED ET_BACKOFF_REFUSED

/* The ceiling after k failures: min doubled k times, capped at cap. */
static int64_t expected_ceiling(int min_ms, int cap_ms, int k)
{
    int64_t d = min_ms;

    for (int i = 0; i < k && d < cap_ms; i++)
        d *= 2;
    return d > cap_ms ? cap_ms : d;
}

static void init_checks_bounds(void **state)
{
    struct et_backoff b;

    assert_int_equal(et_backoff_init(NULL, 1, 2, 2, 1), -EINVAL);
    assert_int_equal(et_backoff_init(&b, 0, 100, 100, 1), -EINVAL);
    assert_int_equal(et_backoff_init(&b, -5, 100, 100, 1), -EINVAL);
    assert_int_equal(et_backoff_init(&b, 200, 100, 300, 1), -EINVAL);
    assert_int_equal(et_backoff_init(&b, 200, 300, 100, 1), -EINVAL);
    assert_int_equal(et_backoff_init(&b, 100, 100, 100, 1), 0);
    assert_int_equal(et_backoff_ceiling_ms(&b, UNREACH), 100);
    assert_int_equal(et_backoff_ceiling_ms(&b, REFUSED), 100);
    /* A refusal cap below the other one is allowed (and odd, but harmless). */
    assert_int_equal(et_backoff_init(&b, 100, 1000, 500, 1), 0);
}

static void ceiling_doubles_from_min_to_the_cap_and_stays(void **state)
{
    const int want[] = { 100, 200, 400, 800, 1000, 1000, 1000 };
    struct et_backoff b;

    assert_int_equal(et_backoff_init(&b, 100, 1000, 1000, 42), 0);
    for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
        int64_t wait;

        assert_int_equal(et_backoff_ceiling_ms(&b, UNREACH), want[k]);
        wait = et_backoff_next(&b, T0, UNREACH) - T0;
        assert_in_range(wait, 0, want[k]);
    }
    /* A min that is not a power of two of the cap still lands on it exactly. */
    assert_int_equal(et_backoff_init(&b, 300, 1000, 1000, 42), 0);
    for (int k = 0; k < 5; k++)
        et_backoff_next(&b, T0, UNREACH);
    assert_int_equal(et_backoff_ceiling_ms(&b, UNREACH), 1000);
}

/*
 * The defaults: 1 s doubling, 5 s while the broker does not answer, 2 min
 * once it refuses. However long the broker has been away, the next wait is
 * at most 5 s; refusals climb on to 2 min and drop back to 5 s as soon as
 * the broker stops answering again.
 */
static void the_cap_follows_the_cause(void **state)
{
    struct et_backoff b;

    assert_int_equal(et_backoff_init(&b, 1000, 5000, 120000, 5), 0);
    for (int k = 0; k < 200; k++) {    /* 200 failures: minutes of outage */
        assert_int_equal(et_backoff_ceiling_ms(&b, UNREACH), expected_ceiling(1000, 5000, k));
        assert_in_range(et_backoff_next(&b, T0, UNREACH) - T0, 0, 5000);
    }
    /* The broker is back but refuses us: the ceiling has grown all along. */
    assert_int_equal(et_backoff_ceiling_ms(&b, REFUSED), 120000);
    assert_in_range(et_backoff_next(&b, T0, REFUSED) - T0, 0, 120000);
    assert_int_equal(et_backoff_ceiling_ms(&b, UNREACH), 5000);

    /* From a fresh start, refusals double 1, 2, 4 ... 64, 120 s. */
    et_backoff_reset(&b);
    for (int k = 0; k < 10; k++) {
        int64_t top = expected_ceiling(1000, 120000, k);

        assert_int_equal(et_backoff_ceiling_ms(&b, REFUSED), top);
        assert_int_equal(et_backoff_ceiling_ms(&b, UNREACH), top < 5000 ? top : 5000);
        assert_in_range(et_backoff_next(&b, T0, REFUSED) - T0, 0, top);
    }
    assert_int_equal(et_backoff_ceiling_ms(&b, REFUSED), 120000);
}

static void full_jitter_spreads_over_the_whole_range(void **state)
{
    enum { DRAWS = 20000, CAP = 1000 };
    size_t quarter[4] = { 0 };
    int64_t lowest = INT64_MAX, highest = 0;
    struct et_backoff b;

    assert_int_equal(et_backoff_init(&b, CAP, CAP, CAP, 7), 0);
    for (int i = 0; i < DRAWS; i++) {
        int64_t wait = et_backoff_next(&b, T0, UNREACH) - T0;

        assert_in_range(wait, 0, CAP);
        lowest = wait < lowest ? wait : lowest;
        highest = wait > highest ? wait : highest;
        quarter[wait == CAP ? 3 : wait * 4 / CAP]++;
    }
    /* Both ends are reached and no quarter of the range is starved or crowded. */
    assert_true(lowest <= 2);
    assert_true(highest >= CAP - 2);
    for (int q = 0; q < 4; q++)
        assert_in_range(quarter[q], DRAWS / 4 * 9 / 10, DRAWS / 4 * 11 / 10);
}

static void reset_starts_again_at_min(void **state)
{
    struct et_backoff b;

    assert_int_equal(et_backoff_init(&b, 50, 60000, 60000, 3), 0);
    for (int k = 0; k < 20; k++)
        et_backoff_next(&b, T0, UNREACH);
    assert_int_equal(et_backoff_ceiling_ms(&b, UNREACH), 60000);
    et_backoff_reset(&b);
    assert_int_equal(et_backoff_ceiling_ms(&b, UNREACH), 50);
    assert_in_range(et_backoff_next(&b, T0, UNREACH) - T0, 0, 50);
    assert_int_equal(et_backoff_ceiling_ms(&b, UNREACH), 100);
}

static void seeds_differ_and_repeat(void **state)
{
    struct et_backoff a, b, c, z;
    int differ = 0, zero_spread = 0;
    int64_t first_z = -1;

    assert_int_equal(et_backoff_init(&a, 1000, 1000, 1000, 1), 0);
    assert_int_equal(et_backoff_init(&b, 1000, 1000, 1000, 2), 0);
    assert_int_equal(et_backoff_init(&c, 1000, 1000, 1000, 1), 0);
    assert_int_equal(et_backoff_init(&z, 1000, 1000, 1000, 0), 0);
    for (int i = 0; i < 50; i++) {
        int64_t wa = et_backoff_next(&a, T0, UNREACH);
        int64_t wb = et_backoff_next(&b, T0, UNREACH);
        int64_t wz = et_backoff_next(&z, T0, UNREACH);

        assert_int_equal(et_backoff_next(&c, T0, UNREACH), wa);  /* one seed, one schedule */
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
    int64_t highest = 0;

    assert_int_equal(et_backoff_init(&b, 1, INT_MAX, INT_MAX, 99), 0);
    for (int k = 0; k < 64; k++) {
        int64_t d = expected_ceiling(1, INT_MAX, k);

        assert_int_equal(et_backoff_ceiling_ms(&b, REFUSED), d);
        assert_in_range(et_backoff_next(&b, T0, REFUSED) - T0, 0, d);
    }
    assert_int_equal(et_backoff_ceiling_ms(&b, UNREACH), INT_MAX);
    assert_int_equal(et_backoff_init(&b, INT_MAX, INT_MAX, INT_MAX, 99), 0);
    for (int k = 0; k < 1000; k++) {
        int64_t wait = et_backoff_next(&b, T0, UNREACH) - T0;

        assert_in_range(wait, 0, INT_MAX);
        highest = wait > highest ? wait : highest;
    }
    assert_true(highest > INT_MAX / 2);  /* the upper half is reached too */
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
    assert_int_equal(et_backoff_init(&b, 100, 400, 400, 11), 0);
    started = attempt = et_time_mono_ms();
    for (int k = 0; k < 8; k++) {
        int64_t at = et_backoff_next(&b, et_time_mono_ms(), UNREACH);
        int64_t d = expected_ceiling(100, 400, k);

        et_fake_time_advance(at - et_time_mono_ms());
        assert_in_range(et_time_mono_ms() - attempt, 0, d);
        attempt = et_time_mono_ms();
    }
    /* 100 + 200 + 6 * 400 at most; the mean is half of that. */
    assert_in_range(et_time_mono_ms() - started, 0, 2700);
    /* Connected: the next loss waits from min again, on the clock as it is now. */
    et_backoff_reset(&b);
    assert_in_range(et_backoff_next(&b, et_time_mono_ms(), UNREACH) - et_time_mono_ms(), 0, 100);
}

/*
 * A fleet at the defaults loses its broker for 300 s (five times the old
 * 60 s cap); every attempt is refused at TCP and takes no time. When the
 * broker listens again, every board is back within the 5 s cap, half of
 * them within C * (1 - 1/sqrt 2) = 1.46 s, and the broker sees at most
 * about 2N/C = 4,000 connects a second of 10,000 boards: 36 % of them in
 * the first second (1 - (1 - 1/C)^2), as docs/ARCHITECTURE.md says.
 */
static void a_fleet_returns_within_the_cap_spread_over_it(void **state)
{
    enum { BOARDS = 10000, OUTAGE_MS = 300000, CAP_MS = 5000 };
    static int64_t back_after[BOARDS];
    size_t per_second[CAP_MS / 1000 + 1] = { 0 };
    int64_t worst = 0;
    size_t within_median = 0;

    for (int i = 0; i < BOARDS; i++) {
        struct et_backoff b;
        /* Each board lost the connection at T0 and retries until one attempt
         * falls after the broker's return. */
        int64_t now = T0;

        assert_int_equal(et_backoff_init(&b, 1000, CAP_MS, 120000, 0x5eed0000u + (uint64_t)i), 0);
        while (now < T0 + OUTAGE_MS)
            now = et_backoff_next(&b, now, UNREACH);
        back_after[i] = now - (T0 + OUTAGE_MS);
        worst = back_after[i] > worst ? back_after[i] : worst;
        per_second[back_after[i] / 1000]++;
        within_median += back_after[i] <= 1464;
    }
    assert_true(worst <= CAP_MS);
    /* Half of them by C (1 - 1/sqrt 2), give or take 2 % of the fleet. */
    assert_in_range(within_median, BOARDS / 2 - BOARDS / 50, BOARDS / 2 + BOARDS / 50);
    /* Second by second: 36 %, 28 %, 20 %, 12 %, 4 % of the fleet, +-1.5 %. */
    for (int s = 0; s < CAP_MS / 1000; s++) {
        double c = CAP_MS / 1000.0;
        double expect = BOARDS * ((1 - s / c) * (1 - s / c) - (1 - (s + 1) / c) * (1 - (s + 1) / c));

        assert_in_range(per_second[s], (size_t)(expect - BOARDS * 0.015),
                        (size_t)(expect + BOARDS * 0.015));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(init_checks_bounds),
        cmocka_unit_test(ceiling_doubles_from_min_to_the_cap_and_stays),
        cmocka_unit_test(the_cap_follows_the_cause),
        cmocka_unit_test(full_jitter_spreads_over_the_whole_range),
        cmocka_unit_test(reset_starts_again_at_min),
        cmocka_unit_test(seeds_differ_and_repeat),
        cmocka_unit_test(no_overflow_at_int_max),
        cmocka_unit_test(retries_on_the_fake_clock),
        cmocka_unit_test(a_fleet_returns_within_the_cap_spread_over_it),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
