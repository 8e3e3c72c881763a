/*
 * The cloud tests' PostgreSQL helpers in a build without libpq: a test
 * that asks for PostgreSQL fails and says why (ctest does not run the
 * PostgreSQL variants in such a build).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cloud_test.h"

void cloud_pg_schema(char *out, size_t len, char *schema, size_t schema_len)
{
    (void)out;
    (void)len;
    (void)schema;
    (void)schema_len;
    fail_msg("cloud: this build has no PostgreSQL backend (libpq was not found)");
}

void cloud_pg_drop(const char *schema)
{
    (void)schema;
}

void cloud_pg_run(const char *conninfo, const char *sql)
{
    (void)conninfo;
    (void)sql;
    fail_msg("cloud: this build has no PostgreSQL backend (libpq was not found)");
}

void cloud_pg_exec(const struct cloud_fixture *f, const char *sql)
{
    (void)f;
    cloud_pg_run(NULL, sql);
}

int64_t cloud_pg_int(const struct cloud_fixture *f, const char *sql)
{
    (void)f;
    cloud_pg_run(NULL, sql);
    return 0;
}
