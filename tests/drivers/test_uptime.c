/*
 * uptime: /proc/uptime of the fixture boards.
 */
#include <errno.h>

#include "drv_test.h"

static void boards_report_seconds_since_boot(void **state)
{
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("uptime", NULL, 0);
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "seconds"), 86413.27, 1e-9);
    use_board("pi5");
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "seconds"), 4521.09, 1e-9);
    dev_close(dev, true);
}

static void garbage_has_no_data(void **state)
{
    static const char junk[] = "up 3 days\n";
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("uptime", NULL, 0);
    assert_int_equal(et_fake_fs_set_file("/proc/uptime", junk, sizeof(junk) - 1, 0), 0);
    assert_int_equal(dev->drv->fetch(dev), -ENODATA);
    dev_get_nodata(dev, "seconds");
    dev_close(dev, true);
}

static void missing_uptime_is_no_device(void **state)
{
    struct et_dev *dev;

    assert_int_equal(dev_probe(&dev, "uptime", NULL, 0), -ENODEV);
    assert_non_null(strstr(dev->err, "/proc/uptime"));
    dev_close(dev, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(boards_report_seconds_since_boot, reset_fake),
        cmocka_unit_test_setup(garbage_has_no_data, reset_fake),
        cmocka_unit_test_setup(missing_uptime_is_no_device, reset_fake),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
