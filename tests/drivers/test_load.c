/*
 * load: /proc/loadavg of the fixture boards.
 */
#include <errno.h>

#include "drv_test.h"

static void pi4_and_pi5_load(void **state)
{
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("load", NULL, 0);
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "load1"), 0.52, 1e-12);
    assert_float_equal(dev_f64(dev, "load5"), 0.58, 1e-12);
    assert_float_equal(dev_f64(dev, "load15"), 0.59, 1e-12);
    assert_int_equal(dev_i64(dev, "running"), 2);
    assert_int_equal(dev_i64(dev, "tasks"), 345);
    use_board("pi5");
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "load1"), 1.05, 1e-12);
    assert_int_equal(dev_i64(dev, "tasks"), 412);
    dev_close(dev, true);
}

static void malformed_lines_have_no_data(void **state)
{
    static const char *const bad[] = {
        "0.52 0.58\n",
        "0.52 0.58 0.59 2345 6789\n",
        "0.52 0.58 0.59 400/345 6789\n", /* more running than exist */
        "",
    };
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("load", NULL, 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(et_fake_fs_set_file("/proc/loadavg", bad[i], strlen(bad[i]), 0), 0);
        assert_int_equal(dev->drv->fetch(dev), -ENODATA);
        assert_non_null(strstr(dev->err, "/proc/loadavg"));
        dev_get_nodata(dev, "load1");
    }
    dev_close(dev, true);
}

static void missing_loadavg_is_no_device(void **state)
{
    struct et_dev *dev;

    assert_int_equal(dev_probe(&dev, "load", NULL, 0), -ENODEV);
    dev_close(dev, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(pi4_and_pi5_load, reset_fake),
        cmocka_unit_test_setup(malformed_lines_have_no_data, reset_fake),
        cmocka_unit_test_setup(missing_loadavg_is_no_device, reset_fake),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
