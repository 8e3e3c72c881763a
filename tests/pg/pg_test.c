/*
 * Tests' access to the private PostgreSQL server. See pg_test.h.
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

#include "pg_test.h"

void et_pg_test_base(char *out, size_t len)
{
    const char *file = getenv("ET_TEST_PG_CONNINFO");
    FILE *fp = file ? fopen(file, "r") : NULL;

    if (!fp || !fgets(out, (int)len, fp))
        fail_msg("pg: no PostgreSQL test server (ET_TEST_PG_CONNINFO=%s; ctest starts one "
                 "with the fixture test pg_server_start)", file ? file : "unset");
    fclose(fp);
    out[strcspn(out, "\n")] = '\0';
}

static PGresult *exec(const char *conninfo, const char *sql, PGconn **conn)
{
    PGresult *r;

    *conn = PQconnectdb(conninfo);
    if (PQstatus(*conn) != CONNECTION_OK)
        fail_msg("pg: %s: %s", conninfo, PQerrorMessage(*conn));
    r = PQexec(*conn, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("pg: %s: %s", sql, PQresultErrorMessage(r));
    return r;
}

void et_pg_test_run(const char *conninfo, const char *sql)
{
    PGconn *c;

    PQclear(exec(conninfo, sql, &c));
    PQfinish(c);
}

int64_t et_pg_test_int(const char *conninfo, const char *sql)
{
    PGconn *c;
    PGresult *r = exec(conninfo, sql, &c);
    int64_t v = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)
                ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;

    PQclear(r);
    PQfinish(c);
    return v;
}

void et_pg_test_schema(char *out, size_t len, char *schema, size_t schema_len)
{
    static unsigned counter;
    char base[256], sql[160];

    et_pg_test_base(base, sizeof(base));
    snprintf(schema, schema_len, "et_%d_%u", (int)getpid(), ++counter);
    snprintf(sql, sizeof(sql), "SET client_min_messages = warning;"
             " DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema, schema);
    et_pg_test_run(base, sql);
    snprintf(out, len, "%s options='-csearch_path=%s'", base, schema);
}

void et_pg_test_drop(const char *schema)
{
    char base[256], sql[128];

    et_pg_test_base(base, sizeof(base));
    snprintf(sql, sizeof(sql), "SET client_min_messages = warning;"
             " DROP SCHEMA IF EXISTS %s CASCADE", schema);
    et_pg_test_run(base, sql);
}
