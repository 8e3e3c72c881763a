/*
 * The generated registry and the helpers of drivers/common.c. The params
 * tables and --list-drivers are in test_params.c.
 */
#include <errno.h>
#include <stdint.h>

#include "common.h"
#include "drv_test.h"

static void registry_lists_every_enabled_driver(void **state)
{
    static const char *const names[] = {
        "bme280", "cpu", "disk", "diskio", "ds18b20", "hwmon", "iio", "load",
        "memory", "net", "procs", "self", "sim", "thermal", "throttle", "uptime",
    };
    size_t found = 0;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const struct et_driver *drv = et_driver_find(names[i]);

        if (!drv)
            continue; /* turned off with -DET_DRIVER_<NAME>=OFF */
        found++;
        assert_string_equal(drv->name, names[i]);
        assert_non_null(drv->help);
        assert_non_null(drv->probe);
        assert_non_null(drv->fetch);
        assert_non_null(drv->get);
        /* A driver either has a static table or builds one in probe. */
        assert_true((drv->channels != NULL) == (drv->n_channels > 0));
    }
    assert_int_equal(found, et_n_drivers);
    assert_null(et_drivers[et_n_drivers]);
    assert_null(et_driver_find("nosuchdriver"));
    assert_null(et_driver_find(""));
}

static void scanners(void **state)
{
    const char *p = "  18446744073709551615 18446744073709551616";
    uint64_t u;
    int64_t i;
    double f;
    char word[6];

    assert_true(et_scan_u64(&p, &u));
    assert_true(u == UINT64_MAX);
    assert_false(et_scan_u64(&p, &u)); /* one past: refused, cursor kept */
    assert_string_equal(p, " 18446744073709551616");
    p = "-9223372036854775808 -9223372036854775809";
    assert_true(et_scan_i64(&p, &i));
    assert_true(i == INT64_MIN);
    assert_false(et_scan_i64(&p, &i));
    p = "0.52 -3.25 .5";
    assert_true(et_scan_f64(&p, &f));
    assert_float_equal(f, 0.52, 1e-15);
    assert_true(et_scan_f64(&p, &f));
    assert_float_equal(f, -3.25, 1e-15);
    assert_false(et_scan_f64(&p, &f));
    p = "eth0 toolongword";
    assert_true(et_scan_word(&p, word, sizeof(word)));
    assert_string_equal(word, "eth0");
    assert_false(et_scan_word(&p, word, sizeof(word)));
    assert_true(et_parse_i64_text("-5250\n", &i));
    assert_int_equal(i, -5250);
    assert_false(et_parse_i64_text("52x\n", &i));
    assert_false(et_parse_i64_text("\n", &i));
}

static void lines_lists_and_names(void **state)
{
    const char *cursor = "first\n\nthird";
    const char *line;
    size_t len;
    char name[] = "/media/pi/USB STICK.1";

    line = et_next_line(&cursor, &len);
    assert_int_equal(len, 5);
    assert_true(et_line_starts(line, len, "fir"));
    assert_false(et_line_starts(line, len, "firstly"));
    line = et_next_line(&cursor, &len);
    assert_int_equal(len, 0);
    line = et_next_line(&cursor, &len);
    assert_int_equal(len, 5);
    assert_memory_equal(line, "third", 5);
    assert_null(et_next_line(&cursor, &len));

    assert_true(et_list_has("lo, eth0 ,wlan0", "eth0"));
    assert_true(et_list_has("lo, eth0 ,wlan0", "wlan0"));
    assert_false(et_list_has("lo, eth0 ,wlan0", "eth"));
    assert_false(et_list_has(NULL, "eth0"));

    et_name_sanitize(name);
    assert_string_equal(name, "_media_pi_USB_STICK_1");
}

static void channel_tables_and_failure_messages(void **state)
{
    struct et_chan_table t = { 0 };
    struct et_dev dev = { 0 };

    for (int i = 0; i < 20; i++)
        assert_int_equal(et_chans_add(&t, "%", ET_TYPE_F64, "core%d.usage", i), i);
    assert_string_equal(t.ch[17].name, "core17.usage");
    et_chans_attach(&t, &dev);
    assert_int_equal(dev.n_channels, 20);
    et_chans_free(&t);
    assert_int_equal(t.n, 0);
    et_chans_free(NULL);

    assert_int_equal(et_dev_fail(&dev, -ENODEV, "%s: %d", "thing", 42), -ENODEV);
    assert_string_equal(dev.err, "thing: 42");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(registry_lists_every_enabled_driver),
        cmocka_unit_test(scanners),
        cmocka_unit_test(lines_lists_and_names),
        cmocka_unit_test(channel_tables_and_failure_messages),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
