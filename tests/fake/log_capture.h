/*
 * The log as a test sees it: while captured, stderr (where et_log writes)
 * goes to a temporary file the test can search, so it can assert that a
 * line was said, and how often. Library et_log_capture.
 */
#ifndef EDGETEL_TESTS_LOG_CAPTURE_H
#define EDGETEL_TESTS_LOG_CAPTURE_H

#include <stddef.h>

/** Send stderr to a fresh temporary file (asserts on failure). */
void log_capture_start(void);

/**
 * How many lines written since log_capture_start() contain every one of
 * the needles (a NULL-terminated list); while capturing, or after
 * log_capture_stop().
 */
int log_capture_count(const char *needle, ...) __attribute__((sentinel));

/** Copy what was captured so far into buf (NUL-terminated, cut to cap). Returns its length. */
size_t log_capture_text(char *buf, size_t cap);

/**
 * Put stderr back; what was captured stays countable until the next start.
 * cmocka's own lines ("[  ERROR   ] ...") are written out: call it from
 * teardown too, so a failure says why. A no-op when not capturing.
 */
void log_capture_stop(void);

#endif
