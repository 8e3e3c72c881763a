/*
 * A dictionary of metrics (edgetel/codec.h): append-only entries and a
 * lookup by name that costs one compare for the usual case. Collectors
 * emit their channels in the same order every round, so the entry after
 * the last one found is checked first; a hash of the name finds the rest.
 */
#include "edgetel/codec.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int et_dict_create(struct et_dict **out)
{
    struct et_dict *d = calloc(1, sizeof(*d));

    if (!d)
        return -ENOMEM;
    *out = d;
    return 0;
}

static void entry_free(struct et_dict_entry *e)
{
    free(e->name);
    free(e->unit);
    free(e->tags);
}

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* Put entry i into a free slot of its name's probe run. */
static void slot_put(uint32_t *slots, size_t n_slots, const char *name, size_t i)
{
    for (size_t s = name_hash(name) & (n_slots - 1);; s = (s + 1) & (n_slots - 1)) {
        if (!slots[s]) {
            slots[s] = (uint32_t)i + 1;
            return;
        }
    }
}

void et_dict_truncate(struct et_dict *d, size_t n)
{
    if (n >= d->n)
        return;
    for (size_t i = n; i < d->n; i++)
        entry_free(&d->e[i]);
    d->n = n;
    /* Rebuild the index: rare (a dictionary that could not be kept). */
    if (d->slots)
        memset(d->slots, 0, d->n_slots * sizeof(*d->slots));
    for (size_t i = 0; i < d->n; i++)
        slot_put(d->slots, d->n_slots, d->e[i].name, i);
    d->hint = 0;
}

void et_dict_clear(struct et_dict *d)
{
    et_dict_truncate(d, 0);
    d->id = 0;
}

void et_dict_destroy(struct et_dict *d)
{
    if (!d)
        return;
    et_dict_truncate(d, 0);
    free(d->e);
    free(d->slots);
    free(d);
}

static bool same_text(const char *a, const char *b)
{
    if (!a || !*a)
        return !b || !*b;
    return b && strcmp(a, b) == 0;
}

/* The wire form of a value of type with the channel's resolution. */
static void wire_kind(enum et_type type, double resolution, enum et_wire_type *wt, double *scale)
{
    *wt = ET_WIRE_TYPE_NONE;
    *scale = 1;
    switch (type) {
    case ET_TYPE_F64:
        if (resolution > 0 && isfinite(resolution)) {
            *wt = ET_WIRE_TYPE_F64;
            *scale = resolution;
        }
        break;
    case ET_TYPE_I64:
        *wt = ET_WIRE_TYPE_I64;
        if (resolution >= 1 && resolution < 9.007199254740992e15 &&
            resolution == floor(resolution))
            *scale = resolution;
        break;
    case ET_TYPE_BOOL:
        *wt = ET_WIRE_TYPE_BOOL;
        break;
    case ET_TYPE_STR:
        break;
    }
}

static bool entry_is(const struct et_dict_entry *e, const char *name, const char *unit,
                     const char *tags, enum et_wire_type wt, double scale)
{
    return e->type == wt && e->scale == scale && strcmp(e->name, name) == 0 &&
           same_text(e->unit, unit) && same_text(e->tags, tags);
}

static int grow_slots(struct et_dict *d)
{
    size_t n = d->n_slots ? d->n_slots * 2 : 64;
    uint32_t *slots = calloc(n, sizeof(*slots));

    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < d->n; i++)
        slot_put(slots, n, d->e[i].name, i);
    free(d->slots);
    d->slots = slots;
    d->n_slots = n;
    return 0;
}

int et_dict_add(struct et_dict *d, const struct et_dict_entry *src)
{
    struct et_dict_entry *e;

    if (d->n >= ET_DICT_MAX)
        return -E2BIG;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        struct et_dict_entry *grown = realloc(d->e, cap * sizeof(*grown));

        if (!grown)
            return -ENOMEM;
        d->e = grown;
        d->cap = cap;
    }
    /* Half full at most: probes stay short. */
    if (2 * (d->n + 1) > d->n_slots && grow_slots(d) < 0)
        return -ENOMEM;
    e = &d->e[d->n];
    e->name = strdup(src->name);
    e->unit = strdup(src->unit ? src->unit : "");
    e->tags = src->tags && *src->tags ? strdup(src->tags) : NULL;
    e->type = src->type;
    e->scale = src->scale;
    if (!e->name || !e->unit || (src->tags && *src->tags && !e->tags)) {
        entry_free(e);
        return -ENOMEM;
    }
    slot_put(d->slots, d->n_slots, e->name, d->n);
    d->n++;
    return 0;
}

long et_dict_index(struct et_dict *d, const char *name, const char *unit, const char *tags,
                   enum et_type type, double resolution)
{
    enum et_wire_type wt;
    double scale;
    int rc;

    wire_kind(type, resolution, &wt, &scale);
    if (d->hint < d->n && entry_is(&d->e[d->hint], name, unit, tags, wt, scale))
        return (long)d->hint++;
    if (d->n_slots) {
        for (size_t s = name_hash(name) & (d->n_slots - 1); d->slots[s];
             s = (s + 1) & (d->n_slots - 1)) {
            uint32_t i = d->slots[s] - 1;

            if (entry_is(&d->e[i], name, unit, tags, wt, scale)) {
                d->hint = i + 1;
                return (long)i;
            }
        }
    }
    rc = et_dict_add(d, &(struct et_dict_entry){
        .name = (char *)name, .unit = (char *)unit, .tags = (char *)tags, .type = wt,
        .scale = scale,
    });
    if (rc < 0)
        return rc;
    d->hint = d->n;
    return (long)d->n - 1;
}
