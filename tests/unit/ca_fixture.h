/*
 * A fleet CA for the et_ca unit tests: made in a fresh directory under
 * /tmp by et_ca_init() at the test's start, opened, and removed with all
 * that the test wrote beside it. Use as cmocka setup and teardown; the
 * test's state is a struct ca_fx.
 */
#ifndef EDGETEL_TEST_CA_FIXTURE_H
#define EDGETEL_TEST_CA_FIXTURE_H

#include <stdint.h>

#include "edgetel/ca.h"

struct ca_fx {
    char dir[64];          /* the test's directory */
    char ca_dir[96];       /* dir/ca, the CA */
    struct et_ca *ca;      /* open */
    int64_t now;           /* the CA was made at this time */
    char err[512];         /* for the calls' reasons */
};

int ca_fx_setup(void **state);
int ca_fx_teardown(void **state);

#endif
