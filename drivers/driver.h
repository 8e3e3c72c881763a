/*
 * The driver vtable, after Zephyr's sensor_driver_api (fetch once, then get
 * per channel) and Linux IIO's const channel tables, and the table of the
 * parameters a driver takes: typed key rows (edgetel/keys.h), the same
 * rows as the agent's own config table (fluent-bit's config_map).
 *
 * Contract:
 * - The core allocates and zeroes priv_size bytes for dev->priv before probe.
 * - Parameters: the keys of a [collector NAME] section besides the core's
 *   (type, interval, enabled, tags) are the driver's, described by its
 *   params table. The agent parses them with that table when it loads the
 *   config, so a bad value is refused with its file and line before any
 *   hardware is touched (drivers/params.h has the functions).
 * - probe() receives that parsed struct: params_size bytes, every key of
 *   the table set to its value or its default, each value of its type and
 *   within its range; NULL when params_size is 0. It is borrowed for the
 *   call: copy what fetch() needs into priv. probe() checks the hardware
 *   (and what only the hardware can tell about a parameter). It returns 0,
 *   -EINVAL for a parameter the hardware rules out (after writing the
 *   reason into dev->err), -ENODEV when the device is absent, or another
 *   -errno. It may replace dev->channels and dev->n_channels with a table
 *   it allocated (per core, per interface...); remove() frees it.
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
#include <stdint.h>
#include <stdio.h>

#include "edgetel/keys.h"
#include "edgetel/value.h"

struct et_channel {
    const char *name;      /* appended to the instance name: "<instance>.<name>" */
    const char *unit;      /* "Cel", "%", "By", "Pa", "%RH", "s", "1" ... */
    enum et_type type;
    /*
     * The step the channel measures in, in its unit (Linux IIO's scale):
     * 0.01 for a percentage read to two places, 1024 for a size the kernel
     * gives in KiB, 512 for sectors. The wire sends value / resolution as
     * a small integer (edgetel/value.h). 0: none declared; an F64 then
     * travels whole. A value off its I64 step still travels exactly.
     */
    double resolution;
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
    const char *help;                       /* one line for --list-drivers */
    size_t priv_size;
    const struct et_channel *channels;
    size_t n_channels;
    const struct et_key *params;            /* keys probe takes besides the core's */
    size_t n_params;
    size_t params_size;                     /* the struct params fills; 0 without params */
    int (*probe)(struct et_dev *dev, const void *params);
    int (*fetch)(struct et_dev *dev);
    int (*get)(struct et_dev *dev, unsigned ch, struct et_value *out);
    void (*remove)(struct et_dev *dev);     /* optional */
};

/* The generated registry (drivers/registry.c in the build tree). */
extern const struct et_driver *const et_drivers[];
extern const size_t et_n_drivers;

/** Find a built-in driver by name, or NULL. */
const struct et_driver *et_driver_find(const char *name);

/**
 * Print every built-in driver for a person (edgetel-agent --list-drivers):
 * its name and help line, then each key of its params table with type,
 * range or choices, default and help.
 * @return 0, or -EIO when out could not be written.
 */
int et_drivers_print(FILE *out);

#endif
