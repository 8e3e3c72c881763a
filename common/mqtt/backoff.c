/*
 * Reconnect backoff (edgetel/backoff.h): full jitter under a cap that
 * depends on why the attempt failed, on times the caller passes in.
 */
#include "edgetel/backoff.h"

#include <errno.h>
#include <stddef.h>

/* Any odd constant with mixed bits would do; this is the golden ratio's. */
#define BACKOFF_SEED_FOR_ZERO 0x9e3779b97f4a7c15ULL

/* xorshift64*: the jitter needs spread across a fleet, not secrecy. */
static uint32_t rng_next(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return (uint32_t)((x * 2685821657736338717ULL) >> 32);
}

static int cap_of(const struct et_backoff *b, enum et_backoff_cause cause)
{
    return cause == ET_BACKOFF_REFUSED ? b->refused_max_ms : b->max_ms;
}

int et_backoff_init(struct et_backoff *b, int min_ms, int max_ms, int refused_max_ms,
                    uint64_t seed)
{
    if (!b || min_ms < 1 || max_ms < min_ms || refused_max_ms < min_ms)
        return -EINVAL;
    b->min_ms = min_ms;
    b->max_ms = max_ms;
    b->refused_max_ms = refused_max_ms;
    b->ceiling_ms = min_ms;
    b->rng = seed ? seed : BACKOFF_SEED_FOR_ZERO;
    return 0;
}

int et_backoff_ceiling_ms(const struct et_backoff *b, enum et_backoff_cause cause)
{
    int cap = cap_of(b, cause);

    return b->ceiling_ms < cap ? b->ceiling_ms : cap;
}

int64_t et_backoff_next(struct et_backoff *b, int64_t now_ms, enum et_backoff_cause cause)
{
    int top = et_backoff_ceiling_ms(b, cause);
    /* The ceiling grows towards the larger cap whatever the cause, so a
     * refusal after a long outage is not retried as if it were the first
     * failure. */
    int limit = b->max_ms > b->refused_max_ms ? b->max_ms : b->refused_max_ms;
    /* top + 1 <= 2^31 fits in uint32_t, even at INT_MAX. */
    int wait = (int)(rng_next(&b->rng) % ((uint32_t)top + 1));

    /* Compared before doubling, so ceiling * 2 is never computed past limit. */
    b->ceiling_ms = b->ceiling_ms > limit / 2 ? limit : b->ceiling_ms * 2;
    return now_ms + wait;
}

void et_backoff_reset(struct et_backoff *b)
{
    b->ceiling_ms = b->min_ms;
}
