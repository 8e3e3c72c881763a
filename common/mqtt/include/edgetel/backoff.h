/*
 * Reconnect backoff: how long to wait before the next attempt after a
 * failed connect or a lost connection.
 *
 * The rule ("full jitter"): after the n-th failure in a row the wait is
 * drawn uniformly from [0, min(cap, min_ms * 2^(n-1))]. A successful
 * connect starts again at n = 1. The cap depends on why the attempt
 * failed:
 *  - UNREACHABLE (nobody answered: refused or reset TCP, a timeout, a lost
 *    connection) is capped at max_ms, kept small (5 s by default) because a
 *    broker that is restarting comes back by itself and every board should
 *    be sending again within seconds of its return;
 *  - REFUSED (the broker answered and said no: a TLS alert, a certificate
 *    that does not verify, a CONNACK refusal) is capped at refused_max_ms
 *    (2 min by default): it will not fix itself in seconds, and a fleet
 *    retrying TLS handshakes every few seconds would be the broker's
 *    heaviest load.
 * Drawing from the whole range, not its upper half, spreads a fleet that
 * lost its broker together as evenly as the cap allows: N boards at the cap
 * C come back at about 2N/C connects a second at first, falling to none
 * after C (docs/ARCHITECTURE.md, "Reconnecting").
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

/* Why an attempt failed, which decides the cap of the next wait. */
enum et_backoff_cause {
    ET_BACKOFF_UNREACHABLE = 0, /* no answer, or the connection was lost: capped at max_ms */
    ET_BACKOFF_REFUSED = 1,     /* the broker answered no (TLS, CONNACK): refused_max_ms */
};

/* Read and changed only through the functions below; a value, no destroy. */
struct et_backoff {
    int min_ms;
    int max_ms;         /* cap after UNREACHABLE */
    int refused_max_ms; /* cap after REFUSED */
    int ceiling_ms;     /* min_ms doubled per failure since the reset, up to the larger cap */
    uint64_t rng;       /* xorshift64* state, never 0 */
};

/**
 * Start at min_ms. Any seed is accepted: 0 (which xorshift cannot use) is
 * replaced by a fixed constant. Two different seeds give different draws.
 * @return 0, or -EINVAL unless 1 <= min_ms <= max_ms and
 *         min_ms <= refused_max_ms.
 */
int et_backoff_init(struct et_backoff *b, int min_ms, int max_ms, int refused_max_ms,
                    uint64_t seed);

/**
 * An attempt failed at now_ms for cause: draw the wait from [0,
 * et_backoff_ceiling_ms(b, cause)], double the ceiling for the failure
 * after (up to the larger cap) and return now_ms plus the wait, the
 * earliest time for the next attempt. Never overflows, for any cap up to
 * INT_MAX.
 */
int64_t et_backoff_next(struct et_backoff *b, int64_t now_ms, enum et_backoff_cause cause);

/** A connect succeeded: the next failure draws from [0, min_ms] again. */
void et_backoff_reset(struct et_backoff *b);

/** The top of the range the next wait after a failure of cause is drawn from. */
int et_backoff_ceiling_ms(const struct et_backoff *b, enum et_backoff_cause cause);

#endif
