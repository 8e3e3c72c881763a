/*
 * A store writer's metric cache: (device, name) -> id, unit, tags of the
 * metrics this connection has stored, so that a batch's metrics cost no
 * query once known (a board sends the same 60 metrics every batch): a
 * round trip on PostgreSQL, an index search and a statement on SQLite. A device whose row exists is kept too, as the entry (device,
 * "", id 0): a metric's name is never empty. Two hash indexes (by name,
 * by id) over one array of entries;
 * past STORE_METRICS_MAX entries it starts empty again. Entries made in
 * a transaction that rolls back may name rows that never were: the writer
 * clears the cache at every rollback.
 */
#include "store_metric_cache.h"

#include <stdlib.h>
#include <string.h>

#define SLOTS (2 * STORE_METRICS_MAX)   /* a power of two */
#define EMPTY UINT32_MAX

static uint32_t hash_name(const char *device, const char *name)
{
    uint32_t h = 2166136261u;

    for (const char *p = device; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    h = (h ^ 0xffu) * 16777619u;
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}

static uint32_t hash_id(int64_t id)
{
    uint64_t x = (uint64_t)id * UINT64_C(0x9e3779b97f4a7c15);

    return (uint32_t)(x >> 32);
}

void store_metric_clear(struct store_metric_cache *c)
{
    
    for (size_t i = 0; i < c->n; i++) {
        free(c->entries[i].device);
        free(c->entries[i].name);
        free(c->entries[i].unit);
        free(c->entries[i].tags);
    }
    c->n = 0;
    if (c->by_name) {
        memset(c->by_name, 0xff, SLOTS * sizeof(*c->by_name));
        memset(c->by_id, 0xff, SLOTS * sizeof(*c->by_id));
    }
}

void store_metric_free(struct store_metric_cache *c)
{
    store_metric_clear(c);
    free(c->entries);
    free(c->by_name);
    free(c->by_id);
    *c = (struct store_metric_cache){ .n = 0 };
}

struct store_metric *store_metric_find(struct store_metric_cache *c, const char *device,
                                       const char *name)
{
    
    if (!c->by_name)
        return NULL;
    for (uint32_t s = hash_name(device, name) & (SLOTS - 1); c->by_name[s] != EMPTY;
         s = (s + 1) & (SLOTS - 1)) {
        struct store_metric *m = &c->entries[c->by_name[s]];

        if (strcmp(m->name, name) == 0 && strcmp(m->device, device) == 0)
            return m;
    }
    return NULL;
}

struct store_metric *store_metric_by_id(struct store_metric_cache *c, int64_t id)
{
    
    if (!c->by_id)
        return NULL;
    for (uint32_t s = hash_id(id) & (SLOTS - 1); c->by_id[s] != EMPTY;
         s = (s + 1) & (SLOTS - 1))
        if (c->entries[c->by_id[s]].id == id)
            return &c->entries[c->by_id[s]];
    return NULL;
}

void store_metric_add(struct store_metric_cache *c, const char *device, const char *name,
                      const char *unit, const char *tags, int64_t id)
{
        struct store_metric *m;
    uint32_t s;

    if (!c->entries) {
        c->entries = calloc(STORE_METRICS_MAX, sizeof(*c->entries));
        c->by_name = malloc(SLOTS * sizeof(*c->by_name));
        c->by_id = malloc(SLOTS * sizeof(*c->by_id));
        if (!c->entries || !c->by_name || !c->by_id) {
            /* No cache: every metric is asked of the store. */
            free(c->entries);
            free(c->by_name);
            free(c->by_id);
            *c = (struct store_metric_cache){ .n = 0 };
            return;
        }
        memset(c->by_name, 0xff, SLOTS * sizeof(*c->by_name));
        memset(c->by_id, 0xff, SLOTS * sizeof(*c->by_id));
    }
    if (c->n >= STORE_METRICS_MAX)
        store_metric_clear(c);
    m = &c->entries[c->n];
    *m = (struct store_metric){ .device = strdup(device), .name = strdup(name),
                                   .unit = strdup(unit), .tags = tags ? strdup(tags) : NULL,
                                   .id = id };
    if (!m->device || !m->name || !m->unit) {
        free(m->device);
        free(m->name);
        free(m->unit);
        free(m->tags);
        return;
    }
    for (s = hash_name(device, name) & (SLOTS - 1); c->by_name[s] != EMPTY;
         s = (s + 1) & (SLOTS - 1))
        ;
    c->by_name[s] = (uint32_t)c->n;
    if (id != 0) {   /* a device's entry has none */
        for (s = hash_id(id) & (SLOTS - 1); c->by_id[s] != EMPTY; s = (s + 1) & (SLOTS - 1))
            ;
        c->by_id[s] = (uint32_t)c->n;
    }
    c->n++;
}

void store_metric_set(char **field, const char *value)
{
    char *copy = strdup(value);

    free(*field);
    *field = copy;   /* NULL (out of memory): unknown, asked of the store next time */
}
