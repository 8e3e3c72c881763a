/*
 * The fleet's web view, without the HTTP server (library et_web): the JSON
 * API the pages use, the CSV of a plotted series, Prometheus /metrics and
 * the pages themselves. edgetel-aggregator's HTTP server
 * (aggregator/src/http.c, on libmicrohttpd) hands each GET to
 * et_web_handle() and sends what it answers; a test calls it directly over
 * a SQLite store. The routes, their arguments and their answers are
 * docs/HTTP_API.md.
 *
 * Threads: a struct et_web, and the store it reads, belong to the one
 * thread that calls et_web_handle() (the server's). What the aggregator's
 * main thread knows of its own health comes in with each request as a
 * snapshot (struct et_web_health), copied by the server under its lock.
 *
 * Bounds: every answer is built in a buffer of at most max_body bytes
 * (503 "result too large" past it); a series has at most max_points
 * buckets; the fleet lists at most max_devices devices and a device at
 * most max_metrics metrics (the answer then says truncated).
 */
#ifndef EDGETEL_WEB_H
#define EDGETEL_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/config_relay.h"
#include "edgetel/ingest.h"
#include "edgetel/store_config.h"
#include "edgetel/store_reader.h"

/* Upper bounds of the commit latency histogram, seconds (and +Inf). */
#define ET_WEB_COMMIT_BUCKETS 12
extern const double et_web_commit_bounds[ET_WEB_COMMIT_BUCKETS];

/* What the aggregator's main thread counts, for /metrics. */
struct et_web_health {
    int64_t started_ms;                 /* the aggregator's start, wall clock */
    uint64_t messages;                  /* MQTT messages taken from the broker */
    struct et_ingest_stats ingest;      /* since start */
    struct et_config_relay_stats relay;
    uint64_t acks_sent;                 /* Acks the MQTT client took */
    uint64_t acks_unsent;               /* Acks it did not take (the device resends) */
    uint64_t publish_failed;            /* Acks and configs the broker never took */
    /* Durable commits of a group of messages (et_ingest_group_end()). */
    uint64_t commits;
    double commit_seconds;              /* their sum */
    uint64_t commit_le[ET_WEB_COMMIT_BUCKETS];   /* cumulative, per upper bound */
    bool mqtt_connected;
};

/** Count one commit that took seconds. */
void et_web_health_commit(struct et_web_health *h, double seconds);

struct et_web_limits {
    size_t max_body;          /* bytes of one answer; default 8 MiB */
    unsigned max_points;      /* buckets of one series; default 5000 */
    unsigned max_devices;     /* rows of the fleet and of /metrics; default 10000 */
    unsigned max_metrics;     /* metrics listed for one device; default 2000 */
    const char *dygraphs_dir; /* Debian's libjs-dygraphs; default /usr/share/javascript/dygraphs */
};

#define ET_WEB_DEFAULT_POINTS 1000
/* A device whose outbox holds more batches than this is behind (a minute of 2 s batches). */
#define ET_WEB_BEHIND_BATCHES 30
/* An online device that stored nothing for this long is silent. */
#define ET_WEB_SILENT_MS (5 * 60 * 1000)
/* A rise of its dropped count keeps a device "dropping" this long. */
#define ET_WEB_DROPPING_MS (10 * 60 * 1000)

/* One GET as the server saw it. */
struct et_web_request {
    const char *path;                   /* the URL's path, decoded */
    /* The value of the query argument name, decoded; NULL when absent. */
    const char *(*arg)(void *ctx, const char *name);
    void *arg_ctx;
    int64_t now_ms;                     /* wall clock */
    const struct et_web_health *health; /* NULL: not known (a test) */
};

/* What to send back. The body is the caller's to free(). */
struct et_web_response {
    int status;                         /* 200, 400, 404, 503, ... */
    const char *content_type;           /* static */
    char *body;
    size_t len;
    bool cache;                         /* a page or script that may be cached */
    char filename[64];                  /* "" or the name a download is saved as */
};

struct et_web;

/**
 * A web view reading r and sc (sc may be NULL: no config columns), which
 * must outlive it. lim may be NULL (defaults); zero fields take defaults.
 * @return 0, -ENOMEM.
 */
int et_web_create(struct et_web **out, struct et_store_reader *r, struct et_store_config *sc,
                  const struct et_web_limits *lim);

/** NULL is a no-op. */
void et_web_destroy(struct et_web *w);

/**
 * Answer one GET (or HEAD: the same, the server sends no body). Never
 * fails: an error is an answer (a JSON {"error": ...} with its status).
 * resp->body is malloc'ed (NULL only when len is 0).
 */
void et_web_handle(struct et_web *w, const struct et_web_request *req,
                   struct et_web_response *resp);

#endif
