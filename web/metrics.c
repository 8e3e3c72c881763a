/*
 * GET /metrics: the Prometheus text exposition format (version 0.0.4).
 * The aggregator's own health comes from the snapshot its main thread
 * published (struct et_web_health); the devices' gauges from the store.
 * Label values are escaped by et_web_out_prom_label(); device ids are
 * plain names when ingest stored them, but the store may hold anything.
 */
#include "web_priv.h"

#include <stdio.h>
#include <string.h>

static void family(struct et_web_out *o, const char *name, const char *type, const char *help)
{
    et_web_out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(struct et_web_out *o, const char *name, const char *help, uint64_t v)
{
    family(o, name, "counter", help);
    et_web_out_printf(o, "%s %llu\n", name, (unsigned long long)v);
}

static void health(struct et_web_out *o, const struct et_web_health *h)
{
    const struct et_ingest_stats *s = &h->ingest;

    family(o, "edgetel_aggregator_start_time_seconds", "gauge",
           "When the aggregator started, seconds since 1970.");
    et_web_out_printf(o, "edgetel_aggregator_start_time_seconds %.3f\n", h->started_ms / 1000.0);
    family(o, "edgetel_aggregator_mqtt_connected", "gauge",
           "1 while the aggregator is connected to the broker.");
    et_web_out_printf(o, "edgetel_aggregator_mqtt_connected %d\n", h->mqtt_connected ? 1 : 0);
    counter(o, "edgetel_aggregator_messages_total", "MQTT messages taken from the broker.",
            h->messages);
    counter(o, "edgetel_aggregator_batches_total", "New batches stored.", s->batches);
    counter(o, "edgetel_aggregator_samples_total", "Samples stored with them.", s->samples);
    counter(o, "edgetel_aggregator_duplicate_batches_total",
            "Batches already stored (acked again, not stored).", s->duplicates);
    counter(o, "edgetel_aggregator_malformed_total", "Messages refused as malformed.",
            s->malformed);
    counter(o, "edgetel_aggregator_over_budget_total",
            "Messages refused because their device was over its budget.", s->over_budget);
    counter(o, "edgetel_aggregator_statuses_total", "Device Status messages recorded.",
            s->statuses);
    counter(o, "edgetel_aggregator_retimed_samples_total",
            "Unsynced samples given their true time.", s->retimed);
    counter(o, "edgetel_aggregator_store_errors_total",
            "Messages not stored because the store failed.", s->store_errors);
    family(o, "edgetel_aggregator_acks_total", "counter",
           "Acks handed to the MQTT client (sent) or not taken by it (unsent).");
    et_web_out_printf(o, "edgetel_aggregator_acks_total{result=\"sent\"} %llu\n"
                      "edgetel_aggregator_acks_total{result=\"unsent\"} %llu\n",
                      (unsigned long long)h->acks_sent, (unsigned long long)h->acks_unsent);
    counter(o, "edgetel_aggregator_publish_failed_total",
            "Acks and configs the broker never acknowledged.", h->publish_failed);
    counter(o, "edgetel_aggregator_configs_sent_total", "Signed configs sent to devices.",
            h->relay.sent);
    counter(o, "edgetel_aggregator_config_reports_total", "Config reports recorded.",
            h->relay.reports);
    family(o, "edgetel_aggregator_commit_seconds", "histogram",
           "Time of each durable store commit of a group of messages.");
    for (size_t i = 0; i < ET_WEB_COMMIT_BUCKETS; i++)
        et_web_out_printf(o, "edgetel_aggregator_commit_seconds_bucket{le=\"%g\"} %llu\n",
                          et_web_commit_bounds[i], (unsigned long long)h->commit_le[i]);
    et_web_out_printf(o, "edgetel_aggregator_commit_seconds_bucket{le=\"+Inf\"} %llu\n"
                      "edgetel_aggregator_commit_seconds_sum %.6f\n"
                      "edgetel_aggregator_commit_seconds_count %llu\n",
                      (unsigned long long)h->commits, h->commit_seconds,
                      (unsigned long long)h->commits);
}

/* One gauge per device; values from the rows read. */
enum gauge { G_ONLINE, G_LAST_SEEN, G_OUTBOX, G_DROPPED, G_TODAY, N_GAUGES };

static const char *const gauge_name[N_GAUGES] = {
    "edgetel_device_online", "edgetel_device_last_seen_seconds",
    "edgetel_device_outbox_batches", "edgetel_device_dropped_samples",
    "edgetel_device_samples_today",
};
static const char *const gauge_help[N_GAUGES] = {
    "1 when the device's last Status said online, 0 after its will or goodbye.",
    "When the device was last heard from (a batch or an online Status), seconds since 1970.",
    "Batches waiting in the device's outbox, from its last Status.",
    "Samples the device dropped over its data directory's life, from its last Status.",
    "Samples of the device with a time in the current UTC day.",
};

static bool gauge_value(const struct web_device *d, enum gauge g, double *v)
{
    switch (g) {
    case G_ONLINE:
        *v = d->online;
        return true;
    case G_LAST_SEEN:
        *v = d->last_seen_ms / 1000.0;
        return true;
    case G_OUTBOX:
        *v = (double)d->outbox_batches;
        return d->has_status;
    case G_DROPPED:
        *v = (double)d->dropped_samples;
        return d->has_status;
    case G_TODAY:
        *v = d->track ? (double)d->track->today : 0;
        return d->track != NULL;
    default:
        return false;
    }
}

void web_metrics(struct et_web *w, const struct et_web_request *req, struct web_answer *a)
{
    struct et_web_out *o = &a->out;
    struct web_device *d;
    size_t n, online = 0;
    bool truncated;
    double v;
    int rc;

    if (req->health)
        health(o, req->health);
    rc = web_devices_read(w, NULL, req->now_ms, &d, &n, &truncated);
    if (rc < 0) {
        web_store_error(a, rc, "devices");
        return;
    }
    for (size_t i = 0; i < n; i++)
        online += d[i].online;
    family(o, "edgetel_devices", "gauge", "Devices the store has heard from.");
    et_web_out_printf(o, "edgetel_devices %zu\n", n);
    family(o, "edgetel_devices_online", "gauge", "Of them, online now.");
    et_web_out_printf(o, "edgetel_devices_online %zu\n", online);
    family(o, "edgetel_devices_truncated", "gauge",
           "1 when there were more devices than the per-device gauges list (max_devices).");
    et_web_out_printf(o, "edgetel_devices_truncated %d\n", truncated ? 1 : 0);
    for (int g = 0; g < N_GAUGES; g++) {
        family(o, gauge_name[g], "gauge", gauge_help[g]);
        for (size_t i = 0; i < n; i++) {
            if (!gauge_value(&d[i], (enum gauge)g, &v))
                continue;
            et_web_out_printf(o, "%s{device=\"", gauge_name[g]);
            et_web_out_prom_label(o, d[i].id);
            et_web_out_printf(o, "\"} %.15g\n", v);
        }
    }
    web_devices_free(d, n);
    web_finish(a, "text/plain; version=0.0.4; charset=utf-8");
}
