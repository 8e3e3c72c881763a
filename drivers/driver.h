/*
 * The driver vtable, after Zephyr's sensor_driver_api (fetch once, then get
 * per channel) and Linux IIO's const channel tables, and the table of the
 * parameters a driver takes, in the style of the agent's own config table
 * (edgetel/ini.h; fluent-bit's config_map).
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

#include "edgetel/value.h"

struct et_channel {
    const char *name;      /* appended to the instance name: "<instance>.<name>" */
    const char *unit;      /* "Cel", "%", "By", "Pa", "%RH", "s", "1" ... */
    enum et_type type;
};

/* What a parameter's text is parsed as, and the member it lands in. */
enum et_param_type {
    ET_PARAM_INT,       /* int64_t: a decimal whole number */
    ET_PARAM_HEX,       /* int64_t: a whole number as C writes it (0x76, 118); listed in hex */
    ET_PARAM_NUMBER,    /* double: a finite decimal number such as 2.5 or -1e3 */
    ET_PARAM_DURATION,  /* int64_t milliseconds (et_parse_duration_ms: 500ms, 90s, 5m) */
    ET_PARAM_BOOL,      /* bool (et_parse_bool: true/false, yes/no, on/off, 1/0) */
    ET_PARAM_STRING,    /* char *, malloc'd; NULL when not given and without default */
    ET_PARAM_LIST,      /* char *: names separated by commas, "eth0, wlan0" (et_list_has) */
    ET_PARAM_ENUM,      /* int: the index of the value in .choices */
};

struct et_param {
    const char *key;
    enum et_param_type type;
    size_t offset;              /* offsetof(struct, member): use ET_PARAM_FIELD */
    size_t size;                /* sizeof the member, checked against the type */
    const char *def;            /* default in config syntax; NULL: 0, false or NULL */
    /* INT, HEX, NUMBER, DURATION (ms): when min < max the value must lie in
     * [min, max]; without a range any value of the type is taken. */
    int64_t min, max;
    const char *const *choices; /* ENUM: NULL-terminated names */
    /* STRING, LIST: optional check of the text; NULL when it is fine, else
     * what was expected ("a DS18B20 id like 28-01193a5f2e6b"). */
    const char *(*check)(const char *value);
    const char *help;           /* one line for --list-drivers */
};

#define ET_PARAM_FIELD(type, member) offsetof(type, member), sizeof(((type *)0)->member)

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
    const struct et_param *params;          /* keys probe takes besides the core's */
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
