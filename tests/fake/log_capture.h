/*
 * The log as a test sees it: while captured, stderr (where et_log writes)
 * goes to a temporary file the test can search, so it can assert that a
 * line was said, and how often. Library et_log_capture.
 */
#ifndef EDGETEL_TESTS_LOG_CAPTURE_H
#define EDGETEL_TESTS_LOG_CAPTURE_H

/** Send stderr to a fresh temporary file (asserts on failure). */
void log_capture_start(void);

/** How many lines written since log_capture_start() contain every one of the needles. */
int log_capture_count(const char *needle, const char *needle2);

/**
 * Put stderr back and forget what was captured, but for cmocka's own lines
 * ("[  ERROR   ] ..."), which are written out: call it from teardown so a
 * failure says why. A no-op when not capturing.
 */
void log_capture_stop(void);

#endif
