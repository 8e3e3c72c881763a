/*
 * Store copy: one store into another, through their interfaces and the
 * backends' copy reads (backend.h). See store_copy.h.
 */
#include "edgetel/store_copy.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "edgetel/ingest.h"
#include "edgetel/store_open.h"

/* Batches read and written per transaction. */
#define COPY_PAGE 200

struct metric_map {
    int64_t from, to;
};

struct copy {
    struct et_store *from, *to;
    struct et_store_writer *w;
    struct et_store_config *wc;
    struct et_store_copy_progress p;
    et_store_copy_progress_fn progress;
    void *ctx;
    char *err;
    size_t errlen;
    /* Devices of the source (copies of the reader's rows and strings). */
    struct et_store_device *devices;
    size_t n_devices, cap_devices;
    /* Source metric id -> destination metric id, sorted by from. */
    struct metric_map *map;
    size_t n_map, cap_map;
    /* The page of batches in hand and the cursor after it. */
    struct et_store_batch page[COPY_PAGE];
    char page_text[COPY_PAGE][3][ET_STORE_STREAM_HEX_LEN + 65];
    size_t n_page;
    /* The batch whose samples are being copied. */
    int64_t first_id, last_id;
    uint32_t samples;
    int ret;
};

static void *grow(void *items, size_t n, size_t *cap, size_t elem)
{
    void *p = items;

    if (n == *cap) {
        size_t c = *cap ? *cap * 2 : 64;

        p = realloc(items, c * elem);
        if (p)
            *cap = c;
    }
    return p;
}

/* Say what failed, in the words of the store that failed. */
static int failed(struct copy *c, int ret, const char *what, bool dest)
{
    const char *why = dest ? et_store_last_error(c->w) : "";

    snprintf(c->err, c->errlen, "%s: %s", what, *why ? why : strerror(-ret));
    return ret;
}

static void tell(struct copy *c, const char *phase)
{
    c->p.phase = phase;
    if (c->progress)
        c->progress(c->ctx, &c->p);
}

static char *dup(const char *s)
{
    return strdup(s ? s : "");
}

/* ---- devices, streams, metrics -------------------------------------------- */

static int keep_device(void *ctx, const struct et_store_device *d)
{
    struct copy *c = ctx;
    struct et_store_device *k = grow(c->devices, c->n_devices, &c->cap_devices, sizeof(*k));

    if (!k)
        return -ENOMEM;
    c->devices = k;
    k = &c->devices[c->n_devices++];
    *k = *d;
    k->id = dup(d->id);
    k->boot_id_hex = dup(d->boot_id_hex);
    k->agent_version = dup(d->agent_version);
    k->reason = dup(d->reason);
    k->stream_hex = dup(d->stream_hex);
    return k->id && k->boot_id_hex && k->agent_version && k->reason && k->stream_hex
           ? 0 : -ENOMEM;
}

static int copy_device(struct copy *c, const struct et_store_device *d)
{
    const struct et_store_status st = {
        .device = d->id, .online = d->online, .boot_id_hex = d->boot_id_hex,
        .agent_version = d->agent_version, .outbox_batches = d->outbox_batches,
        .dropped_samples = d->dropped_samples, .clock_synced = d->clock_synced,
        .reason = d->reason,
    };
    /* Made first seen as the source says; seen last as it says. */
    int ret = et_store_device_seen(c->w, d->id, d->first_seen_ms, "", 0, NULL);

    if (ret == 0)
        ret = et_store_device_seen(c->w, d->id, d->last_seen_ms, d->boot_id_hex, 0, NULL);
    if (ret == 0 && d->has_status)
        ret = et_store_device_status(c->w, &st, d->last_seen_ms, NULL);
    return ret;
}

static int copy_stream(void *ctx, const struct et_store_copy_stream *st)
{
    struct copy *c = ctx;
    int ret = et_store_stream_start(c->w, st->device, st->stream_hex, st->started_ms, NULL);

    if (ret == -EEXIST)
        ret = 0;   /* copied before, or the destination's own */
    if (ret == 0 && st->acked_through)
        ret = et_store_ack_set(c->w, st->device, st->stream_hex, st->acked_through);
    return ret;
}

static int map_metric(void *ctx, const struct et_store_metric *m)
{
    struct copy *c = ctx;
    struct metric_map *k;
    int64_t id;
    int ret = et_store_metric_id(c->w, m->device, m->name, m->unit, &id);

    if (ret == 0)
        ret = et_store_metric_tags(c->w, id, m->tags);
    if (ret < 0)
        return ret;
    k = grow(c->map, c->n_map, &c->cap_map, sizeof(*k));
    if (!k)
        return -ENOMEM;
    c->map = k;
    c->map[c->n_map++] = (struct metric_map){ .from = m->id, .to = id };
    return 0;
}

static int cmp_map(const void *a, const void *b)
{
    int64_t x = ((const struct metric_map *)a)->from, y = ((const struct metric_map *)b)->from;

    return (x > y) - (x < y);
}

/* Devices, their streams and acks, their metrics: one transaction. */
static int copy_fleet(struct copy *c)
{
    int ret = et_store_devices(et_store_reader(c->from), NULL, keep_device, c);

    if (ret < 0)
        return failed(c, ret, "reading the source's devices", false);
    tell(c, "devices");
    ret = et_store_begin(c->w);
    for (size_t i = 0; ret == 0 && i < c->n_devices; i++)
        ret = copy_device(c, &c->devices[i]);
    if (ret == 0)
        ret = c->from->backend->copy->streams(c->from, copy_stream, c);
    for (size_t i = 0; ret == 0 && i < c->n_devices; i++)
        ret = et_store_metrics(et_store_reader(c->from), c->devices[i].id, map_metric, c);
    if (ret == 0)
        ret = et_store_commit(c->w);
    else
        et_store_rollback(c->w);
    if (ret < 0)
        return failed(c, ret, "copying devices, streams and metrics", true);
    qsort(c->map, c->n_map, sizeof(*c->map), cmp_map);
    return 0;
}

/* ---- batches and their samples -------------------------------------------- */

static int keep_batch(void *ctx, const struct et_store_batch *b)
{
    struct copy *c = ctx;
    struct et_store_batch *k = &c->page[c->n_page];
    char (*text)[ET_STORE_STREAM_HEX_LEN + 65] = c->page_text[c->n_page];

    snprintf(text[0], sizeof(text[0]), "%s", b->device);
    snprintf(text[1], sizeof(text[1]), "%s", b->stream_hex ? b->stream_hex : "");
    snprintf(text[2], sizeof(text[2]), "%s", b->boot_id_hex ? b->boot_id_hex : "");
    *k = *b;
    k->device = text[0];
    k->stream_hex = text[1];
    k->boot_id_hex = text[2];
    c->n_page++;
    return 0;
}

static int copy_sample(void *ctx, const struct et_store_sample *s)
{
    struct copy *c = ctx;
    const struct metric_map key = { .from = s->metric_id };
    const struct metric_map *m = bsearch(&key, c->map, c->n_map, sizeof(*c->map), cmp_map);
    struct et_store_sample smp = *s;
    int64_t id;
    int ret;

    if (!m)
        return -ENOENT;   /* a sample of a metric the source does not list */
    smp.metric_id = m->to;
    ret = et_store_insert_sample(c->w, &smp, &id);
    if (ret < 0)
        return ret;
    if (!c->first_id)
        c->first_id = id;
    c->last_id = id;
    c->samples++;
    return 0;
}

/* One batch into the open transaction: claimed, or skipped when the
 * destination has it. */
static int copy_batch(struct copy *c, const struct et_store_batch *b)
{
    struct et_store_batch row = *b;
    bool seen = false;
    int ret = et_store_batch_seen(c->w, b->device, b->stream_hex, b->seq, &seen);

    if (ret == 0 && !seen) {
        row.first_sample_id = row.last_sample_id = 0;
        row.unsynced_samples = 0;
        ret = et_store_insert_batch(c->w, &row);
        seen = ret == -EEXIST;
        if (seen)
            ret = 0;
    }
    if (ret < 0 || seen) {
        c->p.batches_skipped += seen;
        return ret;
    }
    c->first_id = c->last_id = 0;
    c->samples = 0;
    ret = c->from->backend->copy->batch_samples(c->from, b, copy_sample, c);
    if (ret == 0)
        ret = et_store_batch_samples(c->w, b->device, b->stream_hex, b->seq, c->first_id,
                                     c->last_id, b->unsynced_samples);
    /* Its samples count for its device as they did in the source. */
    if (ret == 0)
        ret = et_store_device_seen(c->w, b->device, b->received_ms, "", c->samples, NULL);
    if (ret == 0) {
        c->p.batches_copied++;
        c->p.samples_copied += c->samples;
    }
    return ret;
}

static int copy_batches(struct copy *c)
{
    char device[ET_DEVICE_ID_MAX + 1] = "", stream[ET_STORE_STREAM_HEX_LEN + 1] = "";
    uint64_t seq = 0;
    int ret;

    tell(c, "batches");
    for (;;) {
        c->n_page = 0;
        ret = c->from->backend->copy->batches(c->from, device, stream, seq, COPY_PAGE,
                                              keep_batch, c);
        if (ret < 0)
            return failed(c, ret, "reading the source's batches", false);
        if (c->n_page == 0)
            return 0;
        ret = et_store_begin(c->w);
        for (size_t i = 0; ret == 0 && i < c->n_page; i++)
            ret = copy_batch(c, &c->page[i]);
        if (ret == 0)
            ret = et_store_commit(c->w);
        else
            et_store_rollback(c->w);
        if (ret < 0)
            return failed(c, ret, "copying batches", true);
        c->p.batches_seen += c->n_page;
        snprintf(device, sizeof(device), "%s", c->page[c->n_page - 1].device);
        snprintf(stream, sizeof(stream), "%s", c->page[c->n_page - 1].stream_hex);
        seq = c->page[c->n_page - 1].seq;
        tell(c, "batches");
    }
}

/* ---- quarantine and configs ----------------------------------------------- */

static int copy_quarantined(void *ctx, const struct et_store_quarantined *q)
{
    struct copy *c = ctx;
    int ret = et_store_quarantine(c->w, q);

    return ret == -EEXIST ? 0 : ret;
}

struct desired_copy {
    struct copy *c;
    int ret;
};

static int copy_desired(void *ctx, const struct et_store_desired *d)
{
    struct desired_copy *dc = ctx;

    dc->ret = et_store_desired_add(dc->c->wc, d);
    if (dc->ret == -EEXIST)
        dc->ret = 0;
    return 0;
}

struct reports {
    struct et_store_config_report *r;
    size_t n, cap;
};

static int keep_report(void *ctx, const struct et_store_config_report *rep)
{
    struct reports *rs = ctx;
    struct et_store_config_report *k = grow(rs->r, rs->n, &rs->cap, sizeof(*k));

    if (!k)
        return -ENOMEM;
    rs->r = k;
    k = &rs->r[rs->n++];
    *k = *rep;
    k->device = dup(rep->device);
    k->reason = dup(rep->reason);
    return k->device && k->reason ? 0 : -ENOMEM;
}

static int keep_config_device(void *ctx, const struct et_store_device_config *dc)
{
    return keep_report(ctx, &(struct et_store_config_report){ .device = dc->device,
                                                              .reason = dc->groups,
                                                              .version = dc->running_version,
                                                              .result = dc->known });
}

static void free_reports(struct reports *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        free((char *)rs->r[i].device);
        free((char *)rs->r[i].reason);
    }
    free(rs->r);
    *rs = (struct reports){ .r = NULL };
}

static int copy_configs(struct copy *c)
{
    struct et_store_config *from = et_store_config(c->from);
    struct reports devices = { .r = NULL }, history = { .r = NULL };
    struct desired_copy dc = { .c = c };
    uint64_t top = 0;
    int ret = et_store_desired_top(from, &top);

    for (uint64_t v = 1; ret == 0 && v <= top; v++) {
        ret = et_store_desired_get(from, v, copy_desired, &dc);
        ret = ret == -ENOENT ? 0 : ret < 0 ? ret : dc.ret;
    }
    /* Each device's groups and version, then its reports, oldest first. */
    if (ret == 0)
        ret = et_store_config_devices(from, NULL, keep_config_device, &devices);
    for (size_t i = 0; ret == 0 && i < devices.n; i++) {
        const struct et_store_config_report *d = &devices.r[i];

        if (d->result)   /* known: heard from */
            ret = et_store_config_device_set(c->wc, d->device, d->reason, d->version);
        if (ret == -ENOENT)
            ret = 0;
        if (ret == 0)
            ret = et_store_config_report_history(from, d->device, 100, keep_report, &history);
        for (size_t k = history.n; ret == 0 && k-- > 0;)
            ret = et_store_config_report_record(c->wc, &history.r[k], 100, NULL, NULL);
        free_reports(&history);
    }
    free_reports(&devices);
    return ret < 0 ? failed(c, ret, "copying configs and reports", true) : 0;
}

int et_store_copy(struct et_store *from, struct et_store *to, et_store_copy_progress_fn progress,
                  void *ctx, char *err, size_t errlen)
{
    struct copy *c = calloc(1, sizeof(*c));
    int ret;

    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    *c = (struct copy){ .from = from, .to = to, .w = et_store_writer(to),
                        .wc = et_store_config(to), .progress = progress, .ctx = ctx,
                        .err = err, .errlen = errlen };
    if (!c->w) {
        snprintf(err, errlen, "the destination is open read-only");
        ret = -EROFS;
        goto out;
    }
    if (!from->backend->copy) {
        snprintf(err, errlen, "a %s store cannot be read for a copy", from->backend->type);
        ret = -EPROTO;
        goto out;
    }
    {
        uint64_t samples = 0;

        ret = from->backend->copy->count(from, &c->p.batches_total, &samples);
        if (ret == -EPROTO)
            snprintf(err, errlen, "the source's schema is older than this edgetel's: let an "
                     "aggregator (or edgetelctl config push) open it for writing first");
        else if (ret < 0)
            failed(c, ret, "counting the source's batches", false);
    }
    if (ret == 0)
        ret = copy_fleet(c);
    if (ret == 0)
        ret = copy_batches(c);
    if (ret == 0) {
        tell(c, "quarantine");
        ret = et_store_quarantined(et_store_reader(from), NULL, copy_quarantined, c);
        if (ret < 0)
            failed(c, ret, "copying quarantined batches", true);
    }
    if (ret == 0) {
        tell(c, "configs");
        ret = copy_configs(c);
    }
    if (ret == 0)
        tell(c, "done");
out:
    for (size_t i = 0; i < c->n_devices; i++) {
        free((char *)c->devices[i].id);
        free((char *)c->devices[i].boot_id_hex);
        free((char *)c->devices[i].agent_version);
        free((char *)c->devices[i].reason);
        free((char *)c->devices[i].stream_hex);
    }
    free(c->devices);
    free(c->map);
    free(c);
    return ret;
}
