/*
 * bme280 against an in-memory register map (platform/fake/i2c.c).
 *
 * Temperature and pressure use the compensation example Bosch publishes
 * for the T/P core the BME280 shares with the BMP280 (BMP280 data sheet,
 * "compensation formula" worked example: dig_T1 27504 ... dig_P9 6000,
 * adc_T 519888 -> t_fine 128422, 25.08 Cel; adc_P 415148 -> 100653.27 Pa).
 * The humidity data sheet section gives no worked example, so humidity is
 * checked against the data sheet's floating-point formula, written out
 * separately below, on the calibration of a real sensor.
 */
#include <errno.h>

#include "drv_test.h"

#define BUS 1
#define ADDR 0x76

/* Calibration of the data sheet example (T, P) and of a real sensor (H). */
static const int T1 = 27504, T2 = 26435, T3 = -1000;
static const int P[10] = { 0, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000 };
static const int H1 = 75, H2 = 362, H3 = 0, H4 = 313, H5 = 50, H6 = 30;

/* The chip model: a forced measurement completes at once and the sensor
 * goes back to sleep, as the real one does after its conversion. */
static void finish_forced(void *ctx, uint8_t regs[256], uint8_t reg, const uint8_t *data,
                          size_t len)
{
    unsigned *starts = ctx;

    if (reg == 0xF4 && len == 1 && (data[0] & 0x03) != 0 && (data[0] & 0x03) != 0x03) {
        regs[0xF4] = (uint8_t)(data[0] & ~0x03);
        (*starts)++;
    }
}

static void put16(uint8_t reg, int v)
{
    uint8_t b[2] = { (uint8_t)(v & 0xff), (uint8_t)((v >> 8) & 0xff) };

    assert_int_equal(et_fake_i2c_set_regs(BUS, ADDR, reg, b, 2), 0);
}

static void set_raw(uint32_t adc_p, uint32_t adc_t, uint16_t adc_h)
{
    uint8_t d[8] = {
        (uint8_t)(adc_p >> 12), (uint8_t)(adc_p >> 4), (uint8_t)((adc_p & 0xf) << 4),
        (uint8_t)(adc_t >> 12), (uint8_t)(adc_t >> 4), (uint8_t)((adc_t & 0xf) << 4),
        (uint8_t)(adc_h >> 8), (uint8_t)(adc_h & 0xff),
    };

    assert_int_equal(et_fake_i2c_set_regs(BUS, ADDR, 0xF7, d, sizeof(d)), 0);
}

static unsigned forced_starts;

static void make_chip(uint8_t chip_id)
{
    uint8_t id = chip_id;
    uint8_t h1 = (uint8_t)H1, h3 = (uint8_t)H3, h6 = (uint8_t)H6;
    uint8_t e4_e6[3] = { (uint8_t)(H4 >> 4), (uint8_t)((H4 & 0xf) | ((H5 & 0xf) << 4)),
                         (uint8_t)(H5 >> 4) };

    assert_int_equal(et_fake_i2c_add(BUS, ADDR), 0);
    assert_int_equal(et_fake_i2c_set_regs(BUS, ADDR, 0xD0, &id, 1), 0);
    put16(0x88, T1);
    put16(0x8A, T2);
    put16(0x8C, T3);
    for (int i = 1; i <= 9; i++)
        put16((uint8_t)(0x8E + 2 * (i - 1)), P[i]);
    assert_int_equal(et_fake_i2c_set_regs(BUS, ADDR, 0xA1, &h1, 1), 0);
    put16(0xE1, H2);
    assert_int_equal(et_fake_i2c_set_regs(BUS, ADDR, 0xE3, &h3, 1), 0);
    assert_int_equal(et_fake_i2c_set_regs(BUS, ADDR, 0xE4, e4_e6, 3), 0);
    assert_int_equal(et_fake_i2c_set_regs(BUS, ADDR, 0xE7, &h6, 1), 0);
    set_raw(415148, 519888, 0x7000);
    forced_starts = 0;
    assert_int_equal(et_fake_i2c_set_write_hook(BUS, ADDR, finish_forced, &forced_starts), 0);
}

/* The data sheet's double-precision humidity formula (section 4.2.3 / 8.1). */
static double humidity_double(double t_fine, double adc_h)
{
    double v = t_fine - 76800.0;

    v = (adc_h - (H4 * 64.0 + H5 / 16384.0 * v)) *
        (H2 / 65536.0 * (1.0 + H6 / 67108864.0 * v * (1.0 + H3 / 67108864.0 * v)));
    v = v * (1.0 - H1 * v / 524288.0);
    return v < 0 ? 0 : v > 100 ? 100 : v;
}

static void datasheet_example_forced_mode(void **state)
{
    const struct drv_kv kv[] = { { "bus", "1" }, { "address", "0x76" } };
    struct et_dev *dev;

    make_chip(0x60);
    dev = dev_open("bme280", kv, 2);
    dev_fetch_ok(dev);
    assert_int_equal(forced_starts, 1);
    assert_float_equal(dev_f64(dev, "temperature"), 25.08, 1e-9);
    /* 64-bit integer result 25767233 / 256 = 100653.25 Pa; data sheet 100653.27 Pa */
    assert_float_equal(dev_f64(dev, "pressure"), 100653.27, 0.05);
    assert_float_equal(dev_f64(dev, "humidity"), humidity_double(128422, 0x7000), 0.01);
    assert_float_equal(dev_f64(dev, "humidity"), 48746 / 1024.0, 1e-9);
    /* Each fetch is one new forced measurement. */
    set_raw(415148, 519888, 0x6000);
    dev_fetch_ok(dev);
    assert_int_equal(forced_starts, 2);
    assert_float_equal(dev_f64(dev, "humidity"), humidity_double(128422, 0x6000), 0.01);
    dev_close(dev, true);
}

static void normal_mode_runs_free_and_fetch_only_reads(void **state)
{
    const struct drv_kv kv[] = { { "mode", "normal" } };
    unsigned writes_after_probe, writes;
    uint8_t ctrl[4];
    struct et_dev *dev;

    make_chip(0x60);
    dev = dev_open("bme280", kv, 1);
    assert_int_equal(et_fake_i2c_get_regs(BUS, ADDR, 0xF2, ctrl, 4), 0);
    assert_int_equal(ctrl[0], 0x01);        /* ctrl_hum: humidity x1 */
    assert_int_equal(ctrl[2], 0x20 | 0x04 | 0x03); /* ctrl_meas: T x1, P x1, normal */
    assert_int_equal(ctrl[3], 0xA0);        /* config: 1000 ms standby, no filter */
    assert_int_equal(et_fake_i2c_counts(BUS, ADDR, NULL, &writes_after_probe), 0);
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "temperature"), 25.08, 1e-9);
    assert_int_equal(et_fake_i2c_counts(BUS, ADDR, NULL, &writes), 0);
    assert_int_equal(writes, writes_after_probe);
    assert_int_equal(forced_starts, 0);
    dev_close(dev, true);
    /* remove() puts a free-running sensor back to sleep. */
    assert_int_equal(et_fake_i2c_get_regs(BUS, ADDR, 0xF4, ctrl, 1), 0);
    assert_int_equal(ctrl[0] & 0x03, 0);
}

static void stuck_measurement_times_out(void **state)
{
    struct et_dev *dev;

    make_chip(0x60);
    assert_int_equal(et_fake_i2c_set_write_hook(BUS, ADDR, NULL, NULL), 0);
    dev = dev_open("bme280", NULL, 0);
    assert_int_equal(dev->drv->fetch(dev), -ETIMEDOUT);
    assert_non_null(strstr(dev->err, "not finished"));
    dev_close(dev, true);
}

static void absent_hardware_is_no_device(void **state)
{
    const struct drv_kv other_addr[] = { { "address", "0x77" } };
    struct et_dev *dev;

    /* No bus at all: /dev/i2c-1 missing. */
    assert_int_equal(dev_probe(&dev, "bme280", NULL, 0), -ENODEV);
    assert_non_null(strstr(dev->err, "/dev/i2c-1"));
    dev_close(dev, false);
    /* The bus is there, nobody answers at 0x77. */
    make_chip(0x60);
    assert_int_equal(dev_probe(&dev, "bme280", other_addr, 1), -ENODEV);
    assert_non_null(strstr(dev->err, "0x77"));
    dev_close(dev, false);
    /* A device that NACKs every read. */
    assert_int_equal(et_fake_i2c_set_fault(BUS, ADDR, ET_FAKE_I2C_NACK_READ), 0);
    assert_int_equal(dev_probe(&dev, "bme280", NULL, 0), -ENODEV);
    dev_close(dev, false);
}

static void wrong_chip_is_named(void **state)
{
    struct et_dev *dev;

    make_chip(0x58);
    assert_int_equal(dev_probe(&dev, "bme280", NULL, 0), -ENODEV);
    assert_non_null(strstr(dev->err, "BMP280"));
    dev_close(dev, false);
    et_fake_i2c_reset();
    make_chip(0x60);
    assert_int_equal(et_fake_i2c_set_fault(BUS, ADDR, ET_FAKE_I2C_CORRUPT), 0);
    assert_int_equal(dev_probe(&dev, "bme280", NULL, 0), -ENODEV);
    assert_non_null(strstr(dev->err, "chip id 0x9f"));
    dev_close(dev, false);
}

static void bus_faults_after_probe_fail_the_fetch(void **state)
{
    struct et_dev *dev;

    make_chip(0x60);
    dev = dev_open("bme280", NULL, 0);
    assert_int_equal(et_fake_i2c_set_fault(BUS, ADDR, ET_FAKE_I2C_CORRUPT), 0);
    assert_int_equal(dev->drv->fetch(dev), -EIO);
    assert_non_null(strstr(dev->err, "chip id"));
    dev_get_nodata(dev, "temperature");
    assert_int_equal(et_fake_i2c_set_fault(BUS, ADDR, ET_FAKE_I2C_NACK_READ), 0);
    assert_int_equal(dev->drv->fetch(dev), -EIO);
    assert_non_null(strstr(dev->err, "no answer at 0x76"));
    assert_int_equal(et_fake_i2c_set_fault(BUS, ADDR, ET_FAKE_I2C_OK), 0);
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "temperature"), 25.08, 1e-9);
    dev_close(dev, true);
}

static void impossible_readings_have_no_data(void **state)
{
    struct et_dev *dev;

    make_chip(0x60);
    dev = dev_open("bme280", NULL, 0);
    set_raw(415148, 0xFFFF0, 0x7000);        /* 187.55 Cel */
    dev_fetch_ok(dev);
    dev_get_nodata(dev, "temperature");
    assert_non_null(strstr(dev->err, "-40..85"));
    dev_get_nodata(dev, "pressure");
    dev_get_nodata(dev, "humidity");
    set_raw(0x80000, 519888, 0x8000);        /* pressure and humidity skipped */
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "temperature"), 25.08, 1e-9);
    dev_get_nodata(dev, "pressure");
    dev_get_nodata(dev, "humidity");
    set_raw(0x80000, 0x80000, 0x8000);       /* nothing measured yet (reset values) */
    dev_fetch_ok(dev);
    dev_get_nodata(dev, "temperature");
    set_raw(1000, 519888, 0x7000);           /* far above 1100 hPa */
    dev_fetch_ok(dev);
    dev_get_nodata(dev, "pressure");
    assert_float_equal(dev_f64(dev, "humidity"), 48746 / 1024.0, 1e-9);
    dev_close(dev, true);
}

/*
 * Values the table refuses never reach probe: the agent refuses the config
 * with the file and line (tests/unit/test_config_collectors.c, driver_key_errors).
 * The chip is there, so nothing but the value is wrong.
 */
static void bad_parameters(void **state)
{
    static const struct drv_kv bad[] = {
        { "address", "0x99" },
        { "address", "seventy" },
        { "mode", "turbo" },
        { "bus", "-1" },
    };

    make_chip(0x60);
    params_refused("bme280", bad, sizeof(bad) / sizeof(bad[0]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(datasheet_example_forced_mode, reset_fake),
        cmocka_unit_test_setup(normal_mode_runs_free_and_fetch_only_reads, reset_fake),
        cmocka_unit_test_setup(stuck_measurement_times_out, reset_fake),
        cmocka_unit_test_setup(absent_hardware_is_no_device, reset_fake),
        cmocka_unit_test_setup(wrong_chip_is_named, reset_fake),
        cmocka_unit_test_setup(bus_faults_after_probe_fail_the_fetch, reset_fake),
        cmocka_unit_test_setup(impossible_readings_have_no_data, reset_fake),
        cmocka_unit_test_setup(bad_parameters, reset_fake),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
