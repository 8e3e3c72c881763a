/*
 * sim: the counter steps by one per fetch from `start`; the sine follows the
 * fake monotonic clock.
 */
#include <errno.h>
#include <math.h>

#include "drv_test.h"

static void counter_starts_at_start_and_steps_by_one(void **state)
{
    const struct drv_kv kv[] = { { "start", "41" } };
    struct et_dev *dev = dev_open("sim", kv, 1);

    for (int64_t want = 41; want < 46; want++) {
        dev_fetch_ok(dev);
        assert_int_equal(dev_i64(dev, "counter"), want);
        /* get() does not advance: the same fetch reads the same value. */
        assert_int_equal(dev_i64(dev, "counter"), want);
    }
    dev_close(dev, true);
}

static void counter_defaults_to_zero(void **state)
{
    struct et_dev *dev = dev_open("sim", NULL, 0);

    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "counter"), 0);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "counter"), 1);
    dev_close(dev, true);
}

static void sine_follows_the_clock(void **state)
{
    const struct drv_kv kv[] = { { "period", "40s" }, { "amplitude", "2.5" } };
    struct et_dev *dev;

    et_fake_time_set(1000000, 1700000000000, true);
    dev = dev_open("sim", kv, 2);
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "sine"), 0.0, 1e-12);
    et_fake_time_advance(10000); /* a quarter period: the peak */
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "sine"), 2.5, 1e-12);
    et_fake_time_advance(10000); /* half: back through zero */
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "sine"), 0.0, 1e-9);
    et_fake_time_advance(10000); /* three quarters: the trough */
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "sine"), -2.5, 1e-12);
    et_fake_time_advance(40000 * 1000 + 5000); /* a thousand periods and an eighth later */
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "sine"), 2.5 * sin(2 * M_PI * 0.875), 1e-9);
    dev_close(dev, true);
}

static void sine_defaults_to_unit_amplitude_and_a_minute(void **state)
{
    struct et_dev *dev = dev_open("sim", NULL, 0);

    et_fake_time_advance(15000);
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "sine"), 1.0, 1e-12);
    dev_close(dev, true);
}

/* Refused by the table, each reason naming its key; the agent adds the
 * file and line (tests/unit/test_config_collectors.c, driver_key_errors). */
static void bad_parameters_are_rejected_naming_their_key(void **state)
{
    static const struct drv_kv bad[] = {
        { "start", "12abc" },
        { "period", "0s" },
        { "period", "5 parsecs" },
        { "amplitude", "loud" },
    };

    params_refused("sim", bad, sizeof(bad) / sizeof(bad[0]));
}

static void get_before_fetch_has_no_data(void **state)
{
    struct et_dev *dev = dev_open("sim", NULL, 0);

    dev_get_nodata(dev, "counter");
    dev_close(dev, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(counter_starts_at_start_and_steps_by_one, reset_fake),
        cmocka_unit_test_setup(counter_defaults_to_zero, reset_fake),
        cmocka_unit_test_setup(sine_follows_the_clock, reset_fake),
        cmocka_unit_test_setup(sine_defaults_to_unit_amplitude_and_a_minute, reset_fake),
        cmocka_unit_test_setup(bad_parameters_are_rejected_naming_their_key, reset_fake),
        cmocka_unit_test_setup(get_before_fetch_has_no_data, reset_fake),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
