/*
 * Running the real edgetelctl from a cloud test. See ctl_run.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ctl_run.h"
#include "cloud_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CTL ET_BINARY_DIR "/ctl/edgetelctl"

/* A ctl_fx is a cloud_tmpdir (cloud_test.h) by another name, for the programs' tests. */
_Static_assert(sizeof(struct ctl_fx) == sizeof(struct cloud_tmpdir), "one temporary folder");

int ctl_fx_setup(void **state)
{
    return cloud_tmpdir_setup(state);
}

int ctl_fx_teardown(void **state)
{
    return cloud_tmpdir_teardown(state);
}

int ctl_run(struct ctl_fx *f, char *out, size_t outlen, const char *fmt, ...)
{
    char args[800];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    return cloud_sh(f->dir, out, outlen, CTL " %s", args);
}

const char *ctl_path(struct ctl_fx *f, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", f->dir, name);
    return buf;
}

void ctl_write_file(struct ctl_fx *f, const char *name, const char *text)
{
    char path[160];
    FILE *fp = fopen(ctl_path(f, name, path, sizeof(path)), "w");

    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

uint8_t *ctl_read_file(struct ctl_fx *f, const char *name, size_t max, size_t *len)
{
    char path[160];
    uint8_t *buf = malloc(max);
    FILE *fp = fopen(ctl_path(f, name, path, sizeof(path)), "rb");

    assert_non_null(fp);
    assert_non_null(buf);
    *len = fread(buf, 1, max, fp);
    fclose(fp);
    return buf;
}
