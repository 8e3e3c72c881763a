/*
 * Reconnect backoff: how long to wait before the next attempt after a
 * failed connect or a lost connection.
 *
 * The rule: the delay doubles from min_ms up to max_ms, and each wait is
 * drawn uniformly from [delay/2, delay], so a fleet that lost its broker
 * together does not come back together. A successful connect starts again
 * at min_ms.
 *
 * Pure: no clock, no threads, no allocation. The caller passes the time in
 * and owns the locking, so a test drives it with made-up times. The random
 * numbers come from a seeded xorshift64*: the jitter needs spread across a
 * fleet, not secrecy; the seed (from getrandom() in a program, a constant
 * in a test) is the caller's.
 */
#ifndef EDGETEL_BACKOFF_H
#define EDGETEL_BACKOFF_H

#include <stdint.h>

/* Read and changed only through the functions below; a value, no destroy. */
struct et_backoff {
    int min_ms;
    int max_ms;
    int delay_ms;       /* what the next wait is drawn from, before jitter */
    uint64_t rng;       /* xorshift64* state, never 0 */
};

/**
 * Start at min_ms. Any seed is accepted: 0 (which xorshift cannot use) is
 * replaced by a fixed constant. Two different seeds give different draws.
 * @return 0, or -EINVAL unless 1 <= min_ms <= max_ms.
 */
int et_backoff_init(struct et_backoff *b, int min_ms, int max_ms, uint64_t seed);

/**
 * An attempt failed at now_ms: draw the wait from [delay/2, delay], double
 * the delay for the time after (capped at max_ms) and return now_ms plus
 * the wait, the earliest time for the next attempt. Never overflows, for
 * any max_ms up to INT_MAX.
 */
int64_t et_backoff_next(struct et_backoff *b, int64_t now_ms);

/** A connect succeeded: the next failure waits from min_ms again. */
void et_backoff_reset(struct et_backoff *b);

/** The delay the next wait is drawn from (before jitter), for logs and tests. */
int et_backoff_delay_ms(const struct et_backoff *b);

#endif
