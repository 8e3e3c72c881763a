/*
 * What the end-to-end fixture's files share: the reads of the store and
 * the outbox (e2e_read.c), used by its checks in e2e.c, and the programs
 * it watches (e2e.c, e2e_enroll.c). Private to tests/lib.
 */
#ifndef EDGETEL_TEST_E2E_INTERNAL_H
#define EDGETEL_TEST_E2E_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "e2e.h"

/* How long a read waits for a writer (the aggregator) to let go. */
#define E2E_BUSY_TIMEOUT_MS 5000

/* Open path read-only: 0, -ENOENT when it does not exist yet, or -EIO. */
int e2e_open_ro(const char *path, sqlite3 **db);

/* Prepare sql on db (path for the failure message): 0 or -EIO. */
int e2e_prepare(sqlite3 *db, const char *path, const char *sql, sqlite3_stmt **st);

/* PostgreSQL stores (e2e_pg.c): whether store_path is a connection
 * string, the schema dropped at the end, and the reads e2e_read.c hands on. */
bool e2e_store_is_pg(const char *store_path);
void e2e_pg_drop(struct et_e2e *e);
int e2e_pg_counter_read(const char *conninfo, const char *device, int64_t upto,
                        struct et_e2e_counter *out);
int e2e_pg_counter_samples(const char *conninfo, const char *device,
                           struct et_e2e_sample **out, size_t *n);

/* The [mqtt] section of a cloud program's config: this broker, as id, quick retries. */
void e2e_mqtt_section(struct et_e2e *e, const struct et_test_identity *id, char *buf,
                      size_t len);

/* p must keep running: a wait fails the test at once when it exits unasked. */
void e2e_watch(struct et_e2e *e, struct et_proc *p);

#endif
