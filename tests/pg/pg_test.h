/*
 * Tests' access to the private PostgreSQL server of tests/pg/pg_server.sh:
 * its connection string (the file ET_TEST_PG_CONNINFO names), a schema of
 * a test's own on it, and plain SQL. Library et_pg_testlib (libpq, cmocka).
 * Every helper fails the running test when it cannot do its job.
 */
#ifndef EDGETEL_TEST_PG_TEST_H
#define EDGETEL_TEST_PG_TEST_H

#include <stddef.h>
#include <stdint.h>

/** The server's connection string into out (len bytes). */
void et_pg_test_base(char *out, size_t len);

/**
 * A new empty schema (its name into schema, schema_len bytes) and a
 * connection string with it as search_path into out: a store of its own.
 */
void et_pg_test_schema(char *out, size_t len, char *schema, size_t schema_len);

/** Drop a schema made by et_pg_test_schema() and all in it. */
void et_pg_test_drop(const char *schema);

/** Run sql (statements without rows to read) on conninfo. */
void et_pg_test_run(const char *conninfo, const char *sql);

/** The first column of the first row of sql on conninfo as an integer (0 for NULL). */
int64_t et_pg_test_int(const char *conninfo, const char *sql);

#endif
