/*
 * sim: a simulated device for trying the pipeline without hardware.
 *   counter  rises by exactly 1 per fetch, starting at `start`
 *   sine     amplitude * sin(2*pi * t / period), t = monotonic time since probe
 * The sine follows et_time_mono_ms(), so a test with the fake clock knows
 * exactly what it must read.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>

#include "common.h"
#include "edgetel/platform.h"

enum { SIM_COUNTER, SIM_SINE };

struct sim_priv {
    int64_t next;        /* what the next fetch reports as counter */
    int64_t counter;
    double sine;
    int64_t period_ms;
    double amplitude;
    int64_t t0_ms;
    bool fetched;
};

static const struct et_channel sim_channels[] = {
    [SIM_COUNTER] = { .name = "counter", .unit = "1", .type = ET_TYPE_I64 },
    [SIM_SINE] = { .name = "sine", .unit = "1", .type = ET_TYPE_F64 },
};

struct sim_params {
    int64_t start;
    int64_t period_ms;
    double amplitude;
};

/* Bounds far from the type's own so counter and phase arithmetic cannot overflow. */
static const struct et_key sim_keys[] = {
    { "start", ET_KEY_INT, ET_KEY_FIELD(struct sim_params, start), "0", INT64_MIN / 2,
      INT64_MAX / 2, .help = "first value of counter" },
    { "period", ET_KEY_DURATION, ET_KEY_FIELD(struct sim_params, period_ms), "60s", 1,
      INT64_MAX / 4, .help = "period of sine" },
    { "amplitude", ET_KEY_NUMBER, ET_KEY_FIELD(struct sim_params, amplitude), "1",
      -1000000000000, 1000000000000, .help = "peak of sine" },
};

static int sim_probe(struct et_dev *dev, const void *params)
{
    const struct sim_params *prm = params;
    struct sim_priv *p = dev->priv;

    p->next = prm->start;
    p->period_ms = prm->period_ms;
    p->amplitude = prm->amplitude;
    p->t0_ms = et_time_mono_ms();
    return 0;
}

static int sim_fetch(struct et_dev *dev)
{
    struct sim_priv *p = dev->priv;
    int64_t t = et_time_mono_ms() - p->t0_ms;
    /* Reduce to one period first so the phase stays exact for long runs. */
    int64_t in_period = ((t % p->period_ms) + p->period_ms) % p->period_ms;
    double phase = (double)in_period / (double)p->period_ms;

    p->counter = p->next++;
    p->sine = p->amplitude * sin(2.0 * M_PI * phase);
    p->fetched = true;
    return 0;
}

static int sim_get(struct et_dev *dev, unsigned ch, struct et_value *out)
{
    struct sim_priv *p = dev->priv;

    if (!p->fetched)
        return et_dev_fail(dev, -ENODATA, "no fetch yet");
    switch (ch) {
    case SIM_COUNTER:
        *out = et_value_i64(p->counter);
        return 0;
    case SIM_SINE:
        *out = et_value_f64(p->sine);
        return 0;
    default:
        return -EINVAL;
    }
}

const struct et_driver et_driver_sim = {
    .name = "sim",
    .help = "simulated counter and sine wave, for trying edgetel without hardware",
    .priv_size = sizeof(struct sim_priv),
    .channels = sim_channels,
    .n_channels = sizeof(sim_channels) / sizeof(sim_channels[0]),
    .params = sim_keys,
    .n_params = sizeof(sim_keys) / sizeof(sim_keys[0]),
    .params_size = sizeof(struct sim_params),
    .probe = sim_probe,
    .fetch = sim_fetch,
    .get = sim_get,
};
