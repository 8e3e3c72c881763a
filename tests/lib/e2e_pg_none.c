/*
 * The end-to-end fixture in a build without libpq: no PostgreSQL store.
 */
#include "e2e.h"
#include "e2e_internal.h"

#include <errno.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

bool e2e_store_is_pg(const char *store_path)
{
    (void)store_path;
    return false;
}

void et_e2e_use_postgresql(struct et_e2e *e)
{
    (void)e;
    fail_msg("e2e: this build has no PostgreSQL backend (libpq was not found)");
}

void e2e_pg_drop(struct et_e2e *e)
{
    (void)e;
}

int e2e_pg_counter_read(const char *conninfo, const char *device, int64_t upto,
                        struct et_e2e_counter *out)
{
    (void)conninfo;
    (void)device;
    (void)upto;
    (void)out;
    return -EPROTONOSUPPORT;
}

int e2e_pg_counter_samples(const char *conninfo, const char *device,
                           struct et_e2e_sample **out, size_t *n)
{
    (void)conninfo;
    (void)device;
    (void)out;
    (void)n;
    return -EPROTONOSUPPORT;
}
