/*
 * Per-device budget: token buckets in a bounded table. See budget.h.
 */
#include "edgetel/budget.h"

#include <errno.h>
#include <stdlib.h>

#include "edgetel/devtable.h"

struct budget_slot {
    struct et_devtable_slot head;
    int64_t last_ms;           /* when its buckets were last filled */
    double samples;            /* tokens; negative: in debt */
    double bytes;
    int64_t next_log_ms;       /* 0: it may be logged now */
    uint64_t refused;          /* refusals since its last line */
};

struct et_budget {
    struct et_budget_cfg cfg;
    struct et_devtable devices; /* ET_BUDGET_DEVICES slots */
};

int et_budget_create(struct et_budget **out, const struct et_budget_cfg *cfg)
{
    struct et_budget *b;
    int ret;

    *out = NULL;
    if (!cfg || (cfg->samples_per_s && cfg->sample_burst < cfg->samples_per_s) ||
        (cfg->bytes_per_s && cfg->byte_burst < cfg->bytes_per_s))
        return -EINVAL;
    b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    ret = et_devtable_init(&b->devices, ET_BUDGET_DEVICES, sizeof(struct budget_slot), NULL,
                           NULL);
    if (ret < 0) {
        free(b);
        return ret;
    }
    b->cfg = *cfg;
    *out = b;
    return 0;
}

void et_budget_destroy(struct et_budget *b)
{
    if (!b)
        return;
    et_devtable_fini(&b->devices);
    free(b);
}

size_t et_budget_devices(const struct et_budget *b)
{
    return b->devices.used;
}

/* The device's slot; one new to the table (or taken over) starts with full buckets. */
static struct budget_slot *budget_slot(struct et_budget *b, const char *device, int64_t now_ms)
{
    bool fresh;
    struct budget_slot *s = et_devtable_get(&b->devices, device, now_ms, &fresh);

    if (fresh) {
        s->last_ms = now_ms;
        s->samples = (double)b->cfg.sample_burst;
        s->bytes = (double)b->cfg.byte_burst;
    }
    return s;
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
    struct budget_slot *s = budget_slot(b, device, now_ms);
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
