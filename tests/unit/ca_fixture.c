/* A fleet CA in a fresh directory for the et_ca unit tests (ca_fixture.h). */
#define _GNU_SOURCE /* nftw */
#include "ca_fixture.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

int ca_fx_setup(void **state)
{
    struct ca_fx *f = calloc(1, sizeof(*f));

    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/et-ca-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->ca_dir, sizeof(f->ca_dir), "%s/ca", f->dir);
    f->now = (int64_t)time(NULL);
    if (et_ca_init(f->ca_dir, NULL, f->now, f->err, sizeof(f->err)) != 0 ||
        et_ca_open(&f->ca, f->ca_dir, f->err, sizeof(f->err)) != 0) {
        fprintf(stderr, "setup: %s\n", f->err);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int remove_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

int ca_fx_teardown(void **state)
{
    struct ca_fx *f = *state;
    int rc;

    et_ca_close(f->ca);
    /* No shell: under qemu-user a child would not be this architecture's. */
    rc = nftw(f->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return rc;
}
