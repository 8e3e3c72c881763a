/*
 * Data for the web view's tests and benchmark (web_data.h).
 */
#include "web_data.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#define PER_TX 10000

static int device_rows(struct et_store_writer *w, const char *device, int64_t now_ms,
                       uint64_t samples, uint64_t outbox, uint64_t dropped)
{
    struct et_store_status st = {
        .device = device, .online = true, .boot_id_hex = "", .agent_version = "0.1.0",
        .outbox_batches = outbox, .dropped_samples = dropped, .clock_synced = true,
        .reason = "", .device_wall_ms = now_ms,
    };
    struct et_store_stream s;
    int rc = et_store_device_seen(w, device, now_ms, "", samples, NULL);

    if (rc == 0)
        rc = et_store_device_status(w, &st, now_ms, NULL);
    if (rc == 0 && et_store_stream_get(w, device, "", &s) == -ENOENT)
        rc = et_store_stream_start(w, device, "", now_ms, NULL);
    return rc;
}

static enum et_time_quality quality(const struct web_data *d, int64_t t)
{
    if (t >= d->corrected_from_ms && t < d->corrected_to_ms)
        return ET_TQ_CORRECTED;
    if (t >= d->uncorrectable_from_ms && t < d->uncorrectable_to_ms)
        return ET_TQ_UNCORRECTABLE;
    return ET_TQ_SYNCED;
}

int web_data_fill(struct et_store_writer *w, const struct web_data *d)
{
    int64_t ids[16];
    int n = d->metrics < 16 ? d->metrics : 16;
    uint64_t seq = 1, in_tx = 0, total = 0;
    char name[16];
    int rc = et_store_begin(w);

    for (int m = 0; rc == 0 && m < n; m++) {
        snprintf(name, sizeof(name), "m%d", m);
        rc = et_store_metric_id(w, d->device, name, m == 1 ? "" : "C", &ids[m]);
    }
    for (int64_t t = d->from_ms; rc == 0 && t < d->to_ms; t += d->interval_ms) {
        if (t >= d->gap_from_ms && t < d->gap_to_ms)
            continue;
        for (int m = 0; rc == 0 && m < n; m++) {
            struct et_store_sample smp = {
                .metric_id = ids[m], .ts_ms = t, .mono_ms = t - d->from_ms,
                .time_quality = quality(d, t), .seq = seq,
            };

            if (m == 1) {
                smp.value.type = ET_TYPE_I64;
                smp.value.u.i64 = (t - d->from_ms) / d->interval_ms;
            } else {
                smp.value.type = ET_TYPE_F64;
                smp.value.u.f64 = 20 + m + 5 * sin((double)t / 3.6e6);
            }
            rc = et_store_insert_sample(w, &smp, NULL);
            in_tx++;
            total++;
        }
        if (rc == 0 && in_tx >= PER_TX) {
            rc = et_store_commit(w);
            if (rc == 0)
                rc = et_store_begin(w);
            in_tx = 0;
            seq++;
        }
    }
    if (rc == 0)
        rc = device_rows(w, d->device, d->now_ms, total, d->outbox_batches, d->dropped_samples);
    if (rc == 0)
        return et_store_commit(w);
    et_store_rollback(w);
    return rc;
}

int web_data_hostile(struct et_store_writer *w, int64_t now_ms, bool not_utf8)
{
    static const struct {
        const char *name, *unit, *tags;
    } metrics[] = {
        { WEB_HOSTILE_METRIC, "\"><b>", "room=<script>alert(1)</script>,k=\"q\"" },
        { "quote\"back\\slash\nnew line\ttab\x1b[2Jesc", "°C", "a=b" },
        { "=HYPERLINK(\"http://example.invalid\")", "", "" },
        /* the last: left out where not_utf8 is false */
        { "bad utf8 \xff\xfe \xc0\xaf end", "\xed\xa0\x80", "x=\xf8\x88\x80\x80\x80" },
    };
    size_t n = sizeof(metrics) / sizeof(metrics[0]) - (not_utf8 ? 0 : 1);
    int rc = et_store_begin(w);

    for (size_t i = 0; rc == 0 && i < n; i++) {
        int64_t id;

        rc = et_store_metric_id(w, WEB_HOSTILE_DEVICE, metrics[i].name, metrics[i].unit, &id);
        if (rc == 0)
            rc = et_store_metric_tags(w, id, metrics[i].tags);
        for (int k = 0; rc == 0 && k < 10; k++) {
            struct et_store_sample smp = {
                .metric_id = id, .ts_ms = now_ms - (10 - k) * 1000, .mono_ms = k * 1000,
                .value = { .type = ET_TYPE_F64, .u.f64 = k }, .time_quality = ET_TQ_SYNCED,
                .seq = 1,
            };

            rc = et_store_insert_sample(w, &smp, NULL);
        }
    }
    if (rc == 0)
        rc = device_rows(w, WEB_HOSTILE_DEVICE, now_ms, 10 * n, 0, 0);
    if (rc == 0)
        return et_store_commit(w);
    et_store_rollback(w);
    return rc;
}

long long web_json_int(const char *text, const char *key)
{
    char pat[64];
    const char *p;

    snprintf(pat, sizeof(pat), "\"%s\":", key);
    p = strstr(text, pat);
    return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}
