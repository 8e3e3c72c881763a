/*
 * The cloud tests' PostgreSQL helpers (cloud_test.h): a schema of its own
 * per fixture on the test server of tests/pg/pg_server.sh. Built where
 * libpq is; cloud_pg_none.c stands in elsewhere.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "cloud_test.h"

/* The test server's connection string (tests/pg/pg_server.sh). */
static void pg_base(char *out, size_t len)
{
    const char *file = getenv("ET_TEST_PG_CONNINFO");
    FILE *fp = file ? fopen(file, "r") : NULL;

    if (!fp || !fgets(out, (int)len, fp))
        fail_msg("cloud: no PostgreSQL test server (ET_TEST_PG_CONNINFO=%s)",
                 file ? file : "unset");
    fclose(fp);
    out[strcspn(out, "\n")] = '\0';
}

void cloud_pg_run(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    PGresult *r;

    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cloud: PostgreSQL %s: %s", conninfo, PQerrorMessage(c));
    r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("cloud: PostgreSQL: %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

void cloud_pg_schema(char *out, size_t len, char *schema, size_t schema_len)
{
    static unsigned counter;
    char base[256], sql[128];

    pg_base(base, sizeof(base));
    snprintf(schema, schema_len, "et_%d_%u", (int)getpid(), ++counter);
    snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema,
             schema);
    cloud_pg_run(base, sql);
    snprintf(out, len, "%s options='-csearch_path=%s'", base, schema);
}

void cloud_pg_drop(const char *schema)
{
    char base[256], sql[128];

    pg_base(base, sizeof(base));
    snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", schema);
    cloud_pg_run(base, sql);
}

void cloud_pg_exec(const struct cloud_fixture *f, const char *sql)
{
    cloud_pg_run(f->path, sql);
}
