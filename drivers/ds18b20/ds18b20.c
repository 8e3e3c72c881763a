/*
 * ds18b20: Maxim DS18B20 1-Wire thermometers through the kernel's w1
 * driver (dtoverlay=w1-gpio on a Pi). Each sensor is
 * /sys/bus/w1/devices/28-<serial>/w1_slave, whose read runs a conversion
 * (about 750 ms at 12 bits) and prints the scratchpad twice:
 *   72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
 *   72 01 4b 46 7f ff 0e 10 57 t=23125
 * A reading counts only with "YES" (the kernel checked the CRC), a t=
 * inside the sensor's -55..125 Cel range, and not 85000: 85 Cel is the
 * power-on value of the register, which a sensor that browned out returns.
 *
 * Param `id`: one sensor ("28-01193a5f2e6b"), reported as channel
 * "temperature". Without it every 28-* sensor found at probe is a channel
 * named by its serial ("01193a5f2e6b").
 *
 * Each w1_slave read waits for a conversion, so one fetch takes about
 * 750 ms per sensor: with more than one sensor, give each its own instance
 * with `id` to keep every fetch under the driver contract's second.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "edgetel/platform.h"

#define W1_DIR "/sys/bus/w1/devices"
#define DS18B20_FAMILY "28-"
#define DS18B20_POWER_ON_MC 85000
#define DS18B20_MIN_MC (-55000)
#define DS18B20_MAX_MC 125000

struct ds18b20_sensor {
    char id[32];
    double celsius;
    bool valid;
    char why[64];
};

struct ds18b20_priv {
    struct et_chan_table chans;
    struct ds18b20_sensor *sensors;
};

/* What the config gives probe (driver.h). */
struct ds18b20_params {
    char *id;
};

/* The id names a directory under W1_DIR: a family prefix, never a path. */
static const char *id_check(const char *id)
{
    if (strncmp(id, DS18B20_FAMILY, 3) != 0 || strlen(id) > 20 || strchr(id, '/'))
        return "a DS18B20 id like 28-01193a5f2e6b";
    return NULL;
}

static const struct et_key ds18b20_keys[] = {
    { "id", ET_KEY_STRING, ET_KEY_FIELD(struct ds18b20_params, id), NULL,
      .check = id_check,
      .help = "one sensor, e.g. 28-01193a5f2e6b (default: every DS18B20 found)" },
};

/*
 * Parse the two lines of w1_slave. Returns 0 with *mc set, or -ENODATA with
 * the reason in why.
 */
static int parse_w1_slave(const char *text, int64_t *mc, char *why, size_t cap)
{
    const char *cursor = text;
    const char *line1, *line2, *t;
    size_t len1, len2;

    line1 = et_next_line(&cursor, &len1);
    line2 = et_next_line(&cursor, &len2);
    if (!line1 || !line2) {
        snprintf(why, cap, "w1_slave cut short");
        return -ENODATA;
    }
    if (len1 < 3 || memcmp(line1 + len1 - 3, "YES", 3) != 0) {
        snprintf(why, cap, "CRC check failed (wiring or pull-up?)");
        return -ENODATA;
    }
    t = NULL;
    for (size_t i = 0; i + 2 <= len2; i++)
        if (line2[i] == 't' && line2[i + 1] == '=')
            t = line2 + i + 2;
    if (!t || !et_scan_i64(&t, mc) || (t < line2 + len2 && *t != ' ')) {
        snprintf(why, cap, "no t= value");
        return -ENODATA;
    }
    if (*mc == DS18B20_POWER_ON_MC) {
        snprintf(why, cap, "85 Cel power-on value: the sensor reset (power?)");
        return -ENODATA;
    }
    if (*mc < DS18B20_MIN_MC || *mc > DS18B20_MAX_MC) {
        snprintf(why, cap, "%lld mCel outside -55..125 Cel", (long long)*mc);
        return -ENODATA;
    }
    return 0;
}

static void ds18b20_remove(struct et_dev *dev)
{
    struct ds18b20_priv *p = dev->priv;

    free(p->sensors);
    et_chans_free(&p->chans);
    memset(p, 0, sizeof(*p));
}

static int add_sensor(struct ds18b20_priv *p, const char *id, bool single)
{
    struct ds18b20_sensor *grown;
    int ret;

    if (strlen(id) >= sizeof(p->sensors[0].id))
        return 0; /* not a w1 id */
    grown = realloc(p->sensors, (p->chans.n + 1) * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    p->sensors = grown;
    memset(&p->sensors[p->chans.n], 0, sizeof(p->sensors[0]));
    snprintf(p->sensors[p->chans.n].id, sizeof(p->sensors[0].id), "%s", id);
    if (single) {
        ret = et_chans_add(&p->chans, "Cel", ET_TYPE_F64, "temperature");
    } else {
        char serial[32];

        snprintf(serial, sizeof(serial), "%s", id + strlen(DS18B20_FAMILY));
        et_name_sanitize(serial);
        ret = et_chans_add(&p->chans, "Cel", ET_TYPE_F64, "%s", serial);
    }
    return ret < 0 ? ret : 0;
}

static int ds18b20_probe(struct et_dev *dev, const void *params)
{
    const struct ds18b20_params *prm = params;
    struct ds18b20_priv *p = dev->priv;
    const char *id = prm->id;
    struct et_name_list found;
    int ret;

    ret = et_list_names(W1_DIR, DS18B20_FAMILY, &found);
    if (ret == -ENOENT)
        return et_dev_fail(dev, -ENODEV,
                           W1_DIR ": no 1-Wire bus (enable it with dtoverlay=w1-gpio)");
    if (ret < 0)
        return et_dev_fail(dev, ret, W1_DIR ": %s", strerror(-ret));
    for (size_t i = 0; i < found.n && ret == 0; i++)
        if (!id || strcmp(found.names[i], id) == 0)
            ret = add_sensor(p, found.names[i], id != NULL);
    et_name_list_free(&found);
    if (ret == 0 && p->chans.n == 0)
        ret = id ? et_dev_fail(dev, -ENODEV, "DS18B20 %s not on the 1-Wire bus", id)
                 : et_dev_fail(dev, -ENODEV, W1_DIR ": no DS18B20 (28-*) on the 1-Wire bus");
    if (ret < 0) {
        ds18b20_remove(dev);
        return ret;
    }
    et_chans_attach(&p->chans, dev);
    return 0;
}

static int ds18b20_fetch(struct et_dev *dev)
{
    struct ds18b20_priv *p = dev->priv;

    for (size_t i = 0; i < p->chans.n; i++) {
        struct ds18b20_sensor *s = &p->sensors[i];
        char path[96];
        char text[256];
        int64_t mc;
        ssize_t n;

        s->valid = false;
        snprintf(path, sizeof(path), W1_DIR "/%s/w1_slave", s->id);
        n = et_fs_read(path, text, sizeof(text));
        if (n < 0) {
            snprintf(s->why, sizeof(s->why), "%s", strerror((int)-n));
            continue;
        }
        if (parse_w1_slave(text, &mc, s->why, sizeof(s->why)) < 0)
            continue;
        s->celsius = (double)mc / 1000.0;
        s->valid = true;
    }
    return 0;
}

static int ds18b20_get(struct et_dev *dev, unsigned ch, struct et_value *out)
{
    struct ds18b20_priv *p = dev->priv;

    if (ch >= p->chans.n)
        return -EINVAL;
    if (!p->sensors[ch].valid)
        return et_dev_fail(dev, -ENODATA, "DS18B20 %s: %s", p->sensors[ch].id,
                           p->sensors[ch].why);
    *out = et_value_f64(p->sensors[ch].celsius);
    return 0;
}

const struct et_driver et_driver_ds18b20 = {
    .name = "ds18b20",
    .help = "DS18B20 1-Wire thermometers through the kernel w1 driver",
    .priv_size = sizeof(struct ds18b20_priv),
    .params = ds18b20_keys,
    .n_params = sizeof(ds18b20_keys) / sizeof(ds18b20_keys[0]),
    .params_size = sizeof(struct ds18b20_params),
    .probe = ds18b20_probe,
    .fetch = ds18b20_fetch,
    .get = ds18b20_get,
    .remove = ds18b20_remove,
};
