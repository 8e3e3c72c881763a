/*
 * What the outbox's unit tests share: a fresh temporary directory per test
 * (setup/teardown), opening, blobs whose bytes say which seq they belong
 * to, and checks of what the outbox holds. Failures are cmocka assertions.
 */
#ifndef EDGETEL_TEST_OUTBOX_FIXTURE_H
#define EDGETEL_TEST_OUTBOX_FIXTURE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "edgetel/outbox.h"

struct fixture {
    char dir[64];
    char path[128];
};

/* cmocka setup and teardown: a new directory for PATH, removed afterwards. */
int setup(void **state);
int teardown(void **state);

/* Open fx->path or fail the test. */
struct et_outbox *open_ok(const struct fixture *fx);

/* A blob whose bytes say which seq it belongs to. */
void make_blob(uint8_t *buf, size_t len, uint64_t seq);

/* Append a blob of len bytes (at most 4096) under the next seq. */
int append_n(struct et_outbox *ob, size_t len, uint32_t samples);

/* The batch after `after` is want_seq, with its bytes and zeroed spare bytes. */
void expect_batch(struct et_outbox *ob, uint64_t after, uint64_t want_seq, size_t want_len);

/* The outbox holds exactly want[0..n), each of len bytes. */
void expect_seqs(struct et_outbox *ob, const uint64_t *want, size_t n, size_t len);

/* How many names in dir start with prefix. */
int count_files(const char *dir, const char *prefix);

/* Write len bytes at offset `at` of path, creating it. */
void write_file(const char *path, const void *data, size_t len, off_t at);

/* Replace what path holds with len bytes of junk (not SQLite at all), also put in junk. */
void write_junk(const char *path, uint8_t *junk, size_t len);

#endif
