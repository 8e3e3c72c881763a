/*
 * The agent logs to stderr; a test that checks what a person is told sends
 * stderr to a file for a while and counts lines in it. Failures are cmocka
 * assertions.
 */
#ifndef EDGETEL_TEST_LOG_CAPTURE_H
#define EDGETEL_TEST_LOG_CAPTURE_H

struct log_capture {
    char path[256];
    int saved_fd;       /* stderr before the capture */
};

/** Send stderr to a new file in dir until log_capture_end(). */
void log_capture_begin(struct log_capture *c, const char *dir);

/** Give stderr back; the file stays for log_count() until the directory goes. */
void log_capture_end(struct log_capture *c);

/**
 * Give stderr back if a capture is still running: for teardowns, since a
 * failed assertion leaves the test before log_capture_end().
 */
void log_capture_restore(void);

/** How many captured lines contain needle. */
int log_count(const struct log_capture *c, const char *needle);

#endif
