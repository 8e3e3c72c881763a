/*
 * Shared by the files of et_web: web.c (routing, answers, the device row),
 * fleet.c (the fleet and one device), series.c (a plotted series),
 * metrics.c (Prometheus), assets.c (the pages). Private to et_web.
 */
#ifndef EDGETEL_WEB_PRIV_H
#define EDGETEL_WEB_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/config_relay.h"
#include "edgetel/web.h"
#include "edgetel/web_out.h"

/* What the view remembers of a device between requests. */
struct web_track {
    char *id;
    uint64_t today;            /* samples with a time in the current UTC day */
    bool seen;                 /* its Status was seen by this view */
    uint64_t dropped;          /* its dropped count when last seen */
    int64_t dropped_rose_ms;   /* when this view saw it rise; 0 never */
};

/* A device as the fleet and device answers show it (strings owned). */
struct web_device {
    char *id;
    char *agent_version;
    char *reason;
    bool online, has_status, clock_synced;
    int64_t first_seen_ms, last_seen_ms;
    uint64_t samples_stored, outbox_batches, dropped_samples;
    /* its configuration, when the store has a config part */
    bool has_config;
    uint64_t running_version;
    bool has_report;
    struct et_store_config_report report;   /* .reason owned, .device unused */
    struct et_config_desired desired;
    const struct web_track *track;           /* NULL: not tracked */
};

struct et_web {
    struct et_store_reader *r;
    struct et_store_config *sc;
    struct et_web_limits lim;
    /* the tracked devices, sorted by id */
    struct web_track *tracks;
    size_t n_tracks, cap_tracks;
    int64_t day_ms;            /* the UTC day the counts are of */
    int64_t counted_through;   /* the last sample id counted; 0 none */
    /* the dygraphs files, read at create; NULL when missing */
    char *dygraphs_js, *dygraphs_css;
    size_t dygraphs_js_len, dygraphs_css_len;
};

/* An answer being built: its body and how it ends. */
struct web_answer {
    struct et_web_out out;
    struct et_web_response *resp;
};

/* End with a JSON error {"error": why} and status. */
void web_error(struct web_answer *a, int status, const char *why);
/* End with the body built so far (503 when it outgrew its bound). */
void web_finish(struct web_answer *a, const char *content_type);
/* A store failure as an answer: 404 for -ENOENT, else 503 naming it. */
void web_store_error(struct web_answer *a, int rc, const char *what);

/* The devices (only: one of them) with their config and tracks; *n of them. */
int web_devices_read(struct et_web *w, const char *only, int64_t now_ms,
                     struct web_device **out, size_t *n, bool *truncated);
void web_devices_free(struct web_device *d, size_t n);
/* One device as a JSON object. */
void web_device_json(struct et_web_out *o, const struct web_device *d, int64_t now_ms);

/* The routes. */
void web_fleet(struct et_web *w, const struct et_web_request *req, struct web_answer *a);
void web_device(struct et_web *w, const struct et_web_request *req, struct web_answer *a);
void web_series(struct et_web *w, const struct et_web_request *req, struct web_answer *a);
void web_metrics(struct et_web *w, const struct et_web_request *req, struct web_answer *a);
/* A page, script or style sheet; false when path is none of them. */
bool web_asset(struct et_web *w, const char *path, struct web_answer *a);

/* An integer argument: def when absent; false when present and not one in [lo, hi]. */
bool web_arg_int(const struct et_web_request *req, const char *name, int64_t def, int64_t lo,
                 int64_t hi, int64_t *out);

#endif
