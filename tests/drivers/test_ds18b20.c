/*
 * ds18b20: w1_slave files of the fixture boards. The Pi 4 has one good
 * sensor and one that reset (85 Cel); the Pi 5 one with a failed CRC and
 * one in a freezer.
 */
#include <errno.h>

#include "drv_test.h"

static void pi4_all_sensors_power_on_value_rejected(void **state)
{
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("ds18b20", NULL, 0);
    assert_int_equal(dev->n_channels, 2);
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "01193a5f2e6b"), 21.562, 1e-9);
    dev_get_nodata(dev, "0316a2796fff");
    assert_non_null(strstr(dev->err, "85 Cel"));
    assert_non_null(strstr(dev->err, "28-0316a2796fff"));
    dev_close(dev, true);
}

static void pi5_crc_failure_and_below_zero(void **state)
{
    struct et_dev *dev;

    use_board("pi5");
    dev = dev_open("ds18b20", NULL, 0);
    dev_fetch_ok(dev);
    dev_get_nodata(dev, "3c01d607d1a4");
    assert_non_null(strstr(dev->err, "CRC"));
    assert_float_equal(dev_f64(dev, "3c01d607e0b7"), -23.062, 1e-9);
    dev_close(dev, true);
}

static void one_sensor_by_id(void **state)
{
    const struct drv_kv kv[] = { { "id", "28-01193a5f2e6b" } };
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("ds18b20", kv, 1);
    assert_int_equal(dev->n_channels, 1);
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "temperature"), 21.562, 1e-9);
    dev_close(dev, true);
}

static void implausible_and_malformed_readings(void **state)
{
    static const char *const bad[] = {
        "00 08 4b 46 7f ff 0c 10 ff : crc=ff YES\n00 08 4b 46 7f ff 0c 10 ff t=128000\n",
        "59 01 4b 46 7f ff 0c 10 6e : crc=6e YES\n",
        "59 01 4b 46 7f ff 0c 10 6e : crc=6e YES\n59 01 4b 46 7f ff 0c 10 6e t=\n",
        "59 01 4b 46 7f ff 0c 10 6e : crc=6e YES\n59 01 4b 46 7f ff 0c 10 6e t=21x\n",
    };
    const char *path = "/sys/bus/w1/devices/28-01193a5f2e6b/w1_slave";
    const struct drv_kv kv[] = { { "id", "28-01193a5f2e6b" } };
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("ds18b20", kv, 1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(et_fake_fs_set_file(path, bad[i], strlen(bad[i]), 0), 0);
        dev_fetch_ok(dev);
        dev_get_nodata(dev, "temperature");
    }
    /* A sensor unplugged after probe: the kernel removes its directory. */
    assert_int_equal(et_fake_fs_set_file(path, NULL, 0, -ENOENT), 0);
    dev_fetch_ok(dev);
    dev_get_nodata(dev, "temperature");
    dev_close(dev, true);
}

static void absent_bus_sensor_and_bad_id(void **state)
{
    const struct drv_kv gone[] = { { "id", "28-000000000000" } };
    const struct drv_kv bad[] = { { "id", "../../etc" }, { "id", "28-../../../etc" } };
    struct et_dev *dev;

    assert_int_equal(dev_probe(&dev, "ds18b20", NULL, 0), -ENODEV);
    assert_non_null(strstr(dev->err, "w1-gpio"));
    dev_close(dev, false);
    use_board("pi4");
    assert_int_equal(dev_probe(&dev, "ds18b20", gone, 1), -ENODEV);
    assert_non_null(strstr(dev->err, "28-000000000000"));
    dev_close(dev, false);
    /* An id that is no DS18B20 id, or a path, is refused before probe. */
    params_refused("ds18b20", bad, sizeof(bad) / sizeof(bad[0]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(pi4_all_sensors_power_on_value_rejected, reset_fake),
        cmocka_unit_test_setup(pi5_crc_failure_and_below_zero, reset_fake),
        cmocka_unit_test_setup(one_sensor_by_id, reset_fake),
        cmocka_unit_test_setup(implausible_and_malformed_readings, reset_fake),
        cmocka_unit_test_setup(absent_bus_sensor_and_bad_id, reset_fake),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
