/*
 * The driver vtable, after Zephyr's sensor_driver_api (fetch once, then get
 * per channel) and Linux IIO's const channel tables.
 *
 * Contract:
 * - The core allocates and zeroes priv_size bytes for dev->priv before probe.
 * - probe() checks params and the hardware. It returns 0, -EINVAL for a bad
 *   parameter (after writing the reason into dev->err), -ENODEV when the
 *   device is absent, or another -errno. It may replace dev->channels and
 *   dev->n_channels with a table it allocated (per core, per interface...);
 *   remove() frees it.
 * - fetch() reads the hardware once and caches the readings in priv. It
 *   must not block for more than a second. -errno on failure, with the
 *   reason in dev->err.
 * - get() returns the cached reading of one channel: 0, or -ENODATA when
 *   that channel has no value this round (a gone interface, a value that
 *   failed its range check; the reason in dev->err).
 * - remove() is optional and undoes probe().
 * Drivers never open files or buses themselves: they go through
 * edgetel/platform.h so every driver runs against platform/fake/ in tests.
 * The struct grows only at the end.
 */
#ifndef EDGETEL_DRIVER_H
#define EDGETEL_DRIVER_H

#include <stddef.h>

#include "edgetel/value.h"

struct et_channel {
    const char *name;      /* appended to the instance name: "<instance>.<name>" */
    const char *unit;      /* "Cel", "%", "By", "Pa", "%RH", "s", "1" ... */
    enum et_type type;
};

/* One `key = value` of the driver's config section; lives as long as the config. */
struct et_kv {
    const char *key;
    const char *value;
    int line;
};

struct et_param {
    const char *key;
    const char *help;
};

struct et_dev {
    const struct et_driver *drv;
    const char *name;                  /* instance name from config, e.g. "cpu" */
    void *priv;
    const struct et_channel *channels; /* drv->channels unless probe replaced it */
    size_t n_channels;
    char err[160];                     /* last reason for a person */
};

struct et_driver {
    const char *name;                       /* matches `type = bme280` in config */
    const char *help;                       /* one line for --help */
    size_t priv_size;
    const struct et_channel *channels;
    size_t n_channels;
    const struct et_param *params;          /* keys probe accepts besides the core's */
    size_t n_params;
    int (*probe)(struct et_dev *dev, const struct et_kv *params, size_t n_params);
    int (*fetch)(struct et_dev *dev);
    int (*get)(struct et_dev *dev, unsigned ch, struct et_value *out);
    void (*remove)(struct et_dev *dev);     /* optional */
};

/* The generated registry (drivers/registry.c in the build tree). */
extern const struct et_driver *const et_drivers[];
extern const size_t et_n_drivers;

/** Find a built-in driver by name, or NULL. */
const struct et_driver *et_driver_find(const char *name);

/** Look a parameter up by key; NULL when absent. */
const char *et_kv_get(const struct et_kv *kv, size_t n, const char *key);

#endif
