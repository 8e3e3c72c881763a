/*
 * thermal: every kernel thermal zone (/sys/class/thermal/thermal_zoneN),
 * one channel per zone named after its type ("cpu-thermal"; a second zone of the same type gets "_N" of its zone
 * number). temp is in millidegrees Celsius; a reading outside
 * -60..200 Cel is a sensor fault, not a temperature, and reports no data.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "edgetel/platform.h"

#define THERMAL_DIR "/sys/class/thermal"
#define THERMAL_MIN_MC (-60000)
#define THERMAL_MAX_MC 200000

struct thermal_zone {
    char path[96];      /* .../thermal_zoneN/temp */
    double celsius;
    bool valid;
};

struct thermal_priv {
    struct et_chan_table chans;
    struct thermal_zone *zones;
};

static void thermal_remove(struct et_dev *dev)
{
    struct thermal_priv *p = dev->priv;

    free(p->zones);
    et_chans_free(&p->chans);
    memset(p, 0, sizeof(*p));
}

static bool name_taken(const struct et_chan_table *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->ch[i].name, name) == 0)
            return true;
    return false;
}

static int thermal_probe(struct et_dev *dev, const void *params)
{
    struct thermal_priv *p = dev->priv;
    struct et_name_list zones;
    int ret;

    ret = et_list_names(THERMAL_DIR, "thermal_zone", &zones);
    if (ret == -ENOENT || (ret == 0 && zones.n == 0)) {
        et_name_list_free(&zones);
        return et_dev_fail(dev, -ENODEV, THERMAL_DIR ": no thermal zones on this board");
    }
    if (ret < 0)
        return et_dev_fail(dev, ret, THERMAL_DIR ": %s", strerror(-ret));
    p->zones = calloc(zones.n, sizeof(*p->zones));
    if (!p->zones) {
        ret = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < zones.n; i++) {
        struct thermal_zone *z = &p->zones[p->chans.n];
        char path[128];
        char type[64];
        char name[96];
        ssize_t n;

        snprintf(path, sizeof(path), THERMAL_DIR "/%s/type", zones.names[i]);
        n = et_fs_read(path, type, sizeof(type));
        if (n <= 0)
            continue; /* a zone being torn down */
        type[strcspn(type, "\n")] = '\0';
        et_name_sanitize(type);
        snprintf(name, sizeof(name), "%s", type);
        if (name_taken(&p->chans, name))
            snprintf(name, sizeof(name), "%s_%s", type, zones.names[i] + strlen("thermal_zone"));
        snprintf(z->path, sizeof(z->path), THERMAL_DIR "/%s/temp", zones.names[i]);
        ret = et_chans_add(&p->chans, "Cel", ET_TYPE_F64, "%s", name);
        if (ret < 0)
            goto out;
        p->chans.ch[ret].resolution = 0.001;   /* sysfs counts millidegrees */
    }
    if (p->chans.n == 0) {
        ret = et_dev_fail(dev, -ENODEV, THERMAL_DIR ": no readable thermal zone type");
        goto out;
    }
    et_chans_attach(&p->chans, dev);
    ret = 0;
out:
    et_name_list_free(&zones);
    if (ret < 0)
        thermal_remove(dev);
    return ret;
}

static int thermal_fetch(struct et_dev *dev)
{
    struct thermal_priv *p = dev->priv;

    for (size_t i = 0; i < p->chans.n; i++) {
        struct thermal_zone *z = &p->zones[i];
        char text[32];
        int64_t mc;

        z->valid = et_fs_read(z->path, text, sizeof(text)) > 0 && et_parse_i64_text(text, &mc) &&
                   mc >= THERMAL_MIN_MC && mc <= THERMAL_MAX_MC;
        if (z->valid)
            z->celsius = (double)mc / 1000.0;
    }
    return 0;
}

static int thermal_get(struct et_dev *dev, unsigned ch, struct et_value *out)
{
    struct thermal_priv *p = dev->priv;

    if (ch >= p->chans.n)
        return -EINVAL;
    if (!p->zones[ch].valid)
        return et_dev_fail(dev, -ENODATA, "%s: unreadable or outside -60..200 Cel",
                           p->zones[ch].path);
    *out = et_value_f64(p->zones[ch].celsius);
    return 0;
}

const struct et_driver et_driver_thermal = {
    .name = "thermal",
    .help = "temperature of every kernel thermal zone (/sys/class/thermal)",
    .priv_size = sizeof(struct thermal_priv),
    .probe = thermal_probe,
    .fetch = thermal_fetch,
    .get = thermal_get,
    .remove = thermal_remove,
};
