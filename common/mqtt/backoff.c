/*
 * Reconnect backoff (edgetel/backoff.h): doubling delays with jitter, on
 * times the caller passes in.
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

int et_backoff_init(struct et_backoff *b, int min_ms, int max_ms, uint64_t seed)
{
    if (!b || min_ms < 1 || max_ms < min_ms)
        return -EINVAL;
    b->min_ms = min_ms;
    b->max_ms = max_ms;
    b->delay_ms = min_ms;
    b->rng = seed ? seed : BACKOFF_SEED_FOR_ZERO;
    return 0;
}

int64_t et_backoff_next(struct et_backoff *b, int64_t now_ms)
{
    int delay = b->delay_ms;
    int low = delay / 2;
    /* delay - low + 1 <= INT_MAX - INT_MAX / 2 + 1: fits, even at INT_MAX. */
    int wait = low + (int)(rng_next(&b->rng) % (uint32_t)(delay - low + 1));

    /* Compared before doubling, so delay * 2 is never computed past max_ms. */
    b->delay_ms = delay > b->max_ms / 2 ? b->max_ms : delay * 2;
    return now_ms + wait;
}

void et_backoff_reset(struct et_backoff *b)
{
    b->delay_ms = b->min_ms;
}

int et_backoff_delay_ms(const struct et_backoff *b)
{
    return b->delay_ms;
}
