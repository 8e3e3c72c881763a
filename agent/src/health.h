/*
 * The agent's own health, reported as metrics beside the collectors'
 * every 30 s: outbox depth and bytes, dropped samples, samples delivered
 * without being stored (the card was full), the window, whether
 * it is connected, each collector's health (agent.collector.<name>.ok,
 * agent.collectors_failing), the backlog's progress while one drains, and
 * SD card wear (bytes written, and per sample stored since the last
 * report).
 */
#ifndef EDGETEL_HEALTH_H
#define EDGETEL_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "batcher.h"
#include "collect.h"
#include "uplink.h"
#include "edgetel/outbox.h"

/* What the report reads; every pointer is borrowed for the call. */
struct et_health_input {
    const struct et_outbox_stats *outbox;
    const struct et_batcher_stats *batcher;
    const struct et_uplink_stats *uplink;
    const struct et_collector *collectors;
    size_t n_collectors;
};

/* Between reports: where the wear figure started. Zero it to begin. */
struct et_health {
    uint64_t io_written_prev;  /* write_bytes at the last report */
    uint64_t io_samples_prev;  /* samples stored at the last report */
    uint64_t reports;          /* made so far */
};

/* Memory is trimmed (et_mem_trim) at the first report and every this many. */
#define HEALTH_TRIM_EVERY 20

/** Emit one report's metrics through emit (the agent adds them to the open batch). */
void et_health_report(struct et_health *h, const struct et_health_input *in,
                      et_collector_emit emit, void *ctx);

#endif
