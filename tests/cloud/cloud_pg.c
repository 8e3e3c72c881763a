/*
 * The cloud tests' PostgreSQL helpers (cloud_test.h) over the test
 * server's (tests/pg/pg_test.h). Built where libpq is; cloud_pg_none.c
 * stands in elsewhere.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cloud_test.h"
#include "pg_test.h"

void cloud_pg_schema(char *out, size_t len, char *schema, size_t schema_len)
{
    et_pg_test_schema(out, len, schema, schema_len);
}

void cloud_pg_drop(const char *schema)
{
    et_pg_test_drop(schema);
}

void cloud_pg_run(const char *conninfo, const char *sql)
{
    et_pg_test_run(conninfo, sql);
}

void cloud_pg_exec(const struct cloud_fixture *f, const char *sql)
{
    et_pg_test_run(f->path, sql);
}

int64_t cloud_pg_int(const struct cloud_fixture *f, const char *sql)
{
    return et_pg_test_int(f->path, sql);
}
