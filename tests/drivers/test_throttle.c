/*
 * throttle: the firmware's get_throttled word on a Pi 4 (soc:firmware) and
 * a Pi 5 (soc@107c000000:firmware).
 */
#include <errno.h>

#include "drv_test.h"

static bool flag(struct et_dev *dev, const char *name)
{
    return dev_get(dev, name, ET_TYPE_BOOL).u.b;
}

static void pi4_all_clear(void **state)
{
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("throttle", NULL, 0);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "raw"), 0);
    assert_false(flag(dev, "under_voltage"));
    assert_false(flag(dev, "throttled"));
    assert_false(flag(dev, "under_voltage_occurred"));
    dev_close(dev, true);
}

static void pi5_under_voltage_now_and_since_boot(void **state)
{
    struct et_dev *dev;

    use_board("pi5");
    dev = dev_open("throttle", NULL, 0);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "raw"), 0x50005);
    assert_true(flag(dev, "under_voltage"));
    assert_false(flag(dev, "freq_capped"));
    assert_true(flag(dev, "throttled"));
    assert_false(flag(dev, "soft_temp_limit"));
    assert_true(flag(dev, "under_voltage_occurred"));
    assert_false(flag(dev, "freq_capped_occurred"));
    assert_true(flag(dev, "throttled_occurred"));
    assert_false(flag(dev, "soft_temp_limit_occurred"));
    dev_close(dev, true);
}

static void soft_temp_limit_word(void **state)
{
    const char *path = "/sys/devices/platform/soc/soc:firmware/get_throttled";
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("throttle", NULL, 0);
    assert_int_equal(et_fake_fs_set_file(path, "0x80008\n", 8, 0), 0);
    dev_fetch_ok(dev);
    assert_true(flag(dev, "soft_temp_limit"));
    assert_true(flag(dev, "soft_temp_limit_occurred"));
    assert_false(flag(dev, "under_voltage"));
    assert_int_equal(et_fake_fs_set_file(path, "zz\n", 3, 0), 0);
    assert_int_equal(dev->drv->fetch(dev), -ENODATA);
    dev_get_nodata(dev, "raw");
    dev_close(dev, true);
}

static void other_boards_say_why_once(void **state)
{
    struct et_dev *dev;

    assert_int_equal(dev_probe(&dev, "throttle", NULL, 0), -ENODEV);
    assert_non_null(strstr(dev->err, "get_throttled"));
    assert_non_null(strstr(dev->err, "not a Raspberry Pi"));
    dev_close(dev, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(pi4_all_clear, reset_fake),
        cmocka_unit_test_setup(pi5_under_voltage_now_and_since_boot, reset_fake),
        cmocka_unit_test_setup(soft_temp_limit_word, reset_fake),
        cmocka_unit_test_setup(other_boards_say_why_once, reset_fake),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
