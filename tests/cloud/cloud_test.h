/*
 * Helpers for the cloud tests (tests/cloud/test_*.c): a fresh SQLite store
 * in a temporary directory with its writer, its reader and an ingest
 * handle on it; batches to ingest and Acks to check. The in-memory writer
 * is fake_writer.h.
 */
#ifndef EDGETEL_TESTS_CLOUD_TEST_H
#define EDGETEL_TESTS_CLOUD_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "edgetel/ingest.h"
#include "edgetel/log.h"
#include "edgetel/store.h"
#include "edgetel/store_reader.h"
#include "edgetel/store_writer.h"
#include "fake_writer.h"
#include "log_capture.h"

/* ---- the SQLite store fixture ----------------------------------------------- */

/* The schema version the SQLite store writes (STORE_SCHEMA_VERSION). */
#define CLOUD_SCHEMA_VERSION 7

struct cloud_fixture {
    char dir[64];
    /* The database file; with PostgreSQL the connection string, whose
     * search_path is a schema of the fixture's own. */
    char path[320];
    const char *type;          /* "sqlite", or "postgresql" under ET_TEST_STORE */
    char schema[64];           /* PostgreSQL: the fixture's schema */
    struct et_store *store;
    struct et_store_writer *w;
    struct et_store_reader *r;
    struct et_ingest *ig;      /* on w, topic root "edgetel" */
};

/*
 * The store the fixture makes: SQLite, or PostgreSQL when the environment
 * says ET_TEST_STORE=postgresql (ctest runs the tests that can both ways,
 * with the server of tests/pg/pg_server.sh, its connection string in the
 * file ET_TEST_PG_CONNINFO names). A test that reads the SQLite file
 * itself skips on PostgreSQL (cloud_skip_unless_sqlite).
 */
bool cloud_store_is_pg(void);

/** Skip the running test when the fixture's store is not SQLite. */
void cloud_skip_unless_sqlite(void);

/**
 * A connection string to the test server with a new empty schema of its
 * own as search_path (into out, len bytes; the schema's name into schema);
 * fails the test without a server. cloud_pg_drop() removes it.
 */
void cloud_pg_schema(char *out, size_t len, char *schema, size_t schema_len);
void cloud_pg_drop(const char *schema);

/** Run sql on a PostgreSQL connection string; asserts it worked. */
void cloud_pg_run(const char *conninfo, const char *sql);

/** Run sql on the fixture's PostgreSQL store (its schema); asserts it worked. */
void cloud_pg_exec(const struct cloud_fixture *f, const char *sql);

/** The first column of the first row of sql on the fixture's PostgreSQL store (0 for NULL). */
int64_t cloud_pg_int(const struct cloud_fixture *f, const char *sql);

/** A new fixture with its store open (asserts on failure); name goes into the directory's. */
struct cloud_fixture *cloud_fixture_create(const char *name);

/** Close the ingest handle and the store, and remove every file. NULL is a no-op. */
void cloud_fixture_destroy(struct cloud_fixture *f);

/** cmocka setup and teardown with a fixture in *state. */
int cloud_fixture_setup(void **state);
int cloud_fixture_teardown(void **state);

/** Close and open the fixture's store again (and its ingest handle). */
void cloud_fixture_reopen(struct cloud_fixture *f);

/** Remove an SQLite database with its -wal and -shm files. */
void cloud_remove_db(const char *path);

/* ---- batches and Acks --------------------------------------------------------- */

#define CLOUD_ROOT "edgetel"
#define CLOUD_NOW 1795000100000LL         /* the aggregator's clock in the tests */
#define CLOUD_BASE_WALL 1795000000000LL   /* the batches' base pair */
#define CLOUD_BASE_MONO 500000LL

/* Two streams (data directories) of a device; the helpers use A unless told. */
extern const uint8_t cloud_stream_a[ET_STREAM_ID_LEN];
extern const uint8_t cloud_stream_b[ET_STREAM_ID_LEN];
#define CLOUD_STREAM_A_HEX "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
#define CLOUD_STREAM_B_HEX "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"

/*
 * An encoded batch of n samples of boot 0xab.. in stream cloud_stream_a,
 * made on a synchronised clock: "sim.counter" (i64 = seq * 100 + i) every
 * 1000 ms from CLOUD_BASE_MONO, and on even i also "sim.sine" (f64). Free it.
 */
uint8_t *cloud_make_batch(const char *device, uint64_t seq, uint64_t oldest, size_t n,
                          size_t *len);
/** The same in stream stream_id (NULL: none, the legacy stream). */
uint8_t *cloud_make_batch_in(const char *device, const uint8_t *stream_id, uint64_t seq,
                             uint64_t oldest, size_t n, size_t *len);

/** Ingest cloud_make_batch()'s batch on the device's telemetry topic at CLOUD_NOW. */
int cloud_ingest_batch(struct et_ingest *ig, const char *device, uint64_t seq, uint64_t oldest,
                       size_t n, struct et_ingest_reply *r);
/** The same for cloud_make_batch_in()'s batch, at now_ms. */
int cloud_ingest_batch_in(struct et_ingest *ig, const char *device, const uint8_t *stream_id,
                          uint64_t seq, uint64_t oldest, size_t n, int64_t now_ms,
                          struct et_ingest_reply *r);

/** Decode the reply's Ack and check it says exactly this, in stream cloud_stream_a. */
void cloud_assert_ack(const struct et_ingest_reply *r, const char *device, uint64_t through,
                      const uint64_t *seqs, size_t n_seqs);
/** The same in stream stream_id (NULL: the legacy stream, no stream id). */
void cloud_assert_ack_in(const struct et_ingest_reply *r, const char *device,
                         const uint8_t *stream_id, uint64_t through, const uint64_t *seqs,
                         size_t n_seqs);

/**
 * Store one batch of device with n samples of metric (i64 i at ts0 + i s,
 * synced) in the legacy stream (recorded if new) through w, in its own
 * transaction, as a backend test's data.
 */
void cloud_put_batch(struct et_store_writer *w, const char *device, uint64_t seq,
                     const char *metric, const char *unit, int64_t ts0, int n);

/**
 * The reader's row of device (fails the test when there is none): its
 * scalars, and stream_hex copied (valid until the next call); the other
 * strings are NULL, as they die with the read.
 */
struct et_store_device cloud_device(struct et_store_reader *r, const char *device);

/**
 * Wait (up to 10 s) until tail (et_store_samples_after) shows at least
 * want samples of device. PostgreSQL shows a row to tail once every
 * transaction older than its own has ended, in the whole cluster: another
 * test's open transaction on the shared test server holds it back a moment.
 */
void cloud_tail_settle(struct et_store_reader *r, const char *device, size_t want);

/**
 * The reader's last sample id (et_store_last_sample_id), once it is the
 * highest id stored (waited for up to 10 s): PostgreSQL hands out only ids
 * below its oldest running transaction's, which another test's open
 * transaction on the shared test server holds back a moment. At once on
 * SQLite.
 */
int64_t cloud_last_id_settled(struct cloud_fixture *f);

/** How many samples of (device, metric) the reader sees. */
int64_t cloud_stored(struct et_store_reader *r, const char *device, const char *metric);

/* ---- what a test reads back: log lines, printed output ------------------------ */

/* Log lines: tests/fake/log_capture.h (log_capture_start, _count, _stop). */

/* A report's output in memory. */
struct cloud_output {
    FILE *mem;
    char *text;
    size_t len;
};

/** A fresh stream for the next report (the last one's text is freed). */
FILE *cloud_output_start(struct cloud_output *o);

/** What was written to the stream so far. */
const char *cloud_output_text(struct cloud_output *o);

void cloud_output_free(struct cloud_output *o);

/* An ingest handle on the in-memory writer with the log captured (at info). */
struct cloud_fake {
    struct fake_writer *fw;
    struct et_ingest *ig;
};

/** cmocka setup and teardown with a struct cloud_fake in *state. */
int cloud_fake_setup(void **state);
int cloud_fake_teardown(void **state);

/* ---- a program run in a folder of its own (edgetelctl's tests) ------------ */

/* A fresh folder under /tmp for one test. */
struct cloud_tmpdir {
    char dir[64];
};

/** cmocka setup: *state is a new struct cloud_tmpdir; teardown removes it. */
int cloud_tmpdir_setup(void **state);
int cloud_tmpdir_teardown(void **state);

/**
 * Run a shell command in dir (stderr with stdout); its exit status (-1 when
 * it did not exit), what it printed in out.
 */
int cloud_sh(const char *dir, char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
