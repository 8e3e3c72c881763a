/*
 * iio: a BME280 under the kernel's bmp280 driver (processed _input values)
 * and an ADS1015 ADC (raw * scale) on the Pi 4; an HDC1000 (raw, offset,
 * scale) on the Pi 5.
 */
#include <errno.h>

#include "drv_test.h"

static void pi4_two_devices_need_a_choice(void **state)
{
    struct et_dev *dev;

    use_board("pi4");
    assert_int_equal(dev_probe(&dev, "iio", NULL, 0), -EINVAL);
    assert_non_null(strstr(dev->err, "iio:device0 (bme280)"));
    assert_non_null(strstr(dev->err, "iio:device1 (ads1015)"));
    dev_close(dev, false);
}

static void pi4_processed_channels_by_name(void **state)
{
    const struct drv_kv kv[] = { { "device", "bme280" } };
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("iio", kv, 1);
    assert_int_equal(dev->n_channels, 3);
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "temp"), 23.45, 1e-9);
    assert_string_equal(dev->channels[dev_channel(dev, "temp")].unit, "Cel");
    assert_float_equal(dev_f64(dev, "pressure"), 100653.27, 1e-6);      /* kPa -> Pa */
    assert_float_equal(dev_f64(dev, "humidityrelative"), 45.123, 1e-9); /* m%RH -> %RH */
    dev_close(dev, true);
}

static void pi4_adc_raw_times_scale(void **state)
{
    const struct drv_kv kv[] = { { "device", "iio:device1" } };
    const char *scale = "/sys/bus/iio/devices/iio:device1/in_voltage0_scale";
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("iio", kv, 1);
    assert_int_equal(dev->n_channels, 2);
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "voltage0"), 13107 * 0.125 / 1000, 1e-12);
    assert_float_equal(dev_f64(dev, "voltage1"), -240 * 0.125 / 1000, 1e-12);
    /* A new gain written to the ADC changes the scale; the next fetch uses it. */
    assert_int_equal(et_fake_fs_set_file(scale, "0.062500000\n", 12, 0), 0);
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "voltage0"), 13107 * 0.0625 / 1000, 1e-12);
    dev_close(dev, true);
}

static void pi5_offset_before_scale(void **state)
{
    struct et_dev *dev;

    use_board("pi5");
    dev = dev_open("iio", NULL, 0); /* the only device */
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "temp"), (26000 - 15887.515151) * 2.517700195 / 1000, 1e-9);
    assert_float_equal(dev_f64(dev, "humidityrelative"), 30000 * 1.525878906 / 1000, 1e-9);
    dev_close(dev, true);
}

static void failing_read_has_no_data(void **state)
{
    const char *raw = "/sys/bus/iio/devices/iio:device0/in_temp_raw";
    struct et_dev *dev;

    use_board("pi5");
    dev = dev_open("iio", NULL, 0);
    assert_int_equal(et_fake_fs_set_file(raw, NULL, 0, -EIO), 0);
    dev_fetch_ok(dev);
    dev_get_nodata(dev, "temp");
    assert_non_null(strstr(dev->err, "in_temp"));
    assert_float_equal(dev_f64(dev, "humidityrelative"), 30000 * 1.525878906 / 1000, 1e-9);
    assert_int_equal(et_fake_fs_set_file(raw, "lots\n", 5, 0), 0);
    dev_fetch_ok(dev);
    dev_get_nodata(dev, "temp");
    dev_close(dev, true);
}

static void absent_device(void **state)
{
    const struct drv_kv kv[] = { { "device", "ina219" } };
    struct et_dev *dev;

    assert_int_equal(dev_probe(&dev, "iio", NULL, 0), -ENODEV);
    dev_close(dev, false);
    use_board("pi4");
    assert_int_equal(dev_probe(&dev, "iio", kv, 1), -ENODEV);
    assert_non_null(strstr(dev->err, "ina219"));
    assert_non_null(strstr(dev->err, "ads1015"));
    dev_close(dev, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(pi4_two_devices_need_a_choice, reset_fake),
        cmocka_unit_test_setup(pi4_processed_channels_by_name, reset_fake),
        cmocka_unit_test_setup(pi4_adc_raw_times_scale, reset_fake),
        cmocka_unit_test_setup(pi5_offset_before_scale, reset_fake),
        cmocka_unit_test_setup(failing_read_has_no_data, reset_fake),
        cmocka_unit_test_setup(absent_device, reset_fake),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
