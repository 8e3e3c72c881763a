/*
 * Collector instances: a driver plus its config section, with the policy
 * for trouble. Internal to the agent.
 *
 * Trouble policy: a probe that fails is retried after a delay that doubles
 * from 5 s to 5 min; a fetch that fails three times in a row sends the
 * collector back to probing (the sensor was unplugged). Each distinct
 * failure reason is logged once, not every interval, and recovery is
 * logged once. A failing collector never stops the others.
 */
#ifndef EDGETEL_COLLECT_H
#define EDGETEL_COLLECT_H

#include <stdbool.h>
#include <stdint.h>

#include "driver.h"
#include "edgetel/config.h"

enum et_collector_state {
    ET_COLLECTOR_PROBING = 0,   /* not probed yet, or waiting to probe again */
    ET_COLLECTOR_RUNNING = 1,
};

struct et_collector {
    const struct et_collector_cfg *cfg;
    struct et_dev dev;
    enum et_collector_state state;
    char **metric_names;        /* "<instance>.<channel>", per channel */
    size_t n_metric_names;
    int64_t retry_at_ms;
    int64_t retry_delay_ms;
    int fetch_failures;         /* consecutive */
    int probe_rc;               /* result of the last probe: -ENODEV means not present */
    bool failing;               /* the last attempt failed */
    char logged_err[256];       /* the latest failure reason */
    uint32_t said[16];          /* hashes of the reasons logged since it last worked */
    size_t n_said;
    uint64_t rounds_ok;
    uint64_t rounds_failed;
};

/* Called for each value a round produced. */
typedef int (*et_collector_emit)(void *ctx, const char *metric, const char *unit,
                                 const struct et_value *v);

/** Prepare (not probe) a collector for cfg; -ENOENT if the driver is not built in. */
int et_collector_init(struct et_collector *c, const struct et_collector_cfg *cfg);

/** Whether the driver named in the config is built into this agent. */
bool et_collector_built_in(const struct et_collector *c);

/**
 * Whether the hardware is absent from this board: the probe said -ENODEV
 * and the collector never worked. A fact about the board, not a failure:
 * it is reported once as "not present" and left out of the health counts.
 */
bool et_collector_absent(const struct et_collector *c);

/** Whether the collector is probed and running (it may still have failed its last round). */
bool et_collector_running(const struct et_collector *c);

/** Running, and its last round worked. */
bool et_collector_ok(const struct et_collector *c);

/**
 * The latest reason for a person: why it failed, or for an absent device
 * what the probe said. Valid until the collector's next call.
 */
const char *et_collector_reason(const struct et_collector *c);

/** The collector's tags ("k=v,k2=v2", canonical) or NULL. */
const char *et_collector_tags(const struct et_collector *c);

/** Its instance name from the config ("cpu", "bme280_a"). */
const char *et_collector_name(const struct et_collector *c);

/** Undo et_collector_init (and probe). */
void et_collector_fini(struct et_collector *c);

/** Probe now (a probe that fails schedules its retry). 0 or -errno, reason in c->dev.err. */
int et_collector_probe(struct et_collector *c, int64_t now_ms);

/**
 * One scheduled round at now_ms: probe when due, then fetch and emit every
 * channel that has a value. Returns the number of values emitted, or -errno
 * when the collector could not run this round (reason in c->dev.err).
 */
int et_collector_round(struct et_collector *c, int64_t now_ms, et_collector_emit emit, void *ctx);

#endif
