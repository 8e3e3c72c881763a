/*
 * The end-to-end fixture's reads of the store and the outbox (e2e_read.c),
 * used by its checks in e2e.c. Private to tests/lib.
 */
#ifndef EDGETEL_TEST_E2E_INTERNAL_H
#define EDGETEL_TEST_E2E_INTERNAL_H

#include <sqlite3.h>

/* How long a read waits for a writer (the aggregator) to let go. */
#define E2E_BUSY_TIMEOUT_MS 5000

/* Open path read-only: 0, -ENOENT when it does not exist yet, or -EIO. */
int e2e_open_ro(const char *path, sqlite3 **db);

/* Prepare sql on db (path for the failure message): 0 or -EIO. */
int e2e_prepare(sqlite3 *db, const char *path, const char *sql, sqlite3_stmt **st);

#endif
