/*
 * hwmon: /sys/class/hwmon of the fixture boards (Pi 5: the RP1 ADC and the
 * fan of the Active Cooler).
 */
#include <errno.h>

#include "drv_test.h"

static void pi4_cpu_temperature_only(void **state)
{
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("hwmon", NULL, 0);
    assert_int_equal(dev->n_channels, 1); /* rpi_volt has only an alarm, no input */
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "cpu_thermal.temp1"), 47.712, 1e-9);
    dev_close(dev, true);
}

static void pi5_adc_and_fan(void **state)
{
    struct et_dev *dev;

    use_board("pi5");
    dev = dev_open("hwmon", NULL, 0);
    assert_int_equal(dev->n_channels, 7);
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "cpu_thermal.temp1"), 58.25, 1e-9);
    assert_float_equal(dev_f64(dev, "rp1_adc.in1"), 1.451, 1e-9);
    assert_string_equal(dev->channels[dev_channel(dev, "rp1_adc.in1")].unit, "V");
    assert_float_equal(dev_f64(dev, "rp1_adc.in4"), 1.48, 1e-9);
    assert_float_equal(dev_f64(dev, "rp1_adc.temp1"), 54.876, 1e-9);
    assert_float_equal(dev_f64(dev, "pwmfan.fan1"), 2932, 1e-9);
    dev_close(dev, true);
}

static void chip_parameter_and_faults(void **state)
{
    const struct drv_kv kv[] = { { "chip", "pwmfan" } };
    const char *fan = "/sys/class/hwmon/hwmon2/fan1_input";
    struct et_dev *dev;

    use_board("pi5");
    dev = dev_open("hwmon", kv, 1);
    assert_int_equal(dev->n_channels, 1);
    assert_int_equal(et_fake_fs_set_file(fan, "-1\n", 3, 0), 0);
    dev_fetch_ok(dev);
    dev_get_nodata(dev, "pwmfan.fan1");
    assert_non_null(strstr(dev->err, "fan1_input"));
    assert_int_equal(et_fake_fs_set_file(fan, NULL, 0, -ENODATA), 0);
    dev_fetch_ok(dev);
    dev_get_nodata(dev, "pwmfan.fan1");
    dev_close(dev, true);
}

static void absent_monitors(void **state)
{
    const struct drv_kv kv[] = { { "chip", "nct6775" } };
    struct et_dev *dev;

    assert_int_equal(dev_probe(&dev, "hwmon", NULL, 0), -ENODEV);
    dev_close(dev, false);
    use_board("pi4");
    assert_int_equal(dev_probe(&dev, "hwmon", kv, 1), -ENODEV);
    assert_non_null(strstr(dev->err, "nct6775"));
    dev_close(dev, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(pi4_cpu_temperature_only, reset_fake),
        cmocka_unit_test_setup(pi5_adc_and_fan, reset_fake),
        cmocka_unit_test_setup(chip_parameter_and_faults, reset_fake),
        cmocka_unit_test_setup(absent_monitors, reset_fake),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
