/*
 * The agent's own health as metrics. See health.h.
 */
#include "health.h"

#include <errno.h>
#include <stdio.h>

#include "common.h"   /* et_self_write_bytes, from drivers/ */
#include "edgetel/platform.h"

static void emit_i64(et_collector_emit emit, void *ctx, const char *name, const char *unit,
                     int64_t v)
{
    struct et_value value = et_value_i64(v);

    emit(ctx, name, unit, &value);
}

static void emit_bool(et_collector_emit emit, void *ctx, const char *name, bool v)
{
    struct et_value value = et_value_bool(v);

    emit(ctx, name, "1", &value);
}

/* agent.collector.<name>.ok for each collector, and how many fail. Hardware
 * this board does not have is left out rather than reported failing. */
static void report_collectors(const struct et_health_input *in, et_collector_emit emit,
                              void *ctx)
{
    int64_t failing = 0;

    for (size_t i = 0; i < in->n_collectors; i++) {
        const struct et_collector *c = &in->collectors[i];
        char name[96];

        if (et_collector_absent(c))
            continue;
        bool ok = et_collector_ok(c);

        failing += !ok;
        snprintf(name, sizeof(name), "agent.collector.%s.ok", et_collector_name(c));
        emit_bool(emit, ctx, name, ok);
    }
    emit_i64(emit, ctx, "agent.collectors_failing", "1", failing);
}

/* SD card wear: bytes written per sample stored since the last report. */
static void report_wear(struct et_health *h, const struct et_health_input *in,
                        et_collector_emit emit, void *ctx)
{
    uint64_t written;

    if (et_self_write_bytes(&written) != 0)
        return;
    uint64_t samples = in->batcher->samples_stored - h->io_samples_prev;

    emit_i64(emit, ctx, "agent.bytes_written", "By", (int64_t)written);
    if (samples > 0 && h->io_written_prev > 0) {
        struct et_value v = et_value_f64((double)(written - h->io_written_prev) / (double)samples);

        v.resolution = 0.01;

        emit(ctx, "agent.bytes_written_per_sample", "By", &v);
    }
    h->io_written_prev = written;
    h->io_samples_prev = in->batcher->samples_stored;
}

void et_health_report(struct et_health *h, const struct et_health_input *in,
                      et_collector_emit emit, void *ctx)
{
    const struct et_uplink_stats *up = in->uplink;

    emit_i64(emit, ctx, "agent.outbox_batches", "1", (int64_t)in->outbox->batches);
    emit_i64(emit, ctx, "agent.outbox_bytes", "By", (int64_t)in->outbox->bytes);
    /* The outbox counts the batcher's drops too (et_outbox_count_dropped). */
    emit_i64(emit, ctx, "agent.dropped_samples", "1", (int64_t)in->outbox->dropped_samples);
    emit_i64(emit, ctx, "agent.not_persisted_samples", "1", (int64_t)in->batcher->not_persisted);
    emit_i64(emit, ctx, "agent.inflight_batches", "1", (int64_t)up->inflight);
    emit_bool(emit, ctx, "agent.connected", up->connected);
    report_collectors(in, emit, ctx);
    /* At the first report (30 s: start-up is over), then every 10 min:
     * the resident set stays what the rounds use. Reading smaps and
     * mapping pages again costs CPU, so not at every report. */
    if (h->reports++ % HEALTH_TRIM_EVERY == 0)
        et_mem_trim();
    if (up->connected && up->backlog_left > 0) {
        emit_i64(emit, ctx, "agent.backlog_batches", "1", (int64_t)up->backlog_left);
        if (up->backlog_eta_s >= 0) {
            struct et_value v = et_value_f64(up->backlog_eta_s);

            emit(ctx, "agent.backlog_eta", "s", &v);
        }
    }
    report_wear(h, in, emit, ctx);
}
