/*
 * The aggregator's HTTP server ([http] in its config): the fleet's web
 * view, its JSON API and Prometheus /metrics (library et_web), served by
 * libmicrohttpd.
 *
 * Threads: libmicrohttpd runs one thread of its own (its internal polling
 * thread) that accepts, reads and answers every connection; each answer
 * is made there by et_web over a read-only store handle of that thread's
 * own. SQLite's WAL lets that reader run beside the aggregator's writer:
 * neither waits for the other, so a slow page never slows ingest. The
 * main thread only hands over its counters (et_agg_http_publish(): a
 * copy under a mutex that the HTTP thread holds for a copy too).
 *
 * Bounds: max_connections at once (and a quarter of them per client
 * address), 30 s of idleness, 32 KiB for a request's line and headers,
 * no request body, 8 MiB for an answer; every query bounded as
 * edgetel/web.h says.
 *
 * Security: on loopback without a token the Host header must name
 * loopback too (a page elsewhere cannot reach the view through DNS
 * rebinding); with token_file every API call and /metrics need
 * "Authorization: Bearer TOKEN", compared in constant time; anywhere but
 * loopback the config check demands TLS and the token.
 */
#ifndef EDGETEL_AGG_HTTP_H
#define EDGETEL_AGG_HTTP_H

#include "edgetel/agg_config.h"
#include "edgetel/web.h"

struct et_agg_http;

/**
 * Start serving per cfg->http (NULL in *out and 0 when it is not
 * enabled). The store at cfg's [store] is opened read-only by the server
 * thread at its first request.
 * @return 0, or -errno with the cause logged (a bad TLS file or token
 *         file, an address in use).
 */
int et_agg_http_start(struct et_agg_http **out, const struct et_agg_config *cfg);

/** Hand the server the main thread's counters (copied). NULL h: a no-op. */
void et_agg_http_publish(struct et_agg_http *h, const struct et_web_health *health);

/** Stop the server (connections closed, its thread joined) and free it; NULL is a no-op. */
void et_agg_http_stop(struct et_agg_http *h);

#endif
