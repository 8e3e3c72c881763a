/*
 * Shared by the driver tests: set up a device the way the agent core does
 * (find the driver in the generated registry, zero its priv, parse its
 * params as the config loader does, probe), point
 * the fake platform at a fixture board, and read channels by name.
 */
#ifndef EDGETEL_TESTS_DRV_TEST_H
#define EDGETEL_TESTS_DRV_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "driver.h"
#include "et_fake.h"
#include "params.h"

#define FIXTURES ET_SOURCE_DIR "/tests/drivers/fixtures"

/* Point the fake file system at tests/drivers/fixtures/<board>. */
static inline void use_board(const char *board)
{
    char dir[1024];

    snprintf(dir, sizeof(dir), "%s/%s", FIXTURES, board);
    assert_int_equal(et_fake_fs_set_root(dir), 0);
}

/* A driver key as a config file gives it. */
struct drv_kv {
    const char *key;
    const char *value;
};

/*
 * The params struct the agent's config loader makes for these keys:
 * defaults, then each key parsed by the driver's table; every key must be
 * accepted. Free it with et_params_destroy().
 */
static inline void *drv_params(const struct et_driver *drv, const struct drv_kv *kv, size_t n)
{
    void *params;
    char why[256] = "";
    int ret = et_params_create(drv, &params, why, sizeof(why));

    if (ret != 0)
        fail_msg("%s params: %d: %s", drv->name, ret, why);
    for (size_t i = 0; i < n; i++) {
        ret = et_params_set(drv, params, kv[i].key, kv[i].value, why, sizeof(why));
        if (ret != 0)
            fail_msg("%s %s = %s: %d: %s", drv->name, kv[i].key, kv[i].value, ret, why);
    }
    return params;
}

/* Values the driver's table must each refuse with -EINVAL and a reason naming the key. */
static inline void params_refused(const char *driver, const struct drv_kv *bad, size_t n)
{
    const struct et_driver *drv = et_driver_find(driver);
    void *params = drv_params(drv, NULL, 0);

    for (size_t i = 0; i < n; i++) {
        char why[256] = "";

        assert_int_equal(et_params_set(drv, params, bad[i].key, bad[i].value, why, sizeof(why)),
                         -EINVAL);
        if (!strstr(why, bad[i].key))
            fail_msg("%s %s = %s: reason without the key: %s", driver, bad[i].key, bad[i].value,
                     why);
    }
    et_params_destroy(drv, params);
}

/*
 * Allocate and probe a device with the params struct made from kv, which
 * probe only borrows: it is freed right after. Returns probe's result,
 * *out set either way.
 */
static inline int dev_probe(struct et_dev **out, const char *driver, const struct drv_kv *kv,
                            size_t n)
{
    const struct et_driver *drv = et_driver_find(driver);
    struct et_dev *dev;
    void *params;
    int ret;

    assert_non_null(drv);
    dev = calloc(1, sizeof(*dev));
    assert_non_null(dev);
    dev->drv = drv;
    dev->name = driver;
    dev->priv = drv->priv_size ? calloc(1, drv->priv_size) : NULL;
    dev->channels = drv->channels;
    dev->n_channels = drv->n_channels;
    params = drv_params(drv, kv, n);
    ret = drv->probe(dev, params);
    et_params_destroy(drv, params);
    *out = dev;
    return ret;
}

/* Probe that must succeed; prints the driver's reason when it does not. */
static inline struct et_dev *dev_open(const char *driver, const struct drv_kv *kv, size_t n)
{
    struct et_dev *dev;
    int ret = dev_probe(&dev, driver, kv, n);

    if (ret != 0)
        fail_msg("probe %s: %d: %s", driver, ret, dev->err);
    return dev;
}

/* Free a device; remove() only after a successful probe, as the core does. */
static inline void dev_close(struct et_dev *dev, bool probed)
{
    if (!dev)
        return;
    if (probed && dev->drv->remove)
        dev->drv->remove(dev);
    free(dev->priv);
    free(dev);
}

static inline int dev_channel(const struct et_dev *dev, const char *name)
{
    for (size_t i = 0; i < dev->n_channels; i++)
        if (strcmp(dev->channels[i].name, name) == 0)
            return (int)i;
    return -1;
}

static inline void dev_fetch_ok(struct et_dev *dev)
{
    int ret = dev->drv->fetch(dev);

    if (ret != 0)
        fail_msg("fetch %s: %d: %s", dev->name, ret, dev->err);
}

/* Get a channel by name that must have a value of the given type. */
static inline struct et_value dev_get(struct et_dev *dev, const char *name, enum et_type type)
{
    struct et_value v;
    int ch = dev_channel(dev, name);
    int ret;

    if (ch < 0)
        fail_msg("%s has no channel %s", dev->name, name);
    ret = dev->drv->get(dev, (unsigned)ch, &v);
    if (ret != 0)
        fail_msg("get %s.%s: %d: %s", dev->name, name, ret, dev->err);
    assert_int_equal(v.type, type);
    assert_int_equal(dev->channels[ch].type, type);
    return v;
}

static inline double dev_f64(struct et_dev *dev, const char *name)
{
    return dev_get(dev, name, ET_TYPE_F64).u.f64;
}

static inline int64_t dev_i64(struct et_dev *dev, const char *name)
{
    return dev_get(dev, name, ET_TYPE_I64).u.i64;
}

/* get() of a channel that must fail with -ENODATA and give a reason. */
/*
 * get() says -ENODATA for the channel, with a reason (said) or without one
 * (quiet: nothing to report this round, which the collector skips without
 * a word; driver.h).
 */
static inline void dev_get_nodata_as(struct et_dev *dev, const char *name, bool said)
{
    struct et_value v;
    int ch = dev_channel(dev, name);

    if (ch < 0)
        fail_msg("%s has no channel %s", dev->name, name);
    dev->err[0] = '\0';
    assert_int_equal(dev->drv->get(dev, (unsigned)ch, &v), -ENODATA);
    if (said && !dev->err[0])
        fail_msg("%s: no value and no reason", name);
    if (!said && dev->err[0])
        fail_msg("%s: a reason where there is nothing to report: %s", name, dev->err);
}

static inline void dev_get_nodata(struct et_dev *dev, const char *name)
{
    dev_get_nodata_as(dev, name, true);
}

static inline void dev_get_quiet_nodata(struct et_dev *dev, const char *name)
{
    dev_get_nodata_as(dev, name, false);
}

static inline int reset_fake(void **state)
{
    (void)state;
    et_fake_reset();
    return 0;
}

#endif
