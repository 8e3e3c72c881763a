/*
 * iio: any Linux Industrial I/O device (/sys/bus/iio/devices/iio:deviceN),
 * so a sensor with a kernel driver (ADCs, environmental sensors, light
 * sensors) needs no driver of its own here.
 *
 * Every in_<channel>_raw becomes a channel "<channel>" with the IIO ABI's
 * value (raw + offset) * scale, where offset and scale come from
 * in_<channel>_offset/_scale or, shared by all channels of a type, from
 * in_<type>_offset/_scale (offset 0 and scale 1 when absent). They are read
 * with every fetch, since writing a new gain changes the scale. A channel
 * the kernel already processes (in_<channel>_input) is taken as it is.
 * IIO's units are converted to the wire's: temp mCel -> Cel,
 * humidityrelative m%RH -> %RH, pressure kPa -> Pa, voltage mV -> V,
 * current mA -> A; other types keep the IIO unit.
 *
 * Param `device`: "iio:device0" or the device's name ("ads1015"); may be
 * left out when the board has exactly one IIO device.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "edgetel/platform.h"

#define IIO_DIR "/sys/bus/iio/devices"

struct iio_unit {
    const char *type;
    const char *unit;
    double factor;
};

/* IIO ABI units (Documentation/ABI/testing/sysfs-bus-iio) to the wire's. */
static const struct iio_unit iio_units[] = {
    { "temp", "Cel", 0.001 },
    { "humidityrelative", "%RH", 0.001 },
    { "pressure", "Pa", 1000.0 },
    { "voltage", "V", 0.001 },
    { "current", "A", 0.001 },
    { "illuminance", "lx", 1.0 },
    { "accel", "m/s2", 1.0 },
    { "anglvel", "rad/s", 1.0 },
    { "magn", "G", 1.0 },
    { "resistance", "Ohm", 1.0 },
    { "concentration", "%", 1.0 },
};

struct iio_chan {
    char base[48];     /* "voltage0", "temp", "accel_x" */
    char type[32];     /* "voltage", "temp", "accel" */
    bool processed;    /* in_<base>_input rather than _raw */
    double factor;
    double value;
    bool valid;
    char why[64];
};

struct iio_priv {
    char dir[96];      /* /sys/bus/iio/devices/iio:deviceN */
    struct et_chan_table chans;
    struct iio_chan *ch;
};

/* What the config gives probe (driver.h). */
struct iio_params {
    char *device;
};

static const struct et_key iio_keys[] = {
    { "device", ET_KEY_STRING, ET_KEY_FIELD(struct iio_params, device), NULL,
      .help = "iio:deviceN or the device's name (default: the only IIO device)" },
};

static void iio_remove(struct et_dev *dev)
{
    struct iio_priv *p = dev->priv;

    free(p->ch);
    et_chans_free(&p->chans);
    memset(p, 0, sizeof(*p));
}

/* Read a sysfs number like "13107", "-240" or "0.125000000". */
static int read_number(const char *dir, const char *file, double *out)
{
    char path[192];
    char text[64];
    const char *q = text;
    ssize_t n;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    n = et_fs_read(path, text, sizeof(text));
    if (n < 0)
        return (int)n;
    if (!et_scan_f64(&q, out))
        return -EINVAL;
    while (*q == '\n' || *q == ' ')
        q++;
    return *q == '\0' ? 0 : -EINVAL;
}

/* Look up in_<base>_<what>, then in_<type>_<what>; def when neither exists. */
static int read_shared(const char *dir, const struct iio_chan *c, const char *what, double def,
                       double *out)
{
    char file[96];
    int ret;

    snprintf(file, sizeof(file), "in_%s_%s", c->base, what);
    ret = read_number(dir, file, out);
    if (ret != -ENOENT)
        return ret;
    snprintf(file, sizeof(file), "in_%s_%s", c->type, what);
    ret = read_number(dir, file, out);
    if (ret != -ENOENT)
        return ret;
    *out = def;
    return 0;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);

    return ls > lx && strcmp(s + ls - lx, suffix) == 0;
}

static struct iio_chan *find_chan(struct iio_priv *p, const char *base)
{
    for (size_t i = 0; i < p->chans.n; i++)
        if (strcmp(p->ch[i].base, base) == 0)
            return &p->ch[i];
    return NULL;
}

static int add_channels(struct et_dev *dev, struct iio_priv *p, const struct et_name_list *files)
{
    for (size_t i = 0; i < files->n; i++) {
        const char *f = files->names[i];
        bool processed = has_suffix(f, "_input");
        struct iio_chan *c;
        const char *unit = "1";
        size_t len;
        int ret;

        if (!processed && !has_suffix(f, "_raw"))
            continue;
        len = strlen(f) - strlen("in_") - (processed ? strlen("_input") : strlen("_raw"));
        if (len == 0 || len >= sizeof(c->base))
            continue;
        {
            char base[sizeof(c->base)];

            memcpy(base, f + 3, len);
            base[len] = '\0';
            c = find_chan(p, base);
            if (c) {
                c->processed = c->processed || processed; /* _input wins over _raw */
                continue;
            }
            c = realloc(p->ch, (p->chans.n + 1) * sizeof(*c));
            if (!c)
                return -ENOMEM;
            p->ch = c;
            c = &p->ch[p->chans.n];
            memset(c, 0, sizeof(*c));
            memcpy(c->base, base, len + 1);
        }
        c->processed = processed;
        len = strspn(c->base, "abcdefghijklmnopqrstuvwxyz");
        snprintf(c->type, sizeof(c->type), "%.*s", (int)len, c->base);
        c->factor = 1.0;
        for (size_t u = 0; u < sizeof(iio_units) / sizeof(iio_units[0]); u++) {
            if (strcmp(iio_units[u].type, c->type) == 0) {
                unit = iio_units[u].unit;
                c->factor = iio_units[u].factor;
            }
        }
        {
            char name[sizeof(c->base)];

            memcpy(name, c->base, sizeof(name));
            et_name_sanitize(name);
            ret = et_chans_add(&p->chans, unit, ET_TYPE_F64, "%s", name);
        }
        if (ret < 0)
            return ret;
    }
    return 0;
}

struct pick_ctx {
    const char *want;
    char found[64];
    size_t count;
    char all[160];
};

/* Pick the device by directory name, by its name file, or the only one. */
static int pick_device(void *ctx, const char *entry)
{
    struct pick_ctx *c = ctx;
    char path[128];
    char name[64] = "";
    size_t used = strlen(c->all);

    if (strncmp(entry, "iio:device", 10) != 0)
        return 0;
    snprintf(path, sizeof(path), IIO_DIR "/%s/name", entry);
    if (et_fs_read(path, name, sizeof(name)) > 0)
        name[strcspn(name, "\n")] = '\0';
    if (used < sizeof(c->all) - 1)
        snprintf(c->all + used, sizeof(c->all) - used, "%s%s (%s)", used ? ", " : "", entry,
                 name[0] ? name : "unnamed");
    if (c->want && strcmp(c->want, entry) != 0 && strcmp(c->want, name) != 0)
        return 0;
    c->count++;
    snprintf(c->found, sizeof(c->found), "%s", entry);
    return 0;
}

static int iio_probe(struct et_dev *dev, const void *params)
{
    const struct iio_params *prm = params;
    struct iio_priv *p = dev->priv;
    struct pick_ctx pick = { .want = prm->device };
    struct et_name_list files;
    int ret;

    ret = et_fs_list(IIO_DIR, pick_device, &pick);
    if (ret == -ENOENT || (ret == 0 && pick.all[0] == '\0'))
        return et_dev_fail(dev, -ENODEV, IIO_DIR ": no IIO devices on this board");
    if (ret < 0)
        return et_dev_fail(dev, ret, IIO_DIR ": %s", strerror(-ret));
    if (pick.count == 0)
        return et_dev_fail(dev, -ENODEV, "IIO device \"%s\" not found; there are: %s", pick.want,
                           pick.all);
    if (pick.count > 1)
        return et_dev_fail(dev, -EINVAL, "%s IIO devices match; set device to one of: %s",
                           pick.want ? "several" : "more than one", pick.all);
    snprintf(p->dir, sizeof(p->dir), IIO_DIR "/%s", pick.found);
    ret = et_list_names(p->dir, "in_", &files);
    if (ret < 0)
        return et_dev_fail(dev, ret == -ENOENT ? -ENODEV : ret, "%s: %s", p->dir, strerror(-ret));
    ret = add_channels(dev, p, &files);
    et_name_list_free(&files);
    if (ret == 0 && p->chans.n == 0)
        ret = et_dev_fail(dev, -ENODEV, "%s: no in_*_raw or in_*_input channels", p->dir);
    if (ret < 0) {
        iio_remove(dev);
        return ret;
    }
    et_chans_attach(&p->chans, dev);
    return 0;
}

static int iio_fetch(struct et_dev *dev)
{
    struct iio_priv *p = dev->priv;

    for (size_t i = 0; i < p->chans.n; i++) {
        struct iio_chan *c = &p->ch[i];
        char file[96];
        double raw, offset = 0, scale = 1;
        int ret;

        c->valid = false;
        snprintf(file, sizeof(file), "in_%s_%s", c->base, c->processed ? "input" : "raw");
        ret = read_number(p->dir, file, &raw);
        if (ret == 0 && !c->processed) {
            ret = read_shared(p->dir, c, "offset", 0.0, &offset);
            if (ret == 0)
                ret = read_shared(p->dir, c, "scale", 1.0, &scale);
        }
        if (ret < 0) {
            snprintf(c->why, sizeof(c->why), "%s", ret == -EINVAL ? "not a number" : strerror(-ret));
            continue;
        }
        c->value = (raw + offset) * scale * c->factor;
        c->valid = isfinite(c->value);
        if (!c->valid)
            snprintf(c->why, sizeof(c->why), "value out of range");
    }
    return 0;
}

static int iio_get(struct et_dev *dev, unsigned ch, struct et_value *out)
{
    struct iio_priv *p = dev->priv;

    if (ch >= p->chans.n)
        return -EINVAL;
    if (!p->ch[ch].valid)
        return et_dev_fail(dev, -ENODATA, "%s in_%s: %s", p->dir, p->ch[ch].base, p->ch[ch].why);
    *out = et_value_f64(p->ch[ch].value);
    return 0;
}

const struct et_driver et_driver_iio = {
    .name = "iio",
    .help = "any Linux IIO device: every in_*_raw channel, offset and scaled",
    .priv_size = sizeof(struct iio_priv),
    .params = iio_keys,
    .n_params = sizeof(iio_keys) / sizeof(iio_keys[0]),
    .params_size = sizeof(struct iio_params),
    .probe = iio_probe,
    .fetch = iio_fetch,
    .get = iio_get,
    .remove = iio_remove,
};
