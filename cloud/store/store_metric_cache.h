/*
 * A store writer's metric cache (store_metric_cache.c), kept by both
 * backends: (device, name) -> id, unit, tags. Private to et_store.
 *
 * Metric and device rows are never deleted, so an entry stays true across
 * transactions; entries made in one that rolls back may name rows that
 * never were: a writer clears its cache at every rollback.
 */
#ifndef EDGETEL_STORE_METRIC_CACHE_H
#define EDGETEL_STORE_METRIC_CACHE_H

#include <stddef.h>
#include <stdint.h>

/* A metric the writer knows; tags NULL: not known. A device whose row
 * exists may be kept as (device, "", id 0): a metric's name is never empty. */
struct store_metric {
    char *device, *name, *unit, *tags;
    int64_t id;
};

/* Metrics a writer keeps at most: a fleet's (10,000 boards of 60) would
 * need more and makes it start again now and then, at a query a metric. */
#define STORE_METRICS_MAX (1u << 18)

struct store_metric_cache {
    struct store_metric *entries;
    size_t n;
    uint32_t *by_name, *by_id;     /* hash slots: entry indexes, UINT32_MAX empty */
};

struct store_metric *store_metric_find(struct store_metric_cache *c, const char *device,
                                       const char *name);
struct store_metric *store_metric_by_id(struct store_metric_cache *c, int64_t id);
/* Keep a metric (out of memory: it is not kept, and asked of the store). */
void store_metric_add(struct store_metric_cache *c, const char *device, const char *name,
                      const char *unit, const char *tags, int64_t id);
/* Replace a field of an entry with a copy of value. */
void store_metric_set(char **field, const char *value);
void store_metric_clear(struct store_metric_cache *c);
void store_metric_free(struct store_metric_cache *c);

#endif
