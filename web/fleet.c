/*
 * The fleet and one device (GET /api/v1/fleet, /api/v1/device): the
 * devices rows with their configuration, what the view counts itself
 * (samples today, when the dropped count last rose), and which problems
 * make a row stand out.
 */
#include "web_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS (24LL * 3600 * 1000)

/* ---- tracked devices ---------------------------------------------------------- */

static int track_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct web_track *)elem)->id);
}

static struct web_track *track_find(struct et_web *w, const char *id)
{
    return w->n_tracks ? bsearch(id, w->tracks, w->n_tracks, sizeof(*w->tracks), track_cmp)
                       : NULL;
}

/* The track of id, made when new; NULL when out of memory or over the bound. */
static struct web_track *track_get(struct et_web *w, const char *id)
{
    struct web_track *t = track_find(w, id);
    size_t at = 0;

    if (t)
        return t;
    if (w->n_tracks >= 2 * (size_t)w->lim.max_devices)
        return NULL;
    if (w->n_tracks == w->cap_tracks) {
        size_t cap = w->cap_tracks ? 2 * w->cap_tracks : 64;
        struct web_track *p = realloc(w->tracks, cap * sizeof(*p));

        if (!p)
            return NULL;
        w->tracks = p;
        w->cap_tracks = cap;
    }
    while (at < w->n_tracks && strcmp(w->tracks[at].id, id) < 0)
        at++;
    memmove(&w->tracks[at + 1], &w->tracks[at], (w->n_tracks - at) * sizeof(*w->tracks));
    w->tracks[at] = (struct web_track){ .id = strdup(id) };
    if (!w->tracks[at].id) {
        memmove(&w->tracks[at], &w->tracks[at + 1], (w->n_tracks - at) * sizeof(*w->tracks));
        return NULL;
    }
    w->n_tracks++;
    return &w->tracks[at];
}

static int count_cb(void *ctx, const struct et_store_count *c)
{
    struct web_track *t = track_get(ctx, c->device);

    if (t)
        t->today += c->samples;
    return 0;
}

/*
 * Samples today (UTC): counted once by time when the day begins (or the
 * view starts), then only the rows stored since the last count, by id.
 * A sample re-timed into or out of today after it was counted keeps the
 * day it had (retime.h moves few, and only when a clock synchronises).
 */
static int count_today(struct et_web *w, int64_t now_ms)
{
    int64_t day = now_ms - ((now_ms % DAY_MS) + DAY_MS) % DAY_MS;
    int64_t last = 0;
    int rc;

    if (day != w->day_ms) {
        for (size_t i = 0; i < w->n_tracks; i++)
            w->tracks[i].today = 0;
        w->day_ms = day;
        w->counted_through = 0;
    }
    rc = et_store_last_sample_id(w->r, &last);
    if (rc < 0 || last <= w->counted_through)
        return rc;
    rc = et_store_device_counts(w->r, day, w->counted_through, last, count_cb, w);
    if (rc == 0)
        w->counted_through = last;
    return rc;
}

/* ---- reading devices ---------------------------------------------------------- */

struct devices_read {
    struct et_web *w;
    struct web_device *d;
    size_t n, cap, max;
    bool truncated;
};

static char *dup0(const char *s)
{
    return strdup(s ? s : "");
}

static int device_cb(void *ctx, const struct et_store_device *sd)
{
    struct devices_read *dr = ctx;
    struct web_device *d;

    if (dr->n >= dr->max) {
        dr->truncated = true;
        return 1;
    }
    if (dr->n == dr->cap) {
        size_t cap = dr->cap ? 2 * dr->cap : 32;
        struct web_device *p = realloc(dr->d, cap * sizeof(*p));

        if (!p)
            return -ENOMEM;
        dr->d = p;
        dr->cap = cap;
    }
    d = &dr->d[dr->n++];
    *d = (struct web_device){
        .id = strdup(sd->id),
        .agent_version = dup0(sd->agent_version),
        .reason = dup0(sd->reason),
        .online = sd->online,
        .has_status = sd->has_status,
        .clock_synced = sd->clock_synced,
        .first_seen_ms = sd->first_seen_ms,
        .last_seen_ms = sd->last_seen_ms,
        .samples_stored = sd->samples_stored,
        .outbox_batches = sd->outbox_batches,
        .dropped_samples = sd->dropped_samples,
    };
    return d->id && d->agent_version && d->reason ? 0 : -ENOMEM;
}

static int device_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct web_device *)elem)->id);
}

static int config_cb(void *ctx, const struct et_store_device_config *dc)
{
    struct devices_read *dr = ctx;
    struct web_device *d = dr->n ? bsearch(dc->device, dr->d, dr->n, sizeof(*dr->d),
                                           device_cmp) : NULL;

    if (!d)
        return 0;   /* named by a desired config only: not a device heard from */
    d->has_config = true;
    d->running_version = dc->running_version;
    d->has_report = dc->has_report;
    if (dc->has_report) {
        d->report = dc->report;
        d->report.device = NULL;
        d->report.reason = strdup(dc->report.reason);
        if (!d->report.reason)
            return -ENOMEM;
    }
    return 0;
}

void web_devices_free(struct web_device *d, size_t n)
{
    for (size_t i = 0; d && i < n; i++) {
        free(d[i].id);
        free(d[i].agent_version);
        free(d[i].reason);
        free((char *)d[i].report.reason);
    }
    free(d);
}

/* The groups of every device, for et_config_desired_for(), in id order like d. */
struct groups_read {
    struct web_device *d;
    size_t n;
    char **groups;
};

static int groups_cb(void *ctx, const struct et_store_device_config *dc)
{
    struct groups_read *gr = ctx;
    struct web_device *d = gr->n ? bsearch(dc->device, gr->d, gr->n, sizeof(*gr->d),
                                           device_cmp) : NULL;

    if (!d)
        return 0;
    gr->groups[d - gr->d] = strdup(dc->groups);
    return gr->groups[d - gr->d] ? 0 : -ENOMEM;
}

/* Each device's running version, latest report and desired config. */
static int read_configs(struct et_web *w, const char *only, struct devices_read *dr)
{
    struct groups_read gr = { .d = dr->d, .n = dr->n };
    int rc;

    if (!w->sc || dr->n == 0)
        return 0;
    rc = et_store_config_devices(w->sc, only, config_cb, dr);
    if (rc == -EPROTO)
        return 0;   /* a store from before pushed configs: no config columns */
    if (rc < 0)
        return rc;
    gr.groups = calloc(dr->n, sizeof(*gr.groups));
    if (!gr.groups)
        return -ENOMEM;
    rc = et_store_config_devices(w->sc, only, groups_cb, &gr);
    for (size_t i = 0; rc == 0 && i < dr->n; i++)
        if (dr->d[i].has_config)
            rc = et_config_desired_for(w->sc, dr->d[i].id, gr.groups[i] ? gr.groups[i] : "",
                                       &dr->d[i].desired);
    for (size_t i = 0; i < dr->n; i++)
        free(gr.groups[i]);
    free(gr.groups);
    return rc;
}

int web_devices_read(struct et_web *w, const char *only, int64_t now_ms,
                     struct web_device **out, size_t *n, bool *truncated)
{
    struct devices_read dr = { .w = w, .max = w->lim.max_devices };
    int rc;

    *out = NULL;
    *n = 0;
    rc = et_store_devices(w->r, only, device_cb, &dr);
    if (rc == 1)
        rc = 0;   /* stopped at max_devices */
    if (rc == 0)
        rc = read_configs(w, only, &dr);
    if (rc == 0)
        rc = count_today(w, now_ms);
    if (rc < 0) {
        web_devices_free(dr.d, dr.n);
        return rc;
    }
    /* Every track first (adding one may move the others), then the pointers. */
    for (size_t i = 0; i < dr.n; i++)
        track_get(w, dr.d[i].id);
    for (size_t i = 0; i < dr.n; i++) {
        struct web_device *d = &dr.d[i];
        struct web_track *t = track_find(w, d->id);

        if (t && d->has_status) {
            if (t->seen && d->dropped_samples > t->dropped)
                t->dropped_rose_ms = now_ms;
            t->dropped = d->dropped_samples;
            t->seen = true;
        }
        d->track = t;
    }
    *out = dr.d;
    *n = dr.n;
    if (truncated)
        *truncated = dr.truncated;
    return 0;
}

/* ---- a device as JSON ------------------------------------------------------------ */

static void problem(struct et_web_out *o, bool *first, const char *name)
{
    et_web_out_str(o, *first ? "\"" : ",\"");
    et_web_out_str(o, name);
    et_web_out_str(o, "\"");
    *first = false;
}

static void problems_json(struct et_web_out *o, const struct web_device *d, const char *state,
                          int64_t now_ms)
{
    bool first = true;
    const struct web_track *t = d->track;

    et_web_out_str(o, "\"problems\":[");
    if (!d->online)
        problem(o, &first, "offline");
    else if (now_ms - d->last_seen_ms > ET_WEB_SILENT_MS)
        problem(o, &first, "silent");
    if (t && t->dropped_rose_ms && now_ms - t->dropped_rose_ms <= ET_WEB_DROPPING_MS)
        problem(o, &first, "dropping");
    if (d->has_status && d->outbox_batches > ET_WEB_BEHIND_BATCHES)
        problem(o, &first, "behind");
    /* It rejected or reverted the very version it is to run. */
    if (strcmp(state, "refused") == 0)
        problem(o, &first, "config_failed");
    et_web_out_str(o, "]");
}

static void u64_or_null(struct et_web_out *o, const char *key, bool known, uint64_t v)
{
    if (known)
        et_web_out_printf(o, ",\"%s\":%llu", key, (unsigned long long)v);
    else
        et_web_out_printf(o, ",\"%s\":null", key);
}

static void config_json(struct et_web_out *o, const struct web_device *d, const char *state)
{
    const struct et_store_config_report *rep = &d->report;

    if (!d->has_config) {
        et_web_out_str(o, ",\"config\":null");
        return;
    }
    et_web_out_printf(o, ",\"config\":{\"running_version\":%llu",
                      (unsigned long long)d->running_version);
    u64_or_null(o, "desired_version", d->desired.version != 0, d->desired.version);
    et_web_out_str(o, ",\"desired_for\":");
    if (!d->desired.version)
        et_web_out_str(o, "null");
    else if (d->desired.kind == ET_CONFIG_TARGET_GROUP)
        et_web_out_json_str(o, d->desired.target);
    else
        et_web_out_str(o, "\"device\"");
    et_web_out_str(o, ",\"desired_kind\":");
    et_web_out_str(o, !d->desired.version ? "null"
                      : d->desired.kind == ET_CONFIG_TARGET_GROUP ? "\"group\"" : "\"device\"");
    et_web_out_str(o, ",\"state\":");
    et_web_out_json_str(o, state);
    if (!d->has_report) {
        et_web_out_str(o, ",\"report\":null}");
        return;
    }
    et_web_out_printf(o, ",\"report\":{\"version\":%llu,\"result\":",
                      (unsigned long long)rep->version);
    et_web_out_json_str(o, et_config_result_name(rep->result));
    et_web_out_str(o, ",\"reason\":");
    et_web_out_json_str(o, rep->reason);
    et_web_out_printf(o, ",\"device_ms\":%lld,\"received_ms\":%lld}}", (long long)rep->device_ms,
                      (long long)rep->received_ms);
}

void web_device_json(struct et_web_out *o, const struct web_device *d, int64_t now_ms)
{
    const char *state = d->has_config
        ? et_config_state(d->desired.version, d->running_version,
                          d->has_report ? &d->report : NULL) : "-";

    et_web_out_str(o, "{\"id\":");
    et_web_out_json_str(o, d->id);
    et_web_out_printf(o, ",\"online\":%s,\"first_seen_ms\":%lld,\"last_seen_ms\":%lld",
                      d->online ? "true" : "false", (long long)d->first_seen_ms,
                      (long long)d->last_seen_ms);
    et_web_out_str(o, ",\"agent_version\":");
    et_web_out_json_str(o, d->agent_version);
    et_web_out_printf(o, ",\"samples_stored\":%llu", (unsigned long long)d->samples_stored);
    u64_or_null(o, "samples_today", d->track != NULL, d->track ? d->track->today : 0);
    et_web_out_printf(o, ",\"has_status\":%s", d->has_status ? "true" : "false");
    u64_or_null(o, "outbox_batches", d->has_status, d->outbox_batches);
    u64_or_null(o, "dropped_samples", d->has_status, d->dropped_samples);
    et_web_out_printf(o, ",\"clock_synced\":%s,\"reason\":", d->clock_synced ? "true" : "false");
    et_web_out_json_str(o, d->reason);
    config_json(o, d, state);
    /* The store does not keep certificates yet (enrollment will). */
    et_web_out_str(o, ",\"cert_not_after_ms\":null,");
    problems_json(o, d, state, now_ms);
    et_web_out_str(o, "}");
}

/* ---- the routes ------------------------------------------------------------------ */

void web_fleet(struct et_web *w, const struct et_web_request *req, struct web_answer *a)
{
    struct web_device *d;
    size_t n;
    bool truncated;
    int rc = web_devices_read(w, NULL, req->now_ms, &d, &n, &truncated);

    if (rc < 0) {
        web_store_error(a, rc, "devices");
        return;
    }
    et_web_out_printf(&a->out, "{\"now_ms\":%lld,\"day_start_ms\":%lld,\"truncated\":%s,"
                      "\"devices\":[", (long long)req->now_ms, (long long)w->day_ms,
                      truncated ? "true" : "false");
    for (size_t i = 0; i < n; i++) {
        if (i)
            et_web_out_str(&a->out, ",\n");
        web_device_json(&a->out, &d[i], req->now_ms);
    }
    et_web_out_str(&a->out, "]}\n");
    web_devices_free(d, n);
    web_finish(a, "application/json");
}

struct metrics_read {
    struct et_web_out *o;
    unsigned n, max;
    bool truncated;
};

static int metric_cb(void *ctx, const struct et_store_metric *m)
{
    struct metrics_read *mr = ctx;

    if (mr->n >= mr->max) {
        mr->truncated = true;
        return 1;
    }
    et_web_out_str(mr->o, mr->n++ ? ",\n{\"name\":" : "{\"name\":");
    et_web_out_json_str(mr->o, m->name);
    et_web_out_str(mr->o, ",\"unit\":");
    et_web_out_json_str(mr->o, m->unit);
    et_web_out_str(mr->o, ",\"tags\":");
    et_web_out_json_str(mr->o, m->tags);
    if (m->first_ts_ms || m->last_ts_ms)
        et_web_out_printf(mr->o, ",\"first_ts_ms\":%lld,\"last_ts_ms\":%lld}",
                          (long long)m->first_ts_ms, (long long)m->last_ts_ms);
    else
        et_web_out_str(mr->o, ",\"first_ts_ms\":null,\"last_ts_ms\":null}");
    return 0;
}

void web_device(struct et_web *w, const struct et_web_request *req, struct web_answer *a)
{
    const char *id = req->arg(req->arg_ctx, "id");
    struct metrics_read mr = { .o = &a->out, .max = w->lim.max_metrics };
    struct web_device *d;
    size_t n;
    int rc;

    if (!id || !*id) {
        web_error(a, 400, "id: which device? (/api/v1/device?id=DEVICE)");
        return;
    }
    rc = web_devices_read(w, id, req->now_ms, &d, &n, NULL);
    if (rc == 0 && n == 0)
        rc = -ENOENT;
    if (rc < 0) {
        web_store_error(a, rc, "device");
        return;
    }
    et_web_out_printf(&a->out, "{\"now_ms\":%lld,\"device\":", (long long)req->now_ms);
    web_device_json(&a->out, &d[0], req->now_ms);
    web_devices_free(d, n);
    et_web_out_str(&a->out, ",\"metrics\":[");
    rc = et_store_metric_list(w->r, id, metric_cb, &mr);
    if (rc < 0 && rc != 1) {
        web_store_error(a, rc, "metrics");
        return;
    }
    et_web_out_printf(&a->out, "],\"metrics_truncated\":%s}\n", mr.truncated ? "true" : "false");
    web_finish(a, "application/json");
}
