/*
 * Per-device budget: token buckets in a bounded table. See budget.h.
 */
#include "edgetel/budget.h"

#include <errno.h>
#include <stdlib.h>

/* Slots looked at for one device: its own and the next ones. */
#define BUDGET_WINDOW 16

struct budget_slot {
    uint64_t key;              /* hash of the device id; 0: empty */
    int64_t last_ms;           /* when its buckets were last filled */
    double samples;            /* tokens; negative: in debt */
    double bytes;
    int64_t next_log_ms;       /* 0: it may be logged now */
    uint64_t refused;          /* refusals since its last line */
};

struct et_budget {
    struct et_budget_cfg cfg;
    struct budget_slot *slots; /* ET_BUDGET_DEVICES of them */
    size_t used;
};

/* FNV-1a, 64 bits: device ids are short and not chosen to collide (the
 * broker ties each to a certificate). Never 0, which marks an empty slot. */
static uint64_t budget_key(const char *device)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (const unsigned char *p = (const unsigned char *)device; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    return h ? h : 1;
}

int et_budget_create(struct et_budget **out, const struct et_budget_cfg *cfg)
{
    struct et_budget *b;

    *out = NULL;
    if (!cfg || (cfg->samples_per_s && cfg->sample_burst < cfg->samples_per_s) ||
        (cfg->bytes_per_s && cfg->byte_burst < cfg->bytes_per_s))
        return -EINVAL;
    b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->slots = calloc(ET_BUDGET_DEVICES, sizeof(*b->slots));
    if (!b->slots) {
        free(b);
        return -ENOMEM;
    }
    b->cfg = *cfg;
    *out = b;
    return 0;
}

void et_budget_destroy(struct et_budget *b)
{
    if (!b)
        return;
    free(b->slots);
    free(b);
}

size_t et_budget_devices(const struct et_budget *b)
{
    return b->used;
}

/*
 * The device's slot: its own when it has one in its window, else the
 * first empty one there, else the one heard from longest ago, taken over
 * with full buckets.
 */
static struct budget_slot *budget_slot(struct et_budget *b, uint64_t key, int64_t now_ms)
{
    size_t mask = ET_BUDGET_DEVICES - 1, home = (size_t)key & mask;
    struct budget_slot *oldest = NULL, *s;

    for (size_t i = 0; i < BUDGET_WINDOW; i++) {
        s = &b->slots[(home + i) & mask];
        if (s->key == key)
            return s;
        if (s->key == 0) {
            /* Slots are never emptied, so the device is not further on. */
            oldest = s;
            b->used++;
            break;
        }
        if (!oldest || s->last_ms < oldest->last_ms)
            oldest = s;
    }
    *oldest = (struct budget_slot){
        .key = key,
        .last_ms = now_ms,
        .samples = (double)b->cfg.sample_burst,
        .bytes = (double)b->cfg.byte_burst,
    };
    return oldest;
}

/* Add what rate per second earned since the last charge, up to burst. */
static double budget_fill(double tokens, uint64_t rate, uint64_t burst, int64_t elapsed_ms)
{
    tokens += (double)rate * (double)elapsed_ms / 1000.0;
    return tokens > (double)burst ? (double)burst : tokens;
}

/* Within a bucket: enough tokens, or a full bucket (a batch larger than the burst). */
static bool budget_fits(double tokens, uint64_t cost, uint64_t rate, uint64_t burst)
{
    return rate == 0 || tokens >= (double)cost || tokens >= (double)burst;
}

void et_budget_charge(struct et_budget *b, const char *device, uint64_t samples, uint64_t bytes,
                      int64_t now_ms, struct et_budget_verdict *v)
{
    struct budget_slot *s = budget_slot(b, budget_key(device), now_ms);
    const struct et_budget_cfg *c = &b->cfg;
    int64_t elapsed = now_ms - s->last_ms;

    *v = (struct et_budget_verdict){ .over = false };
    if (elapsed > 0) {
        s->samples = budget_fill(s->samples, c->samples_per_s, c->sample_burst, elapsed);
        s->bytes = budget_fill(s->bytes, c->bytes_per_s, c->byte_burst, elapsed);
        s->last_ms = now_ms;
    }
    if (!budget_fits(s->samples, samples, c->samples_per_s, c->sample_burst))
        v->which = "samples";
    else if (!budget_fits(s->bytes, bytes, c->bytes_per_s, c->byte_burst))
        v->which = "bytes";
    if (!v->which) {
        if (c->samples_per_s)
            s->samples -= (double)samples;
        if (c->bytes_per_s)
            s->bytes -= (double)bytes;
        return;
    }
    v->over = true;
    s->refused++;
    if (now_ms >= s->next_log_ms) {
        v->log = true;
        v->refused = s->refused;
        s->refused = 0;
        s->next_log_ms = now_ms + ET_BUDGET_LOG_EVERY_MS;
    }
}
