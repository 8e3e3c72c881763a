/*
 * sim: a simulated device for trying the pipeline without hardware.
 *   counter  rises by exactly 1 per fetch, starting at `start`
 *   sine     amplitude * sin(2*pi * t / period), t = monotonic time since probe
 * The sine follows et_time_mono_ms(), so a test with the fake clock knows
 * exactly what it must read.
 */
#include <errno.h>
#include <math.h>

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

static const struct et_param sim_params[] = {
    { .key = "start", .help = "first value of counter (default 0)" },
    { .key = "period", .help = "period of sine, a duration (default 60s)" },
    { .key = "amplitude", .help = "peak of sine (default 1)" },
};

static int sim_probe(struct et_dev *dev, const struct et_kv *params, size_t n_params)
{
    struct sim_priv *p = dev->priv;
    int ret;

    ret = et_param_i64(dev, params, n_params, "start", 0, INT64_MIN / 2, INT64_MAX / 2,
                       &p->next);
    if (ret < 0)
        return ret;
    ret = et_param_duration_ms(dev, params, n_params, "period", 60000, 1, INT64_MAX / 4,
                               &p->period_ms);
    if (ret < 0)
        return ret;
    ret = et_param_f64(dev, params, n_params, "amplitude", 1.0, -1e12, 1e12, &p->amplitude);
    if (ret < 0)
        return ret;
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
    .params = sim_params,
    .n_params = sizeof(sim_params) / sizeof(sim_params[0]),
    .probe = sim_probe,
    .fetch = sim_fetch,
    .get = sim_get,
};
