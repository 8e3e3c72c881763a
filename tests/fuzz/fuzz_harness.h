/*
 * Shared by the /proc and sysfs fuzz targets: run a driver the way the
 * agent core does (zeroed priv, default params, probe, fetch, get every
 * channel, remove)
 * while the fake platform serves the fuzzer's bytes as one file.
 *
 * Each target has a table of (driver, file) pairs; the first input byte
 * picks the pair and the rest is the file's content. Two passes per input:
 * probe on the fuzzed file (probe parses it too), and probe on the fixture
 * board, then fetch with the fuzzed file in place, as when a file changes
 * under a running agent.
 */
#ifndef EDGETEL_FUZZ_HARNESS_H
#define EDGETEL_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>

#include "driver.h"
#include "et_fake.h"
#include "params.h"

/* An invariant every input must keep; a violation is a crash the fuzzer keeps. */
#define FUZZ_CHECK(cond) do { if (!(cond)) abort(); } while (0)

struct fuzz_case {
    const char *driver;
    const char *path;
};

static void fuzz_run_dev(const struct et_driver *drv, bool probe_only_fixture,
                         const char *path, const uint8_t *data, size_t size)
{
    struct et_dev dev = { .drv = drv, .name = "fuzz" };
    struct et_value v;
    void *params;
    int rc;

    /* The params a section without driver keys gets: every default. */
    FUZZ_CHECK(et_params_create(drv, &params, NULL, 0) == 0);
    dev.priv = drv->priv_size ? calloc(1, drv->priv_size) : NULL;
    dev.channels = drv->channels;
    dev.n_channels = drv->n_channels;
    if (!probe_only_fixture)
        et_fake_fs_set_file(path, data, size, 0);
    rc = drv->probe(&dev, params);
    et_params_destroy(drv, params);
    if (rc == 0) {
        if (probe_only_fixture)
            et_fake_fs_set_file(path, data, size, 0);
        for (int round = 0; round < 2; round++) {
            drv->fetch(&dev);
            for (size_t ch = 0; ch < dev.n_channels; ch++) {
                int rc = drv->get(&dev, (unsigned)ch, &v);

                /* A value handed out has its channel's type and, as a
                 * float, is a number: garbage input must be refused. */
                FUZZ_CHECK(rc != 0 || v.type == dev.channels[ch].type);
                FUZZ_CHECK(rc != 0 || v.type != ET_TYPE_F64 || isfinite(v.u.f64));
            }
        }
        if (drv->remove)
            drv->remove(&dev);
    }
    /* dev.err must always be a terminated string a person can read. */
    FUZZ_CHECK(memchr(dev.err, '\0', sizeof(dev.err)) != NULL);
    free(dev.priv);
}

static int fuzz_run(const struct fuzz_case *cases, size_t n_cases, const char *board,
                    const uint8_t *data, size_t size)
{
    const struct fuzz_case *c;
    const struct et_driver *drv;

    if (size < 1)
        return 0;
    c = &cases[data[0] % n_cases];
    drv = et_driver_find(c->driver);
    if (!drv)
        return 0; /* built with that driver turned off */
    et_fake_reset();
    et_fake_fs_set_root(board);
    fuzz_run_dev(drv, false, c->path, data + 1, size - 1);
    et_fake_fs_reset();
    et_fake_fs_set_root(board);
    fuzz_run_dev(drv, true, c->path, data + 1, size - 1);
    et_fake_reset();
    return 0;
}

#endif
