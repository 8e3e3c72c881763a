/*
 * bme280: Bosch BME280 temperature, pressure and humidity sensor on I2C.
 *
 * Params: bus (N of /dev/i2c-N, default 1), address (0x76 or 0x77,
 * default 0x76), mode ("forced": the sensor sleeps and measures once per
 * fetch, the datasheet's choice for weather monitoring; "normal": it
 * measures every second on its own and fetch reads the latest result).
 * Oversampling is x1 for all three and the IIR filter is off.
 *
 * Compensation is the datasheet's integer code (BST-BME280-DS002 section
 * 4.2.3 and 8.2): temperature in 32 bits, pressure in 64 bits (Q24.8 Pa),
 * humidity in 32 bits (Q22.10 %RH). It relies on >> of a negative number
 * being an arithmetic shift, as it is with GCC and Clang; left shifts of
 * values that may be negative are written as multiplications, which C
 * defines.
 *
 * A reading outside the sensor's operating range (-40..85 Cel,
 * 300..1100 hPa) is a fault, not weather: get() says -ENODATA. The chip id
 * is read again with every measurement so a corrupted bus or a swapped
 * device is reported instead of turned into numbers.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "edgetel/platform.h"

#define BME280_REG_CALIB_TP   0x88  /* 0x88..0xA1: T1..P9, then H1 at 0xA1 */
#define BME280_REG_ID         0xD0
#define BME280_REG_CALIB_H    0xE1  /* 0xE1..0xE7: H2..H6 */
#define BME280_REG_CTRL_HUM   0xF2
#define BME280_REG_CTRL_MEAS  0xF4
#define BME280_REG_CONFIG     0xF5
#define BME280_REG_DATA       0xF7  /* press[3] temp[3] hum[2] */

#define BME280_CHIP_ID        0x60
#define BMP280_CHIP_ID        0x58
#define BME280_OSRS_X1        0x01
#define BME280_MODE_SLEEP     0x00
#define BME280_MODE_FORCED    0x01
#define BME280_MODE_NORMAL    0x03
#define BME280_STANDBY_1000MS (0x05 << 5)
/* ctrl_meas for x1 temperature and pressure oversampling and a mode. */
#define BME280_CTRL_MEAS(mode) ((BME280_OSRS_X1 << 5) | (BME280_OSRS_X1 << 2) | (mode))

/* A forced measurement at x1 takes at most 9.3 ms (datasheet 9.1); poll the
 * mode bits for up to ~100 ms before calling the sensor stuck. */
#define BME280_POLL_TRIES 50
#define BME280_POLL_NS 2000000L

#define BME280_SKIPPED_20BIT 0x80000 /* what a disabled or not-yet-run T/P reads */

enum { BME_TEMPERATURE, BME_PRESSURE, BME_HUMIDITY, BME_N };

static const struct et_channel bme280_channels[] = {
    [BME_TEMPERATURE] = { .name = "temperature", .unit = "Cel", .type = ET_TYPE_F64 },
    [BME_PRESSURE] = { .name = "pressure", .unit = "Pa", .type = ET_TYPE_F64 },
    [BME_HUMIDITY] = { .name = "humidity", .unit = "%RH", .type = ET_TYPE_F64 },
};

/* What the config gives probe (driver.h). */
struct bme280_params {
    int64_t bus;
    int64_t address;
    int mode;
};

enum { BME280_PARAM_FORCED, BME280_PARAM_NORMAL };
static const char *const bme280_modes[] = {
    [BME280_PARAM_FORCED] = "forced", [BME280_PARAM_NORMAL] = "normal", NULL,
};

static const struct et_key bme280_keys[] = {
    { "bus", ET_KEY_INT, ET_KEY_FIELD(struct bme280_params, bus), "1", 0, 255,
      .help = "I2C bus number N of /dev/i2c-N" },
    { "address", ET_KEY_INT, ET_KEY_FIELD(struct bme280_params, address), "0x76", 0x03, 0x77,
      .hex = true, .help = "7-bit I2C address: 0x76 (SDO to ground) or 0x77 (SDO to VDDIO)" },
    { "mode", ET_KEY_ENUM, ET_KEY_FIELD(struct bme280_params, mode), "forced",
      .choices = bme280_modes,
      .help = "forced: measure on each fetch and sleep between; normal: free-running, every second" },
};

struct bme280_calib {
    uint16_t t1;
    int16_t t2, t3;
    uint16_t p1;
    int16_t p2, p3, p4, p5, p6, p7, p8, p9;
    uint8_t h1, h3;
    int16_t h2, h4, h5;
    int8_t h6;
};

struct bme280_priv {
    struct et_i2c *i2c;
    struct bme280_calib cal;
    bool forced;
    int bus;
    unsigned addr;
    double value[BME_N];
    bool valid[BME_N];
    char why[BME_N][64];
};

/* ---- compensation (datasheet integer formulas) ------------------------- */

/* Returns 0.01 Cel; *t_fine carries the fine temperature to P and H.
 * Intermediates are 64-bit so garbage from a noisy bus cannot overflow;
 * for every real reading the result equals the datasheet's 32-bit code. */
static int32_t compensate_t(const struct bme280_calib *c, int32_t adc_t, int32_t *t_fine)
{
    int64_t var1 = (((int64_t)(adc_t >> 3) - (int64_t)c->t1 * 2) * c->t2) >> 11;
    int64_t d = (int64_t)(adc_t >> 4) - c->t1;
    int64_t var2 = (((d * d) >> 12) * c->t3) >> 14;

    *t_fine = (int32_t)(var1 + var2);
    return (int32_t)(((int64_t)*t_fine * 5 + 128) >> 8);
}

/* Returns Pa in Q24.8 (value / 256 = Pa); 0 when the calibration divides by zero. */
static uint32_t compensate_p(const struct bme280_calib *c, int32_t adc_p, int32_t t_fine)
{
    int64_t var1 = (int64_t)t_fine - 128000;
    int64_t var2 = var1 * var1 * c->p6;
    int64_t p;

    var2 += var1 * c->p5 * ((int64_t)1 << 17);
    var2 += (int64_t)c->p4 * ((int64_t)1 << 35);
    var1 = ((var1 * var1 * c->p3) >> 8) + var1 * c->p2 * ((int64_t)1 << 12);
    var1 = ((((int64_t)1 << 47) + var1) * c->p1) >> 33;
    if (var1 == 0)
        return 0;
    p = 1048576 - adc_p;
    p = ((p * ((int64_t)1 << 31) - var2) * 3125) / var1;
    var1 = ((int64_t)c->p9 * (p >> 13) * (p >> 13)) >> 25;
    var2 = ((int64_t)c->p8 * p) >> 19;
    p = ((p + var1 + var2) >> 8) + (int64_t)c->p7 * 16;
    return (uint32_t)p;
}

/* Returns %RH in Q22.10 (value / 1024 = %RH), clamped to 0..100 %RH.
 * 64-bit intermediates, as in compensate_t. */
static uint32_t compensate_h(const struct bme280_calib *c, int32_t adc_h, int32_t t_fine)
{
    int64_t x = (int64_t)t_fine - 76800;
    int64_t scaled_h = ((int64_t)adc_h * 16384 - (int64_t)c->h4 * 1048576 - c->h5 * x + 16384) >> 15;
    int64_t t_term = ((((x * c->h6) >> 10) * (((x * c->h3) >> 11) + 32768)) >> 10) + 2097152;

    x = scaled_h * ((t_term * c->h2 + 8192) >> 14);
    x -= ((((x >> 15) * (x >> 15)) >> 7) * c->h1) >> 4;
    if (x < 0)
        x = 0;
    if (x > 419430400)
        x = 419430400;
    return (uint32_t)(x >> 12);
}

/* ---- the device ----------------------------------------------------------- */

static void parse_calib(struct bme280_calib *c, const uint8_t tp[26], const uint8_t h[7])
{
#define LE16(b, i) ((uint16_t)((b)[i] | ((b)[(i) + 1] << 8)))
    c->t1 = LE16(tp, 0);
    c->t2 = (int16_t)LE16(tp, 2);
    c->t3 = (int16_t)LE16(tp, 4);
    c->p1 = LE16(tp, 6);
    c->p2 = (int16_t)LE16(tp, 8);
    c->p3 = (int16_t)LE16(tp, 10);
    c->p4 = (int16_t)LE16(tp, 12);
    c->p5 = (int16_t)LE16(tp, 14);
    c->p6 = (int16_t)LE16(tp, 16);
    c->p7 = (int16_t)LE16(tp, 18);
    c->p8 = (int16_t)LE16(tp, 20);
    c->p9 = (int16_t)LE16(tp, 22);
    c->h1 = tp[25];
    c->h2 = (int16_t)LE16(h, 0);
    c->h3 = h[2];
    /* H4 and H5 are 12-bit signed values sharing register 0xE5. */
    c->h4 = (int16_t)((int16_t)(int8_t)h[3] * 16 | (h[4] & 0x0f));
    c->h5 = (int16_t)((int16_t)(int8_t)h[5] * 16 | (h[4] >> 4));
    c->h6 = (int8_t)h[6];
#undef LE16
}

static int check_id(struct et_dev *dev, struct bme280_priv *p, int missing_err)
{
    uint8_t id;
    int ret = et_i2c_read_reg(p->i2c, BME280_REG_ID, &id, 1);

    if (ret < 0)
        return et_dev_fail(dev, ret == -ENXIO || ret == -EREMOTEIO ? missing_err : ret,
                           "no answer at 0x%02x on I2C bus %d: %s", p->addr, p->bus,
                           strerror(-ret));
    if (id == BME280_CHIP_ID)
        return 0;
    if (id == BMP280_CHIP_ID)
        return et_dev_fail(dev, missing_err,
                           "0x%02x on I2C bus %d is a BMP280 (chip id 0x58), which has no "
                           "humidity sensor; expected a BME280 (0x60)", p->addr, p->bus);
    return et_dev_fail(dev, missing_err == -ENODEV ? -ENODEV : -EIO,
                       "chip id 0x%02x at 0x%02x on I2C bus %d, expected 0x60 (BME280)", id,
                       p->addr, p->bus);
}

static int write_reg(struct bme280_priv *p, uint8_t reg, uint8_t value)
{
    return et_i2c_write_reg(p->i2c, reg, &value, 1);
}

static void bme280_remove(struct et_dev *dev)
{
    struct bme280_priv *p = dev->priv;

    if (p->i2c && !p->forced)
        write_reg(p, BME280_REG_CTRL_MEAS, BME280_CTRL_MEAS(BME280_MODE_SLEEP));
    et_i2c_close(p->i2c);
    p->i2c = NULL;
}

static int bme280_probe(struct et_dev *dev, const void *params)
{
    const struct bme280_params *prm = params;
    struct bme280_priv *p = dev->priv;
    uint8_t tp[26];
    uint8_t h[7];
    int ret;

    p->bus = (int)prm->bus;
    p->addr = (unsigned)prm->address;
    p->forced = prm->mode == BME280_PARAM_FORCED;
    ret = et_i2c_open(&p->i2c, p->bus, (uint16_t)p->addr);
    if (ret < 0)
        return et_dev_fail(dev, ret == -ENOENT ? -ENODEV : ret,
                           "/dev/i2c-%d: %s (is I2C enabled with dtparam=i2c_arm=on?)", p->bus,
                           strerror(-ret));
    ret = check_id(dev, p, -ENODEV);
    if (ret < 0)
        goto err;
    ret = et_i2c_read_reg(p->i2c, BME280_REG_CALIB_TP, tp, sizeof(tp));
    if (ret == 0)
        ret = et_i2c_read_reg(p->i2c, BME280_REG_CALIB_H, h, sizeof(h));
    if (ret < 0) {
        ret = et_dev_fail(dev, ret, "reading calibration at 0x%02x on I2C bus %d: %s", p->addr,
                          p->bus, strerror(-ret));
        goto err;
    }
    parse_calib(&p->cal, tp, h);
    if (p->cal.t1 == 0 || p->cal.p1 == 0) {
        ret = et_dev_fail(dev, -EIO, "calibration at 0x%02x on I2C bus %d is blank (dig_T1 %u, "
                          "dig_P1 %u)", p->addr, p->bus, p->cal.t1, p->cal.p1);
        goto err;
    }
    /* ctrl_hum only takes effect with the next ctrl_meas write, so it goes first. */
    ret = write_reg(p, BME280_REG_CTRL_HUM, BME280_OSRS_X1);
    if (ret == 0)
        ret = write_reg(p, BME280_REG_CONFIG, BME280_STANDBY_1000MS);
    if (ret == 0)
        ret = write_reg(p, BME280_REG_CTRL_MEAS,
                        BME280_CTRL_MEAS(p->forced ? BME280_MODE_SLEEP : BME280_MODE_NORMAL));
    if (ret < 0) {
        ret = et_dev_fail(dev, ret, "configuring 0x%02x on I2C bus %d: %s", p->addr, p->bus,
                          strerror(-ret));
        goto err;
    }
    return 0;

err:
    et_i2c_close(p->i2c);
    p->i2c = NULL;
    return ret;
}

/* Start one forced measurement and wait until the sensor is back asleep. */
static int measure_forced(struct et_dev *dev, struct bme280_priv *p)
{
    const struct timespec pause = { .tv_sec = 0, .tv_nsec = BME280_POLL_NS };
    int ret;

    ret = write_reg(p, BME280_REG_CTRL_MEAS, BME280_CTRL_MEAS(BME280_MODE_FORCED));
    if (ret < 0)
        return et_dev_fail(dev, ret, "starting a measurement: %s", strerror(-ret));
    for (int i = 0; i < BME280_POLL_TRIES; i++) {
        uint8_t ctrl;

        ret = et_i2c_read_reg(p->i2c, BME280_REG_CTRL_MEAS, &ctrl, 1);
        if (ret < 0)
            return et_dev_fail(dev, ret, "waiting for the measurement: %s", strerror(-ret));
        if ((ctrl & 0x03) == BME280_MODE_SLEEP)
            return 0;
        nanosleep(&pause, NULL);
    }
    return et_dev_fail(dev, -ETIMEDOUT, "measurement not finished after %d ms",
                       (int)(BME280_POLL_TRIES * BME280_POLL_NS / 1000000));
}

static void set_invalid(struct bme280_priv *p, unsigned ch, const char *why)
{
    p->valid[ch] = false;
    snprintf(p->why[ch], sizeof(p->why[ch]), "%s", why);
}

static int bme280_fetch(struct et_dev *dev)
{
    struct bme280_priv *p = dev->priv;
    int32_t adc_t, adc_p, adc_h, t_fine;
    uint8_t d[8];
    int ret;

    memset(p->valid, 0, sizeof(p->valid));
    ret = check_id(dev, p, -EIO);
    if (ret < 0)
        return ret;
    if (p->forced) {
        ret = measure_forced(dev, p);
        if (ret < 0)
            return ret;
    }
    ret = et_i2c_read_reg(p->i2c, BME280_REG_DATA, d, sizeof(d));
    if (ret < 0)
        return et_dev_fail(dev, ret, "reading the measurement: %s", strerror(-ret));
    adc_p = (int32_t)((uint32_t)d[0] << 12 | (uint32_t)d[1] << 4 | d[2] >> 4);
    adc_t = (int32_t)((uint32_t)d[3] << 12 | (uint32_t)d[4] << 4 | d[5] >> 4);
    adc_h = (int32_t)((uint32_t)d[6] << 8 | d[7]);

    if (adc_t == BME280_SKIPPED_20BIT) {
        for (unsigned ch = 0; ch < BME_N; ch++)
            set_invalid(p, ch, "no temperature measured yet (raw 0x80000)");
        return 0;
    }
    p->value[BME_TEMPERATURE] = compensate_t(&p->cal, adc_t, &t_fine) / 100.0;
    if (p->value[BME_TEMPERATURE] < -40.0 || p->value[BME_TEMPERATURE] > 85.0) {
        /* P and H are corrected with this temperature, so they go too. */
        for (unsigned ch = 0; ch < BME_N; ch++)
            set_invalid(p, ch, "temperature outside -40..85 Cel: sensor fault");
        return 0;
    }
    p->valid[BME_TEMPERATURE] = true;

    if (adc_p == BME280_SKIPPED_20BIT) {
        set_invalid(p, BME_PRESSURE, "no pressure measured (raw 0x80000)");
    } else {
        p->value[BME_PRESSURE] = compensate_p(&p->cal, adc_p, t_fine) / 256.0;
        if (p->value[BME_PRESSURE] < 30000.0 || p->value[BME_PRESSURE] > 110000.0)
            set_invalid(p, BME_PRESSURE, "pressure outside 300..1100 hPa: sensor fault");
        else
            p->valid[BME_PRESSURE] = true;
    }
    if (adc_h == 0x8000) {
        set_invalid(p, BME_HUMIDITY, "no humidity measured (raw 0x8000)");
    } else {
        p->value[BME_HUMIDITY] = compensate_h(&p->cal, adc_h, t_fine) / 1024.0;
        p->valid[BME_HUMIDITY] = true;
    }
    return 0;
}

static int bme280_get(struct et_dev *dev, unsigned ch, struct et_value *out)
{
    struct bme280_priv *p = dev->priv;

    if (ch >= BME_N)
        return -EINVAL;
    if (!p->valid[ch])
        return et_dev_fail(dev, -ENODATA, "%s: %s", bme280_channels[ch].name,
                           p->why[ch][0] ? p->why[ch] : "no measurement this round");
    *out = et_value_f64(p->value[ch]);
    return 0;
}

const struct et_driver et_driver_bme280 = {
    .name = "bme280",
    .help = "Bosch BME280 temperature, pressure and humidity over I2C",
    .priv_size = sizeof(struct bme280_priv),
    .channels = bme280_channels,
    .n_channels = BME_N,
    .params = bme280_keys,
    .n_params = sizeof(bme280_keys) / sizeof(bme280_keys[0]),
    .params_size = sizeof(struct bme280_params),
    .probe = bme280_probe,
    .fetch = bme280_fetch,
    .get = bme280_get,
    .remove = bme280_remove,
};
