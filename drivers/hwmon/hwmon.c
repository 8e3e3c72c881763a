/*
 * hwmon: the kernel's hardware monitors (/sys/class/hwmon/hwmonN), one
 * channel per *_input file, named "<chip>.<sensor>" after the chip's name
 * file: "cpu_thermal.temp1", "rp1_adc.in1", "pwmfan.fan1". A second chip
 * with the same name gets "_N" of its hwmon number. Units converted from
 * the hwmon ABI: temp mCel -> Cel, in mV -> V, curr mA -> A,
 * power uW -> W, fan rpm as is. A temperature outside -60..200 Cel or a
 * negative fan speed is a sensor fault and reports no data.
 * Param `chip`: only chips with this name.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "edgetel/platform.h"

#define HWMON_DIR "/sys/class/hwmon"

struct hwmon_kind {
    const char *prefix;
    const char *unit;
    double factor;
    double min, max;   /* plausible range after conversion */
};

static const struct hwmon_kind hwmon_kinds[] = {
    { "temp", "Cel", 0.001, -60.0, 200.0 },
    { "in", "V", 0.001, -1000.0, 1000.0 },
    { "curr", "A", 0.001, -1000.0, 1000.0 },
    { "power", "W", 0.000001, 0.0, 100000.0 },
    { "fan", "rpm", 1.0, 0.0, 100000.0 },
};

struct hwmon_sensor {
    char path[96];
    const struct hwmon_kind *kind;
    double value;
    bool valid;
    char why[48];
};

struct hwmon_priv {
    struct et_chan_table chans;
    struct hwmon_sensor *sensors;
};

/* What the config gives probe (driver.h). */
struct hwmon_params {
    char *chip;
};

static const struct et_key hwmon_keys[] = {
    { "chip", ET_KEY_STRING, ET_KEY_FIELD(struct hwmon_params, chip), NULL,
      .help = "only hwmon chips with this name, e.g. cpu_thermal (default: all)" },
};

/* "temp1_input" -> kind temp; false for anything else (temp1_max, pwm1...). */
static const struct hwmon_kind *sensor_kind(const char *file)
{
    for (size_t k = 0; k < sizeof(hwmon_kinds) / sizeof(hwmon_kinds[0]); k++) {
        size_t len = strlen(hwmon_kinds[k].prefix);
        const char *q = file + len;

        if (strncmp(file, hwmon_kinds[k].prefix, len) != 0 || *q < '0' || *q > '9')
            continue;
        q += strspn(q, "0123456789");
        if (strcmp(q, "_input") == 0)
            return &hwmon_kinds[k];
    }
    return NULL;
}

static void hwmon_remove(struct et_dev *dev)
{
    struct hwmon_priv *p = dev->priv;

    free(p->sensors);
    et_chans_free(&p->chans);
    memset(p, 0, sizeof(*p));
}

static int add_chip(struct hwmon_priv *p, const char *entry, const char *label)
{
    struct et_name_list files;
    char dir[64];
    int ret;

    snprintf(dir, sizeof(dir), HWMON_DIR "/%s", entry);
    ret = et_list_names(dir, "", &files);
    if (ret < 0)
        return 0; /* a chip going away while we look */
    for (size_t i = 0; i < files.n; i++) {
        const struct hwmon_kind *kind = sensor_kind(files.names[i]);
        struct hwmon_sensor *grown;
        size_t base_len;

        if (!kind)
            continue;
        grown = realloc(p->sensors, (p->chans.n + 1) * sizeof(*grown));
        if (!grown) {
            ret = -ENOMEM;
            break;
        }
        p->sensors = grown;
        memset(&p->sensors[p->chans.n], 0, sizeof(p->sensors[0]));
        snprintf(p->sensors[p->chans.n].path, sizeof(p->sensors[0].path), "%s/%s", dir,
                 files.names[i]);
        p->sensors[p->chans.n].kind = kind;
        base_len = strlen(files.names[i]) - strlen("_input");
        ret = et_chans_add(&p->chans, kind->unit, ET_TYPE_F64, "%s.%.*s", label, (int)base_len,
                           files.names[i]);
        if (ret < 0)
            break;
        ret = 0;
    }
    et_name_list_free(&files);
    return ret;
}

static int hwmon_probe(struct et_dev *dev, const void *params)
{
    const struct hwmon_params *prm = params;
    struct hwmon_priv *p = dev->priv;
    const char *want = prm->chip;
    struct et_name_list chips;
    char (*names)[48] = NULL;
    int ret;

    ret = et_list_names(HWMON_DIR, "hwmon", &chips);
    if (ret == -ENOENT)
        return et_dev_fail(dev, -ENODEV, HWMON_DIR ": no hardware monitors on this board");
    if (ret < 0)
        return et_dev_fail(dev, ret, HWMON_DIR ": %s", strerror(-ret));
    names = calloc(chips.n ? chips.n : 1, sizeof(*names));
    if (!names) {
        ret = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < chips.n; i++) {
        char path[96];
        char label[64];
        ssize_t n;

        snprintf(path, sizeof(path), HWMON_DIR "/%s/name", chips.names[i]);
        n = et_fs_read(path, names[i], sizeof(names[i]));
        if (n <= 0)
            continue;
        names[i][strcspn(names[i], "\n")] = '\0';
        if (want && strcmp(want, names[i]) != 0)
            continue;
        snprintf(label, sizeof(label), "%s", names[i]);
        for (size_t j = 0; j < i; j++)
            if (strcmp(names[j], names[i]) == 0)
                snprintf(label, sizeof(label), "%s_%s", names[i], chips.names[i] + strlen("hwmon"));
        et_name_sanitize(label);
        ret = add_chip(p, chips.names[i], label);
        if (ret < 0)
            goto out;
    }
    if (p->chans.n == 0) {
        ret = want ? et_dev_fail(dev, -ENODEV, HWMON_DIR ": no chip named \"%s\" with sensors", want)
                   : et_dev_fail(dev, -ENODEV, HWMON_DIR ": no temp, in, curr, power or fan inputs");
        goto out;
    }
    et_chans_attach(&p->chans, dev);
out:
    free(names);
    et_name_list_free(&chips);
    if (ret < 0)
        hwmon_remove(dev);
    return ret;
}

static int hwmon_fetch(struct et_dev *dev)
{
    struct hwmon_priv *p = dev->priv;

    for (size_t i = 0; i < p->chans.n; i++) {
        struct hwmon_sensor *s = &p->sensors[i];
        char text[32];
        int64_t raw;
        ssize_t n;

        s->valid = false;
        n = et_fs_read(s->path, text, sizeof(text));
        if (n < 0) {
            snprintf(s->why, sizeof(s->why), "%s", strerror((int)-n));
            continue;
        }
        if (!et_parse_i64_text(text, &raw)) {
            snprintf(s->why, sizeof(s->why), "not a whole number");
            continue;
        }
        s->value = (double)raw * s->kind->factor;
        if (s->value < s->kind->min || s->value > s->kind->max) {
            snprintf(s->why, sizeof(s->why), "%g %s is not plausible", s->value, s->kind->unit);
            continue;
        }
        s->valid = true;
    }
    return 0;
}

static int hwmon_get(struct et_dev *dev, unsigned ch, struct et_value *out)
{
    struct hwmon_priv *p = dev->priv;

    if (ch >= p->chans.n)
        return -EINVAL;
    if (!p->sensors[ch].valid)
        return et_dev_fail(dev, -ENODATA, "%s: %s", p->sensors[ch].path, p->sensors[ch].why);
    *out = et_value_f64(p->sensors[ch].value);
    return 0;
}

const struct et_driver et_driver_hwmon = {
    .name = "hwmon",
    .help = "kernel hardware monitors: temperatures, voltages, currents, power, fans",
    .priv_size = sizeof(struct hwmon_priv),
    .params = hwmon_keys,
    .n_params = sizeof(hwmon_keys) / sizeof(hwmon_keys[0]),
    .params_size = sizeof(struct hwmon_params),
    .probe = hwmon_probe,
    .fetch = hwmon_fetch,
    .get = hwmon_get,
    .remove = hwmon_remove,
};
