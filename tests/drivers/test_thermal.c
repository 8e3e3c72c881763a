/*
 * thermal: /sys/class/thermal of the fixture boards.
 */
#include <errno.h>

#include "drv_test.h"

static void pi4_and_pi5_cpu_temperature(void **state)
{
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("thermal", NULL, 0);
    assert_int_equal(dev->n_channels, 1); /* cooling_device0 is not a zone */
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "cpu-thermal"), 47.712, 1e-9);
    dev_close(dev, true);
    use_board("pi5");
    dev = dev_open("thermal", NULL, 0);
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "cpu-thermal"), 58.25, 1e-9);
    dev_close(dev, true);
}

static void implausible_and_unreadable_have_no_data(void **state)
{
    static const char *const bad[] = { "-274000\n", "250000\n", "hot\n", "" };
    const char *path = "/sys/class/thermal/thermal_zone0/temp";
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("thermal", NULL, 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(et_fake_fs_set_file(path, bad[i], strlen(bad[i]), 0), 0);
        dev_fetch_ok(dev);
        dev_get_nodata(dev, "cpu-thermal");
        assert_non_null(strstr(dev->err, "thermal_zone0"));
    }
    assert_int_equal(et_fake_fs_set_file(path, NULL, 0, -EIO), 0);
    dev_fetch_ok(dev);
    dev_get_nodata(dev, "cpu-thermal");
    assert_int_equal(et_fake_fs_set_file(path, "-5250\n", 6, 0), 0);
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "cpu-thermal"), -5.25, 1e-9);
    dev_close(dev, true);
}

static void no_zones_is_no_device(void **state)
{
    struct et_dev *dev;

    assert_int_equal(dev_probe(&dev, "thermal", NULL, 0), -ENODEV);
    assert_non_null(strstr(dev->err, "/sys/class/thermal"));
    dev_close(dev, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(pi4_and_pi5_cpu_temperature, reset_fake),
        cmocka_unit_test_setup(implausible_and_unreadable_have_no_data, reset_fake),
        cmocka_unit_test_setup(no_zones_is_no_device, reset_fake),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
